package loophost

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func serve(t *testing.T, h *Hosts, name string) {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name+" "+r.Host)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(h.Listener(name))
	t.Cleanup(func() { srv.Close() })
}

func get(t *testing.T, c *http.Client, u string) (string, error) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestTransportAndProxyReachOnlyTheServedNames(t *testing.T) {
	h, err := New("a.example.com", "b.example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	serve(t, h, "a.example.com")
	serve(t, h, "b.example.com")

	direct := &http.Client{Transport: h.Transport(), Timeout: 5 * time.Second}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(h.CAPEM()) {
		t.Fatal("CAPEM is not a certificate")
	}
	proxyURL, _ := url.Parse(h.ProxyURL())
	proxied := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: pool},
	}}
	for name, c := range map[string]*http.Client{"transport": direct, "proxy": proxied} {
		for _, host := range []string{"a.example.com", "b.example.com"} {
			body, err := get(t, c, "https://"+host+"/")
			if err != nil || body != host+" "+host {
				t.Errorf("%s: %s: %q, %v", name, host, body, err)
			}
		}
		if _, err := get(t, c, "https://c.example.com/"); err == nil {
			t.Errorf("%s: a name that is not served was reached", name)
		}
		if _, err := get(t, c, "https://a.example.com:8443/"); err == nil {
			t.Errorf("%s: a served name on another port was reached", name)
		}
	}

	// Each host's certificate names that host alone: a dial to the wrong listener fails.
	tr := h.Transport()
	base := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return base(ctx, network, strings.Replace(addr, "a.example.com", "b.example.com", 1))
	}
	if _, err := get(t, &http.Client{Transport: tr, Timeout: 5 * time.Second}, "https://a.example.com/"); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Errorf("a.example.com served with b's certificate: %v", err)
	}
	// A client that does not trust the CA is refused.
	if _, err := get(t, &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}, Timeout: 5 * time.Second}, "https://a.example.com/"); err == nil {
		t.Error("a client without the CA connected")
	}
}

func TestCloseEndsTunnels(t *testing.T) {
	h, err := New("a.example.com")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, h, "a.example.com")
	proxyURL, _ := url.Parse(h.ProxyURL())
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(h.CAPEM())
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if _, err := get(t, c, "https://a.example.com/"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { h.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for an idle tunnel")
	}
}
