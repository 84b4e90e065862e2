//go:build unix

package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func mustWrite(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is subject to the umask
		t.Fatal(err)
	}
}

// Issue 14, 9: a rename onto a symlink would replace the link with a regular file; the file
// it points to is replaced instead, and the link stays.
func TestWriteThroughASymlinkKeepsTheLink(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	target := filepath.Join(elsewhere, "state.json")
	mustWrite(t, target, "old", 0o600)
	link := filepath.Join(dir, "state.json")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := Write(link, []byte("new"), true); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced: %v %v", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(target); string(b) != "new" {
		t.Errorf("the link's target holds %q, want the new content", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files left beside the link: %v", entries)
	}
}

// A symlink to a file that did not prove to be the exporter's is never written through.
func TestASymlinkToAnotherFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "notes.txt")
	mustWrite(t, other, "someone's notes", 0o644)
	link := filepath.Join(dir, "state.json")
	if err := os.Symlink(other, link); err != nil {
		t.Fatal(err)
	}
	if err := Write(link, []byte("tokens"), false); err == nil {
		t.Fatal("wrote through a symlink to a file that is not the exporter's")
	}
	if b, _ := os.ReadFile(other); string(b) != "someone's notes" {
		t.Errorf("the other file now holds %q", b)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&fs.ModeSymlink == 0 {
		t.Error("the symlink was replaced")
	}
}

// A symlink made before the first run, to a file not there yet, is written through too.
func TestWriteThroughADanglingSymlink(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	link := filepath.Join(dir, "state.json")
	if err := os.Symlink(filepath.Join(elsewhere, "state.json"), link); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(link); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("reading a dangling symlink: %v, want not-exist", err)
	}
	if err := Write(link, []byte("new"), true); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(elsewhere, "state.json")); err != nil || string(b) != "new" {
		t.Errorf("target: %q, %v", b, err)
	}
}

func TestOnlyRegularFilesAreReadOrReplaced(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, sub} {
		if _, err := Read(p); err == nil {
			t.Errorf("Read(%s) succeeded", p)
		}
		if err := Write(p, []byte("x"), true); err == nil {
			t.Errorf("Write(%s) replaced it", p)
		}
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("the FIFO is gone: %v", err)
	}
}

// Read keeps the file open so that Tighten changes the file read, and only when asked.
func TestTightenChangesTheFileReadOnlyWhenAsked(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	mustWrite(t, target, "content", 0o644)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	f, err := Read(link)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if string(f.Data) != "content" || f.Path != target || !f.Loose() {
		t.Fatalf("Read = %q from %s, loose %v", f.Data, f.Path, f.Loose())
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o644 {
		t.Fatalf("reading changed the mode to %v", fi.Mode().Perm())
	}
	if err := f.Tighten(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() != Mode {
		t.Errorf("after Tighten the mode is %v", fi.Mode().Perm())
	}
}
