package main

import (
	"runtime/debug"
	"testing"

	"github.com/prometheus/common/version"
)

// Issue 14, 10: `go install …@v1.2.3` and `go build` set no ldflags; the version and the
// revision then come from Go's build information, and ldflags still win.
func TestVersionComesFromBuildInfoWithoutLdflags(t *testing.T) {
	saved := [3]string{version.Version, version.Revision, version.BuildDate}
	t.Cleanup(func() { version.Version, version.Revision, version.BuildDate = saved[0], saved[1], saved[2] })
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "3e4c6f6e8c21"}, {Key: "vcs.modified", Value: "true"}, {Key: "vcs.time", Value: "2026-12-01T09:00:00Z"}}
	cases := []struct {
		name, ldVersion, ldRevision string
		bi                          debug.BuildInfo
		version, revision           string
	}{
		{"go install of a release", "", "", debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "1.2.3", ""},
		{"go build in a checkout", "", "", debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261201090000-3e4c6f6e8c21+dirty"}, Settings: vcs}, "0.0.0-20261201090000-3e4c6f6e8c21+dirty", "3e4c6f6e8c21-modified"},
		{"go build without VCS information", "", "", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "unknown", ""},
		{"the Makefile's ldflags", "1.0.0", "abc", debug.BuildInfo{Main: debug.Module{Version: "v9.9.9"}, Settings: vcs}, "1.0.0", "abc"},
	}
	for _, tc := range cases {
		version.Version, version.Revision, version.BuildDate = tc.ldVersion, tc.ldRevision, ""
		fillVersion(&tc.bi)
		if version.Version != tc.version || version.Revision != tc.revision {
			t.Errorf("%s: version %q, revision %q; want %q, %q", tc.name, version.Version, version.Revision, tc.version, tc.revision)
		}
	}
}
