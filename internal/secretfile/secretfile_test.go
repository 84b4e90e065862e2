package secretfile_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peloton-exporter/peloton_exporter/internal/secretfile"
)

func write(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is subject to the umask
		t.Fatal(err)
	}
	return p
}

func TestRead(t *testing.T) {
	v, loose, _, err := secretfile.Read(write(t, "  s3cret\n", 0o600))
	if err != nil || v != "s3cret" || loose {
		t.Errorf("0600 file: %q loose=%v err=%v", v, loose, err)
	}
	// Readable by others: loose. By the exporter's own group (a Kubernetes Secret volume's
	// fsGroup): not.
	if _, loose, mode, _ := secretfile.Read(write(t, "x", 0o644)); !loose || mode != 0o644 {
		t.Errorf("0644 file: loose=%v mode %v", loose, mode)
	}
	if _, loose, _, _ := secretfile.Read(write(t, "x", 0o640)); loose {
		t.Error("a file readable by the exporter's own group only was called loose")
	}
	if _, _, _, err := secretfile.Read(write(t, " \n", 0o600)); !errors.Is(err, secretfile.ErrEmpty) {
		t.Errorf("empty file: %v", err)
	}
	if _, _, _, err := secretfile.Read(write(t, strings.Repeat("x", 70<<10), 0o600)); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Errorf("huge file: %v", err)
	}
	if _, _, _, err := secretfile.Read(t.TempDir()); err == nil {
		t.Error("a directory was read as a secret")
	}
	if _, _, _, err := secretfile.Read(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
