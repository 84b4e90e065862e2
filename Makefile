VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w \
	-X github.com/prometheus/common/version.Version=$(VERSION) \
	-X github.com/prometheus/common/version.Revision=$(REVISION) \
	-X github.com/prometheus/common/version.Branch=$(shell git rev-parse --abbrev-ref HEAD 2>/dev/null) \
	-X github.com/prometheus/common/version.BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)

# Linters, pinned and built from the Go module proxy into .bin/ (git-ignored).
STATICCHECK_VERSION   := v0.8.2
GOLANGCI_LINT_VERSION := v2.15.0
TOOLS                 := $(CURDIR)/.bin

FUZZTIME ?= 10s
# Fuzz targets as package:target; CI runs each briefly, on top of their seed corpora.
FUZZ_TARGETS := ./client:FuzzDecodeResponses ./client:FuzzTokenRequest ./client:FuzzDescribeBody \
	./client:FuzzJWTTimes ./client:FuzzParseDates ./client:FuzzParseHiddenForm ./client:FuzzLoginPage \
	./client:FuzzCredentialsAnswer ./collector:FuzzOverview ./history:FuzzSync ./history:FuzzDetailFromGraph \
	./internal/respcache:FuzzNegotiation ./config:FuzzParse

.PHONY: build test check test-deps lint fuzz demo

build:
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o peloton_exporter .

# The project's test command is scripts/test.sh: it installs make among the rest, then runs check.
test:
	./scripts/test.sh

check: lint
	go test -race -count=1 -timeout 15m ./...
	$(MAKE) fuzz

# go test -fuzz on a name that matches no fuzz test only warns, and passes: that fails here.
fuzz:
	@for t in $(FUZZ_TARGETS); do \
	  echo "fuzzing $${t#*:} for $(FUZZTIME)"; \
	  out=$$(go test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) $${t%%:*} 2>&1); rc=$$?; \
	  echo "$$out"; \
	  [ $$rc -eq 0 ] || exit 1; \
	  if echo "$$out" | grep -q 'no fuzz tests to fuzz'; then \
	    echo "$$t: no such fuzz test" >&2; exit 1; \
	  fi; \
	done

test-deps:
	./scripts/install-test-deps.sh

lint:
	go vet ./...
	GOBIN=$(TOOLS) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	GOBIN=$(TOOLS) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	$(TOOLS)/staticcheck ./...
	$(TOOLS)/golangci-lint run ./...

demo: build
	./peloton_exporter --demo
