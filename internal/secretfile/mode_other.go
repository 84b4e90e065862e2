//go:build !unix

package secretfile

import (
	"io/fs"
)

// looseMode: any permission for the group or others (their owner is not known here).
func looseMode(fi fs.FileInfo) bool { return fi.Mode().Perm()&0o077 != 0 }
