// Package atomicfile reads and writes the exporter's own files (the state file with tokens, the
// workout history) safely: a crash leaves the old content or the new, never a mix; a symlink
// stays a symlink; and nothing but a regular file is read, written or chmod-ed, so that a path
// pointing somewhere unexpected cannot make the exporter change another file.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Mode is the mode of the files: they hold tokens and personal data.
const Mode fs.FileMode = 0o600

// resolve returns the regular file that path names, following symlinks; a path that does
// not exist resolves to itself. Anything else (a directory, a device, a FIFO, a dangling
// symlink) is refused with a message that says what it is.
func resolve(path string) (string, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return path, err
	}
	if err != nil {
		return "", err
	}
	target := path
	if fi.Mode()&fs.ModeSymlink != 0 {
		if target, err = filepath.EvalSymlinks(path); errors.Is(err, fs.ErrNotExist) {
			return danglingTarget(path)
		} else if err != nil {
			return "", fmt.Errorf("%s is a symlink that cannot be followed: %w", path, err)
		}
		if fi, err = os.Stat(target); err != nil {
			return "", err
		}
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file (%s)", target, fi.Mode().Type())
	}
	return target, nil
}

// danglingTarget resolves a symlink whose file does not exist yet (made before the first
// run, say): its target, if that is simply missing in an existing directory.
func danglingTarget(path string) (string, error) {
	link, err := os.Readlink(path)
	if err != nil {
		return "", err
	}
	if !filepath.IsAbs(link) {
		link = filepath.Join(filepath.Dir(path), link)
	}
	if _, err := os.Lstat(link); !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s is a symlink that cannot be followed (to %s)", path, link)
	}
	if fi, err := os.Stat(filepath.Dir(link)); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%s is a symlink into a missing directory (%s)", path, link)
	}
	return link, fs.ErrNotExist
}

// File is a file that was read, still open, so that its mode can be tightened once its
// content proved to be the exporter's: the file changed is the file read, whatever happens to
// the path meanwhile.
type File struct {
	Data []byte
	Path string      // the file actually read (the target of a symlink)
	Mode fs.FileMode // its permission bits when read
	f    *os.File
}

// Read reads the regular file at path, or the one a symlink there points to. A missing file
// gives an error that matches fs.ErrNotExist. The caller closes the File.
func Read(path string) (*File, error) {
	target, err := resolve(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(target)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() { // replaced between the checks
		err = fmt.Errorf("%s is not a regular file (%s)", target, fi.Mode().Type())
	}
	var data []byte
	if err == nil {
		data, err = io.ReadAll(f)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &File{Data: data, Path: target, Mode: fi.Mode().Perm(), f: f}, nil
}

// Loose says whether users other than the owner may read or write the file.
func (f *File) Loose() bool { return f.Mode&0o077 != 0 }

// Tighten sets the file's mode to Mode. Call it only once the content has proved to be the
// exporter's own: a path pointing at another file must never have that file changed.
func (f *File) Tighten() error { return f.f.Chmod(Mode) }

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// Write replaces the file at path with data, with mode Mode. When path is a symlink, the file
// it points to is replaced (the new content is written beside that file and renamed onto it),
// so the symlink stays as the user made it; but only when that file is missing or ours is
// true (its content was read and proved to be the exporter's): a link to some other file is
// refused, never overwritten. Anything but a regular file or a missing one is refused.
func Write(path string, data []byte, ours bool) error {
	target, err := resolve(path)
	missing := errors.Is(err, fs.ErrNotExist)
	if err != nil && !missing {
		return fmt.Errorf("refusing to write %s: %w", path, err)
	}
	if target != path && !missing && !ours {
		return fmt.Errorf("refusing to write %s: it is a symlink to %s, which does not hold the exporter's data", path, target)
	}
	f, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating a file beside %s: %w", target, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if err := f.Chmod(Mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, target)
}
