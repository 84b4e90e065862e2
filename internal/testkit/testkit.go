// Package testkit holds the helpers that the tests of several packages share: free ports, file
// reading, building the exporter, child processes and the Grafana dashboard's JSON model.
//
// It is for tests only: no program or library code may import it.
package testkit

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

const (
	// buildTimeout bounds building the exporter.
	buildTimeout = 5 * time.Minute
	// waitDelay bounds how long Wait waits for a child's output once the child has exited or
	// been killed: a process it left behind cannot keep the test waiting on the pipe.
	waitDelay = 5 * time.Second
)

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// ReadFile returns the contents of a file, failing the test when it cannot be read.
func ReadFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// BuildExporter builds the exporter binary from the module root into bin, within buildTimeout.
// It takes no testing.TB so that a TestMain can use it too.
func BuildExporter(moduleRoot, bin string) error {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = moduleRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the exporter: %w\n%s", err, out)
	}
	return nil
}

// CommandContext is exec.CommandContext for a command that may start processes of its own (go
// build, go run): where the OS allows it, the command runs in a process group of its own and the
// end of ctx kills the whole group; and Wait waits at most waitDelay for output after that.
// Neither the command nor anything it started can outlive ctx by more than that.
func CommandContext(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	killGroupOnCancel(cmd)
	cmd.WaitDelay = waitDelay
	return cmd
}

// Simulated is what the simulated Peloton offers a child process: a CONNECT proxy to its
// host names and the CA that signed their certificates (*simulator.Simulator is one).
type Simulated interface {
	ProxyURL() string
	CAPEM() []byte
}

// SimulatorEnv is the environment that lets a child process (the exporter binary) reach the
// simulated Peloton with its default URLs: HTTPS_PROXY names the simulator's CONNECT proxy and
// SSL_CERT_FILE its CA, both honoured by Go's net/http and crypto/x509 on Linux. The CA is
// written to a file of the test's own.
func SimulatorEnv(t testing.TB, sim Simulated) []string {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "peloton-simulator-ca.pem")
	if err := os.WriteFile(ca, sim.CAPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"HTTPS_PROXY=" + sim.ProxyURL(), "SSL_CERT_FILE=" + ca}
}
