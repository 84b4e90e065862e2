package main

// In-process tests of the server's set-up: no binary, short timeouts.

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/internal/syncbuf"
)

func TestTelemetryPathIsValidated(t *testing.T) {
	for p, ok := range map[string]bool{
		"/metrics": true, "/": true, "/peloton/metrics": true, "/metrics/": true,
		"": false, "metrics": false, "/metrics/{x": false, "/metrics/{x}": false, "/a b": false, "GET /metrics": false, "/m?x=1": false,
	} {
		if err := validateTelemetryPath(p); (err == nil) != ok {
			t.Errorf("validateTelemetryPath(%q) = %v, want ok=%v", p, err, ok)
		}
	}
}

// serveOn runs newServer(h) with timeouts on a loopback listener until the test ends.
func serveOn(t *testing.T, h http.Handler, to timeouts, logger log.Logger) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(h, logger, to)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// sendRequest opens a connection to addr and sends a GET / on it, keep-alive; the test's end
// closes it.
func sendRequest(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return conn
}

// Issue 14, 3: a keep-alive connection that finished its request is closed after the idle
// timeout, rather than held open for ever.
func TestIdleConnectionsAreClosed(t *testing.T) {
	addr := serveOn(t, http.NotFoundHandler(), timeouts{readHeader: time.Second, idle: 200 * time.Millisecond, write: time.Second}, log.NewNopLogger())
	conn := sendRequest(t, addr)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("an idle keep-alive connection: %v after %v, want the server to close it (EOF)", err, time.Since(start))
	}
}

// Issue 14, 3: a client that never reads cannot hold a writer past the write deadline.
func TestAClientThatNeverReadsReleasesTheWriter(t *testing.T) {
	finished := make(chan error, 1)
	big := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 1<<20)
		for range 256 { // far more than socket buffers hold
			if _, err := w.Write(chunk); err != nil {
				finished <- err
				return
			}
		}
		finished <- nil
	})
	addr := serveOn(t, big, timeouts{readHeader: time.Second, idle: time.Second, write: 300 * time.Millisecond}, log.NewNopLogger())
	sendRequest(t, addr)
	select {
	case err := <-finished:
		if err == nil {
			t.Error("256 MiB went to a client that reads nothing")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler still blocks on a client that never reads, long after the write deadline")
	}
}

// The write deadline must let the longest legitimate scrape finish: one that waits for a
// refresh until the refresh timeout ends it, then receives the answer.
func TestTheWriteDeadlineOutlastsTheLongestScrape(t *testing.T) {
	to := serverTimeouts(refreshTimeout)
	if to.write < refreshTimeout+10*time.Second {
		t.Errorf("write deadline %v; a scrape may wait %v for a refresh, then needs time to receive the answer", to.write, refreshTimeout)
	}
	if to.idle < 90*time.Second || to.idle > 10*time.Minute {
		t.Errorf("idle timeout %v: want a little above the usual 1m scrape interval, so Prometheus reuses its connection", to.idle)
	}
}

// Issue 14, 3: http.Server's own messages are in the project's log format, and what any
// client can cause is not an error.
func TestServerMessagesGoThroughTheLogger(t *testing.T) {
	var buf syncbuf.Buffer
	l := serverErrorLog(log.NewLogfmtLogger(&buf))
	l.Printf("http: Accept error: accept tcp [::]:10070: accept4: too many open files; retrying in 5ms")
	l.Printf("http: TLS handshake error from 127.0.0.1:5555: EOF")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "level=error ") || !strings.Contains(lines[0], `err="http: Accept error`) || !strings.HasPrefix(lines[1], "level=debug ") {
		t.Errorf("server log lines:\n%s", buf.String())
	}
}

// Issue 14, 5: a failure after start-up (here: the listen address is taken) still runs the
// deferred closes: the demo's simulator and the exporter stop, and nothing they started is
// left running.
func TestAFailureAfterStartUpClosesEverything(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	app := kingpin.New("test", "")
	flags := kingpinflag.AddFlags(app, taken.Addr().String())
	if _, err := app.Parse(nil); err != nil {
		t.Fatal(err)
	}
	// os/signal starts a goroutine of its own at its first use, for good; start it now.
	signal.Stop(make(chan os.Signal))
	signal.Notify(make(chan os.Signal, 1), syscall.SIGUSR2)
	before := runtime.NumGoroutine()
	var logs syncbuf.Buffer
	logger := log.NewLogfmtLogger(&logs)
	err = runExporter(client.Config{Logger: logger}, serveConfig{demo: demoConfig{on: true, workouts: 100}, metricsPath: "/metrics", cacheTTL: time.Minute, toolkitFlags: flags}, logger, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("runExporter on a taken address: %v", err)
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for runtime.NumGoroutine() > before && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after runExporter returned, %d before: something was not closed\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
