package e2e_test

// Helpers of the end-to-end test: external tools, child processes, HTTP polling, the
// Prometheus API and a webhook receiver standing in for the member's notification service.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/peloton-exporter/peloton_exporter/internal/testkit"
)

const (
	// stopGrace is how long a child process gets between SIGTERM and SIGKILL.
	stopGrace = 10 * time.Second
	// readyTimeout bounds the start-up of each child process.
	readyTimeout = 30 * time.Second
	// httpTimeout bounds every HTTP request the test makes.
	httpTimeout = 5 * time.Second
	// pollEvery is how often conditions are polled.
	pollEvery = 200 * time.Millisecond
	// outputTail is how much of a process's output a failure message shows.
	outputTail = 6000
)

var httpClient = &http.Client{Timeout: httpTimeout}

// tool returns the path of the first of names found in PATH. When none is, it skips the test,
// or fails it when the environment variable CI is set, so that CI cannot pass silently; the
// message names the Debian package to install (the same rule as deploy/deploy_test.go).
func tool(t *testing.T, debianPackage string, names ...string) string {
	t.Helper()
	for _, name := range names {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	msg := fmt.Sprintf("%s not found in PATH: install it (Debian/Ubuntu: apt-get install %s, or a release from https://prometheus.io/download/)",
		strings.Join(names, " or "), debianPackage)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// ---------------------------------------------------------------------------------------------
// Child processes

// tail is the end of s, at most n bytes.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// process is a running child process. It is stopped when the test ends, however it ends.
type process struct {
	*testkit.Process
	name string
}

// startProcess starts path with args in dir, with only the given environment (plus PATH and a
// private HOME), and stops it when owner ends: the test, or the subtest that needs it only.
// Failures are reported to t.
func startProcess(t *testing.T, owner testing.TB, name, dir string, env []string, path string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...)
	p, err := testkit.Start(owner, cmd, stopGrace, func(err error) {
		if err != nil && !isTermination(err) {
			owner.Logf("%s: %v", name, err)
		}
	})
	if err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	return &process{Process: p, name: name}
}

// isTermination tells whether err is the exit of a process that a signal ended.
func isTermination(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

// waitReady polls url until it answers 200, failing with the process's output when it does not
// within readyTimeout or the process exits.
func (p *process) waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		if resp, err := httpClient.Get(url); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if !p.Running() {
			t.Fatalf("%s exited during start-up (%v):\n%s", p.name, p.Err(), tail(p.Out.String(), outputTail))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready at %s within %v:\n%s", p.name, url, readyTimeout, tail(p.Out.String(), outputTail))
		}
		time.Sleep(pollEvery)
	}
}

// ---------------------------------------------------------------------------------------------
// Prometheus HTTP API

type promClient struct{ base string } // http://127.0.0.1:port

type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

// get calls a Prometheus API path and returns its data, or an error that includes the error
// Prometheus gave.
func (c promClient) get(path string, params url.Values) (json.RawMessage, error) {
	resp, err := httpClient.Get(c.base + path + "?" + params.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%s: HTTP %d, not JSON: %.300s", path, resp.StatusCode, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: status %q: %s: %s", path, r.Status, r.ErrorType, r.Error)
	}
	return r.Data, nil
}

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s sample) value() float64 {
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return 0
	}
	return v
}

type queryResult struct {
	Type   string          `json:"resultType"`
	Result json.RawMessage `json:"result"`
}

// query runs an instant query at the current time. Vectors come back as samples; a scalar or
// string as one sample without labels; a matrix (a bare range selector) as one sample per series.
func (c promClient) query(expr string) ([]sample, error) {
	return c.instant(url.Values{"query": {expr}})
}

// queryAt runs an instant query at a moment, with query's results.
func (c promClient) queryAt(expr string, at time.Time) ([]sample, error) {
	return c.instant(url.Values{"query": {expr}, "time": {strconv.FormatInt(at.Unix(), 10)}})
}

func (c promClient) instant(params url.Values) ([]sample, error) {
	data, err := c.get("/api/v1/query", params)
	if err != nil {
		return nil, err
	}
	var qr queryResult
	if err := json.Unmarshal(data, &qr); err != nil {
		return nil, err
	}
	switch qr.Type {
	case "vector":
		var v []sample
		err := json.Unmarshal(qr.Result, &v)
		return v, err
	case "scalar", "string":
		var v [2]any
		err := json.Unmarshal(qr.Result, &v)
		return []sample{{Metric: map[string]string{}, Value: v}}, err
	case "matrix":
		var m []struct {
			Metric map[string]string `json:"metric"`
		}
		err := json.Unmarshal(qr.Result, &m)
		out := make([]sample, len(m))
		for i := range m {
			out[i].Metric = m[i].Metric
		}
		return out, err
	}
	return nil, fmt.Errorf("unknown result type %q", qr.Type)
}

