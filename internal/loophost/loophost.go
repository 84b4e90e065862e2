// Package loophost serves named HTTPS hosts on loopback, so that a client runs with real host
// names, real TLS and real cookie rules while every byte stays on 127.0.0.1.
//
// It makes a throw-away certificate authority (its key never leaves the process), one TLS
// listener per host name with a certificate for that name only, a client transport that dials
// those names there, and an HTTP CONNECT proxy for child processes: a child started with
// HTTPS_PROXY=<ProxyURL> and SSL_CERT_FILE=<a file holding CAPEM> (both honoured by Go's
// net/http and crypto/x509 on Linux) reaches the hosts unchanged, binary and URLs included.
package loophost

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// certLifetime outlasts any test and a demo left running for years; the CA dies with the
// process anyway.
const certLifetime = 10 * 365 * 24 * time.Hour

// Hosts is a set of HTTPS host names served on loopback.
type Hosts struct {
	caPEM     []byte
	pool      *x509.CertPool
	addrs     map[string]string // host name -> 127.0.0.1:port
	listeners map[string]net.Listener

	proxyLn net.Listener
	mu      sync.Mutex
	conns   map[net.Conn]bool // open proxy connections, closed by Close
	closed  bool
	wg      sync.WaitGroup
}

// New makes the CA and a TLS listener on an ephemeral 127.0.0.1 port for each name, and
// starts the CONNECT proxy.
func New(names ...string) (*Hosts, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "peloton_exporter loopback CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	h := &Hosts{
		caPEM:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pool:      x509.NewCertPool(),
		addrs:     map[string]string{},
		listeners: map[string]net.Listener{},
		conns:     map[net.Conn]bool{},
	}
	h.pool.AddCert(ca)
	for i, name := range names {
		cert, err := leaf(name, int64(i+2), ca, caKey, now)
		if err != nil {
			h.Close()
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("loophost: listening for %s: %w", name, err)
		}
		h.addrs[name] = ln.Addr().String()
		h.listeners[name] = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	if h.proxyLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		h.Close()
		return nil, fmt.Errorf("loophost: proxy listener: %w", err)
	}
	h.wg.Add(1)
	go h.serveProxy()
	return h, nil
}

// leaf is a server certificate for name alone, so that a client which dials the wrong host
// fails its certificate check.
func leaf(name string, serial int64, ca *x509.Certificate, caKey *ecdsa.PrivateKey, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// Listener is the TLS listener of a host name given to New.
func (h *Hosts) Listener(name string) net.Listener { return h.listeners[name] }

// Addr is the loopback address that serves name ("" for an unknown name).
func (h *Hosts) Addr(name string) string { return h.addrs[name] }

// CAPEM is the CA certificate in PEM, for SSL_CERT_FILE.
func (h *Hosts) CAPEM() []byte { return h.caPEM }

// ProxyURL is the CONNECT proxy's URL, for HTTPS_PROXY.
func (h *Hosts) ProxyURL() string { return "http://" + h.proxyLn.Addr().String() }

// Transport dials the host names on port 443 at their loopback listeners, and loopback
// addresses as they are; anything else fails, so nothing can leave the machine. It trusts the
// CA alone and ignores proxy settings of the environment. Each call returns a new transport,
// which a test may adjust.
func (h *Hosts) Transport() *http.Transport {
	var d net.Dialer
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			target, err := h.resolve(addr)
			if err != nil {
				return nil, err
			}
			return d.DialContext(ctx, network, target)
		},
		TLSClientConfig:     &tls.Config{RootCAs: h.pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
}

// resolve maps name:443 to its listener and lets loopback addresses through.
func (h *Hosts) resolve(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if a, ok := h.addrs[strings.ToLower(host)]; ok && port == "443" {
		return a, nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return addr, nil
	}
	return "", fmt.Errorf("loophost: %s is not served here", addr)
}

func (h *Hosts) serveProxy() {
	defer h.wg.Done()
	for {
		c, err := h.proxyLn.Accept()
		if err != nil {
			return
		}
		if !h.track(c) {
			c.Close()
			return
		}
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			defer h.untrack(c)
			h.tunnel(c)
		}()
	}
}

// tunnel answers one CONNECT to a served host name and copies bytes both ways.
func (h *Hosts) tunnel(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	target := ""
	if host, port, err := net.SplitHostPort(req.Host); err == nil && port == "443" {
		target = h.addrs[strings.ToLower(host)]
	}
	if req.Method != http.MethodConnect || target == "" {
		_, _ = io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return
	}
	up, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		_, _ = io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return
	}
	if !h.track(up) {
		up.Close()
		return
	}
	defer h.untrack(up)
	_ = c.SetReadDeadline(time.Time{})
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		// Bytes the client sent after its CONNECT are already in br.
		_, _ = io.Copy(up, br)
		up.Close()
		close(done)
	}()
	_, _ = io.Copy(c, up) // ends when either side closes
	c.Close()
	<-done
}

func (h *Hosts) track(c net.Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.conns[c] = true
	return true
}

func (h *Hosts) untrack(c net.Conn) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
	c.Close()
}

// Close stops the proxy and closes every listener and proxied connection. The servers on the
// listeners are the caller's to shut down (closing a listener twice is harmless).
func (h *Hosts) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	for c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	if h.proxyLn != nil {
		h.proxyLn.Close()
	}
	for _, ln := range h.listeners {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			continue
		}
	}
	h.wg.Wait()
}
