package main

// The ceiling: the fastest a Go net/http server on this machine can answer the same scrape
// with the same bytes. It replays one captured exporter response, so the difference between
// it and the exporter is exactly the cost of producing the response (refresh check, Collect,
// encoding, gzip) — not of HTTP, the connection or the body size. It runs as a second child
// process, like the exporter, so that it does not share the load driver's Go runtime.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// captured is one response as it came on the wire.
type captured struct {
	Status           int         `json:"status"`
	Header           http.Header `json:"header"`            // without Date and framing headers
	Body             []byte      `json:"body"`              // raw, still gzip-encoded
	ContentLength    int64       `json:"content_length"`    // -1: none sent
	TransferEncoding []string    `json:"transfer_encoding"` // e.g. [chunked]
	DecodedBytes     int         `json:"decoded_bytes"`
}

// framing headers are the server's business; Date changes every second.
var notReplayed = []string{"Date", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive"}

// capture makes one scrape of url and keeps the response.
func capture(ctx context.Context, url string) (*captured, error) {
	client := newScrapeClient(1)
	defer client.CloseIdleConnections()
	req, err := newScrapeRequest(ctx, url)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	c := &captured{
		Status: resp.StatusCode, Header: resp.Header.Clone(), Body: body,
		ContentLength: resp.ContentLength, TransferEncoding: resp.TransferEncoding,
	}
	for _, h := range notReplayed {
		c.Header.Del(h)
	}
	c.DecodedBytes = len(body)
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("captured body is not gzip: %w", err)
		}
		n, err := io.Copy(io.Discard, zr)
		if err != nil {
			return nil, fmt.Errorf("captured body is not gzip: %w", err)
		}
		c.DecodedBytes = int(n)
	}
	if c.Status != http.StatusOK {
		return nil, fmt.Errorf("capture: status %d", c.Status)
	}
	return c, nil
}

// sameResponse checks that b (from the ceiling) is a faithful replay of a (from the exporter).
func sameResponse(a, b *captured) error {
	switch {
	case a.Status != b.Status:
		return fmt.Errorf("status %d, want %d", b.Status, a.Status)
	case !bytes.Equal(a.Body, b.Body):
		return fmt.Errorf("body differs (%d bytes, want %d)", len(b.Body), len(a.Body))
	case !slices.Equal(a.TransferEncoding, b.TransferEncoding) || a.ContentLength != b.ContentLength:
		return fmt.Errorf("framing %v/%d, want %v/%d", b.TransferEncoding, b.ContentLength, a.TransferEncoding, a.ContentLength)
	}
	for k, v := range a.Header {
		if !slices.Equal(b.Header[k], v) {
			return fmt.Errorf("header %s: %q, want %q", k, b.Header[k], v)
		}
	}
	return nil
}

// startCeiling writes c to a file and starts `<this binary> --serve-ceiling=<file>` on a
// loopback listener made here and inherited as fd 3, so the server is ready as soon as the
// process runs and no port can be taken in between.
func startCeiling(dir string, c *captured) (*child, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	data, err := json.Marshal(c)
	if err != nil {
		return nil, "", err
	}
	file := dir + "/ceiling.json"
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return nil, "", err
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	defer l.Close() // the child has its own copy of the socket
	lf, err := l.(*net.TCPListener).File()
	if err != nil {
		return nil, "", err
	}
	defer lf.Close()
	ch, err := startChild("ceiling", self, []string{"--serve-ceiling=" + file}, dir+"/ceiling.log", []*os.File{lf})
	if err != nil {
		return nil, "", err
	}
	return ch, "http://" + l.Addr().String() + "/metrics", nil
}

// serveCeiling is the --serve-ceiling mode: replay the captured response to every request
// on the listener inherited as fd 3, until SIGTERM or until the bench goes away.
func serveCeiling(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var c captured
	if err := json.Unmarshal(data, &c); err != nil {
		return err
	}
	lf := os.NewFile(3, "listener")
	if lf == nil {
		return errors.New("no listener on fd 3 (this mode is started by the bench itself)")
	}
	l, err := net.FileListener(lf)
	lf.Close()
	if err != nil {
		return err
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		for k, v := range c.Header {
			h[k] = v
		}
		// The same framing as the exporter: a Content-Length only if it sent one. Without
		// one, net/http chunks a body larger than its 2 KiB buffer, as it did for the exporter.
		if c.ContentLength >= 0 {
			h.Set("Content-Length", strconv.FormatInt(c.ContentLength, 10))
		}
		w.WriteHeader(c.Status)
		_, _ = w.Write(c.Body)
	})
	// The exporter's server settings (main.go): only ReadHeaderTimeout is set.
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}

	parent := os.Getppid()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go func() {
		// Exit on a signal, or when the bench is gone (re-parented) where no death signal exists.
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-sig:
			case <-tick.C:
				if os.Getppid() == parent {
					continue
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_ = srv.Shutdown(ctx)
			cancel()
			return
		}
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