type point struct {
	at time.Time
	v  float64
}

// queryRange runs a range query: each series' points.
func (c promClient) queryRange(expr string, start, end time.Time, step time.Duration) ([][]point, error) {
	data, err := c.get("/api/v1/query_range", url.Values{"query": {expr}, "start": {strconv.FormatInt(start.Unix(), 10)},
		"end": {strconv.FormatInt(end.Unix(), 10)}, "step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}})
	if err != nil {
		return nil, err
	}
	var qr struct {
		Result []struct {
			Values [][2]any `json:"values"`
		} `json:"result"`
	}
	if err := json.Unmarshal(data, &qr); err != nil {
		return nil, err
	}
	var out [][]point
	for _, r := range qr.Result {
		var ps []point
		for _, v := range r.Values {
			ts, _ := v[0].(float64)
			str, _ := v[1].(string)
			f, err := strconv.ParseFloat(str, 64)
			if err != nil {
				return nil, err
			}
			ps = append(ps, point{time.Unix(int64(ts), 0), f})
		}
		out = append(out, ps)
	}
	return out, nil
}

// mustQuery is query for expressions the test wrote itself: an error fails the test.
func (c promClient) mustQuery(t *testing.T, expr string) []sample {
	t.Helper()
	s, err := c.query(expr)
	if err != nil {
		t.Fatalf("query %s: %v", expr, err)
	}
	return s
}

type promAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"` // pending or firing
	ActiveAt    time.Time         `json:"activeAt"`
	Value       string            `json:"value"`
}

func (a promAlert) String() string {
	return fmt.Sprintf("%s %s %v (active since %s, value %s)", a.Labels["alertname"], a.State, a.Labels, a.ActiveAt.Format(time.TimeOnly), a.Value)
}

// alerts returns the alerts Prometheus has pending or firing now.
func (c promClient) alerts() ([]promAlert, error) {
	data, err := c.get("/api/v1/alerts", nil)
	if err != nil {
		return nil, err
	}
	var d struct {
		Alerts []promAlert `json:"alerts"`
	}
	err = json.Unmarshal(data, &d)
	return d.Alerts, err
}

// labelValues returns the values of label on the series matching selector.
func (c promClient) labelValues(label, selector string) ([]string, error) {
	data, err := c.get("/api/v1/label/"+url.PathEscape(label)+"/values", url.Values{"match[]": {selector}})
	if err != nil {
		return nil, err
	}
	var v []string
	err = json.Unmarshal(data, &v)
	return v, err
}

// rawGet returns a response body for failure dumps; errors become the text.
func rawGet(u string) string {
	resp, err := httpClient.Get(u)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// ---------------------------------------------------------------------------------------------
// Webhook receiver

// notification is one Alertmanager webhook call (payload version 4).
type notification struct {
	Path     string `json:"-"`
	Receiver string `json:"receiver"`
	Status   string `json:"status"`
	Alerts   []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
}

// webhook records what Alertmanager sends it.
type webhook struct {
	mu  sync.Mutex
	got []notification
	bad []string // requests that were not a webhook payload
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var n notification
	if err == nil {
		err = json.Unmarshal(body, &n)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil || r.Method != http.MethodPost {
		w.bad = append(w.bad, fmt.Sprintf("%s %s: %v: %.300s", r.Method, r.URL.Path, err, body))
		http.Error(rw, "bad request", http.StatusBadRequest)
		return
	}
	n.Path = r.URL.Path
	w.got = append(w.got, n)
}

func (w *webhook) notifications() []notification {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.got)
}

func (w *webhook) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	for _, n := range w.got {
		fmt.Fprintf(&b, "  %s receiver=%s status=%s:", n.Path, n.Receiver, n.Status)
		for _, a := range n.Alerts {
			fmt.Fprintf(&b, " [%s %s %v]", a.Labels["alertname"], a.Status, a.Labels)
		}
		b.WriteString("\n")
	}
	for _, s := range w.bad {
		fmt.Fprintf(&b, "  BAD REQUEST %s\n", s)
	}
	if b.Len() == 0 {
		return "  (none)\n"
	}
	return b.String()
}
