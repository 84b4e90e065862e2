package main

import (
	"runtime/debug"
	"strings"

	"github.com/prometheus/common/version"
)

// The Makefile and the Dockerfile set the version by ldflags; `go build` and `go install` do
// not. Then Go's own build information says what was built: the module version for
// `go install …@v1.2.3`, a pseudo-version with the commit for a build in a checkout.
func init() {
	if bi, ok := debug.ReadBuildInfo(); ok {
		fillVersion(bi)
	}
}

// fillVersion sets what the ldflags left empty from bi.
func fillVersion(bi *debug.BuildInfo) {
	if version.Version == "" {
		version.Version = "unknown"
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			version.Version = strings.TrimPrefix(v, "v")
		}
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if version.Revision == "" && settings["vcs.revision"] != "" {
		version.Revision = settings["vcs.revision"]
		if settings["vcs.modified"] == "true" {
			version.Revision += "-modified"
		}
	}
	if version.BuildDate == "" {
		version.BuildDate = settings["vcs.time"]
	}
}
