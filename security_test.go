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

	"github.com/peloton-exporter/peloton_exporter/internal/testkit"
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
	needBinary(t)
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

// TestHouseholdSecretsNeverLeak runs a household from a config file, its secrets in files, an
// environment variable and a token file, through logins, reloads (one of a file with a
// password written into it), refused credentials and probes of unknown targets, at debug
// level; no secret may reach a log line, a metric, an HTTP answer or a file but the 0600
// state files.
func TestHouseholdSecretsNeverLeak(t *testing.T) {
	sam, kim := simulator.DemoMember(1), simulator.DemoMember(2)
	sim, err := simulator.Start(simulator.Config{Workouts: 60, AccessTokenTTL: 90 * time.Minute, Household: []simulator.Member{sam, kim}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	_, kimRefresh, err := sim.IssueTokensFor(kim.Username)
	if err != nil {
		t.Fatal(err)
	}
	dir, state := t.TempDir(), t.TempDir()
	config := "accounts:\n" +
		"  - name: alex\n    username: " + simulator.DemoUsername + "\n    password_file: " + writeFile(t, dir, "alex_pw", simulator.DemoPassword) + "\n" +
		"  - name: sam\n    username: " + sam.Username + "\n    password: ${SAM_PASSWORD}\n" +
		"  - name: kim\n    refresh_token_file: " + writeFile(t, dir, "kim_rt", kimRefresh) + "\n"
	cfg := writeFile(t, dir, "household.yml", config)
	e := startExporter(t, append(testkit.SimulatorEnv(t, sim), "SAM_PASSWORD="+sam.Password),
		"--config.file="+cfg, "--peloton.state-dir="+state, "--log.level=debug", "--peloton.cache-ttl=1s",
		"--peloton.login-spacing=1s", "--peloton.login-interval=1s", "--peloton.detail-interval=5ms")
	var outputs []string
	for _, name := range []string{"alex", "sam", "kim"} {
		outputs = append(outputs, e.waitFor(t, "/probe?target="+name, "\npeloton_up 1\n"))
	}
	outputs = append(outputs, e.get(t, "/metrics"), e.get(t, "/"), e.get(t, "/probe?target="+sam.Username))

	// A file with a password written into it, another with a secret file that is missing:
	// refused, by POST and by SIGHUP, and the answers say why without the secret.
	const inline = "an-inline-password-in-the-file"
	writeFile(t, dir, "household.yml", config+"  - name: lee\n    username: lee@example.com\n    password: "+inline+"\n")
	code, body := e.post(t, "/-/reload")
	if code != http.StatusInternalServerError || !strings.Contains(body, "password may not be written into the config file") {
		t.Errorf("reload of a file with an inline password: %d %s", code, body)
	}
	outputs = append(outputs, body)
	writeFile(t, dir, "household.yml", config+"  - name: lee\n    username: lee@example.com\n    password_file: "+filepath.Join(dir, "missing")+"\n")
	if err := e.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, e.waitFor(t, "/metrics", "\npeloton_config_last_reload_successful 0\n"))
	writeFile(t, dir, "household.yml", config)
	code, body = e.post(t, "/-/reload")
	outputs = append(outputs, body)
	if code != http.StatusOK {
		t.Errorf("reload of the good file: %d %s", code, body)
	}

	// Every token revoked and alex's password changed: refreshes refused, a refused login.
	sim.RevokeAccessTokens()
	sim.RevokeRefreshTokens()
	sim.SetPassword("a-new-password-the-exporter-lacks")
	outputs = append(outputs, e.waitFor(t, "/probe?target=alex", "\npeloton_up 0\n"), e.get(t, "/probe?target=kim"))
	e.waitFor(t, "/probe?target=sam", "\npeloton_up 1\n") // logged in again, at its turn
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(e.Out.String(), "refused the username or password"); {
		if time.Now().After(deadline) {
			t.Fatalf("alex's refused password was not logged as such:\n%s", e.Out.String())
		}
		e.get(t, "/probe?target=alex") // its login comes at its turn
		time.Sleep(200 * time.Millisecond)
	}
	outputs = append(outputs, e.get(t, "/probe?target=alex"))
	if err := e.stop(t); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	outputs = append(outputs, e.Out.String())
	entries, err := os.ReadDir(state)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range entries {
		b, err := os.ReadFile(filepath.Join(state, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if fi, _ := f.Info(); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f.Name(), fi.Mode().Perm())
		}
		for _, pw := range []string{simulator.DemoPassword, sam.Password, kim.Password} {
			if strings.Contains(string(b), pw) {
				t.Errorf("%s holds a password", f.Name())
			}
		}
		if !strings.HasSuffix(f.Name(), ".history.json") {
			continue // a state file holds tokens by design
		}
		outputs = append(outputs, string(b))
	}

	secrets := append(sim.Secrets(), inline, "a-new-password-the-exporter-lacks", kimRefresh)
	if len(secrets) < 20 {
		t.Fatalf("only %d secrets recorded: the flows above did not run", len(secrets))
	}
	for _, s := range secrets {
		if len(s) < 8 {
			continue
		}
		for i, out := range outputs {
			if strings.Contains(out, s) {
				t.Errorf("output %d contains a secret (%.6s…):\n%.3000s", i, s, out)
			}
		}
	}
}
