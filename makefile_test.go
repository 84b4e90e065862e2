package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/peloton-exporter/peloton_exporter/internal/testkit"
)

// The Makefile's fuzz targets are what CI fuzzes: each must exist (go test -fuzz on a name that
// matches nothing only warns, and passes), and every fuzz test of the project must be listed.
func TestMakefileFuzzesEveryFuzzTestAndNothingElse(t *testing.T) {
	m := regexp.MustCompile(`(?m)^FUZZ_TARGETS\s*:=((?:.*\\\n)*.*)$`).FindStringSubmatch(testkit.ReadFile(t, "Makefile"))
	if m == nil {
		t.Fatal("the Makefile sets no FUZZ_TARGETS")
	}
	listed := strings.Fields(strings.ReplaceAll(m[1], "\\\n", " "))

	var found []string
	fuzzFunc := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(\w+ \*testing\.F\)`)
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		for _, f := range fuzzFunc.FindAllStringSubmatch(testkit.ReadFile(t, path), -1) {
			found = append(found, "./"+filepath.ToSlash(filepath.Dir(path))+":"+f[1])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range found {
		found[i] = strings.Replace(f, "./.:", ".:", 1)
	}
	for _, l := range listed {
		if !slices.Contains(found, l) {
			t.Errorf("the Makefile fuzzes %s, which does not exist", l)
		}
	}
	for _, f := range found {
		if !slices.Contains(listed, f) {
			t.Errorf("fuzz test %s is not in the Makefile's FUZZ_TARGETS, so CI never fuzzes it", f)
		}
	}
}
