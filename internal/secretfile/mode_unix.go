//go:build unix

package secretfile

import (
	"io/fs"
	"os"
	"syscall"
)

// looseMode: others may read, or a group that is not the exporter's own.
func looseMode(fi fs.FileInfo) bool {
	perm := fi.Mode().Perm()
	if perm&0o007 != 0 {
		return true
	}
	if perm&0o070 == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || int(st.Gid) != os.Getegid()
}
