package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/peloton-exporter/peloton_exporter/simulator"
)

// selfSignedCert writes a certificate for 127.0.0.1 and its key, and returns a pool trusting it.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "peloton_exporter test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLSAndBasicAuth serves through --web.config.file and talks to it with a real TLS client.
func TestTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSignedCert(t, dir)
	const user, password = "prometheus", "right-horse-battery-staple"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	cfg := "tls_server_config:\n  cert_file: " + certFile + "\n  key_file: " + keyFile + "\nbasic_auth_users:\n  " + user + ": " + string(hash) + "\n"
	if err := os.WriteFile(webConfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	e := launch(t, nil, "--demo", "--web.config.file="+webConfig)

	tlsClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	get := func(u, p string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "https://"+e.addr+"/metrics", nil)
		if u != "" {
			req.SetBasicAuth(u, p)
		}
		resp, err := tlsClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := get(user, password)
		if code == http.StatusOK && strings.Contains(body, "\npeloton_up 1\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no metrics over TLS with the right password (last: %d %.300s)\n%s", code, body, e.Out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _ := get(user, "wrong-password"); code != http.StatusUnauthorized {
		t.Errorf("wrong password: HTTP %d, want 401", code)
	}
	if code, _ := get("", ""); code != http.StatusUnauthorized {
		t.Errorf("no credentials: HTTP %d, want 401", code)
	}
	if resp, err := httpClient.Get("http://" + e.addr + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP was served metrics on the TLS port")
		}
	}
	untrusting := &http.Client{Timeout: 5 * time.Second}
	if _, err := untrusting.Get("https://" + e.addr + "/metrics"); err == nil {
		t.Error("a client that does not trust the certificate connected")
	}
	if strings.Contains(e.Out.String(), password) {
		t.Error("the basic-auth password is in the log")
	}
}

// TestRunsAsNonRootWritingOnlyTheStateDirectory runs the exporter as nobody, in a working
// directory it cannot write, with only its state directory writable: the same situation as a
// read-only container file system with a state volume.
func TestRunsAsNonRootWritingOnlyTheStateDirectory(t *testing.T) {
	needBinary(t)
	if os.Getuid() != 0 {
		t.Skip("needs root to start the exporter as another user")
	}
	const nobody = 65534
	root, err := os.MkdirTemp("", "peloton_nonroot")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	readonly, state := filepath.Join(root, "readonly"), filepath.Join(root, "state")
	for _, d := range []string{readonly, state} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The binary and the folders above it must be reachable by nobody.
	for _, p := range []string{root, filepath.Dir(binary)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(state, nobody, nobody); err != nil {
		t.Fatal(err)
	}

	sim, err := simulator.Start(simulator.Config{Workouts: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	// The simulator's CA where nobody can read it (a test's own temporary folders are 0700).
	ca := filepath.Join(root, "simulator-ca.pem")
	if err := os.WriteFile(ca, sim.CAPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	e := launch(t, func(cmd *exec.Cmd) {
		cmd.Env = []string{"PELOTON_USERNAME=" + simulator.DemoUsername, "PELOTON_PASSWORD=" + simulator.DemoPassword,
			"HTTPS_PROXY=" + sim.ProxyURL(), "SSL_CERT_FILE=" + ca}
		cmd.Dir = readonly
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}, "--peloton.state-file="+filepath.Join(state, "state.json"))
	e.waitFor(t, "/metrics", "\npeloton_up 1\n")
	if err := e.stop(t); err != nil {
		t.Errorf("exit: %v\n%s", err, e.Out.String())
	}
	if out := e.Out.String(); strings.Contains(out, "cannot") || strings.Contains(out, "level=error") {
		t.Errorf("file or other errors as non-root:\n%s", out)
	}
	for _, f := range []string{"state.json", "state.history.json"} {
		fi, err := os.Stat(filepath.Join(state, f))
		if err != nil {
			t.Errorf("%s was not written: %v", f, err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o600 || st.Uid != nobody {
			t.Errorf("%s: mode %v owner %d; want 0600 and nobody", f, fi.Mode().Perm(), st.Uid)
		}
	}
	if entries, _ := os.ReadDir(readonly); len(entries) != 0 {
		t.Errorf("the exporter wrote into its working directory: %v", entries)
	}
}
