// Package secretfile reads a password or token from a file, and says whether the file is
// open to anyone but the exporter.
package secretfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// maxSize bounds what is read: a password or token is well under a kilobyte, and a path that
// names something else by mistake (a log, a device) must not be read whole.
const maxSize = 64 << 10

// ErrEmpty is the error of a file that holds nothing but white space.
var ErrEmpty = errors.New("the file is empty")

// Read returns the contents of the file at path without surrounding white space. Loose says
// that users other than the exporter's own can read it: others at all, or the file's group
// when that is not the exporter's own group (a Kubernetes Secret volume is group-readable by
// the pod's fsGroup, which is the exporter's own group there, and that is fine).
func Read(path string) (value string, loose bool, mode fs.FileMode, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", false, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", false, 0, err
	}
	if !fi.Mode().IsRegular() {
		return "", false, fi.Mode(), fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return "", false, fi.Mode(), fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > maxSize {
		return "", false, fi.Mode(), fmt.Errorf("%s is larger than %d bytes: not a password or token", path, maxSize)
	}
	value = strings.TrimSpace(string(b))
	if value == "" {
		return "", false, fi.Mode(), ErrEmpty
	}
	return value, looseMode(fi), fi.Mode().Perm(), nil
}
