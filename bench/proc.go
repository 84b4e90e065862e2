package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The module whose exporter is measured; --repo may point anywhere, but walking up from the
// working directory only accepts this module, so that a stray go.mod above is not built.
const modulePath = "github.com/peloton-exporter/peloton_exporter"

// findRepo walks up from dir to the directory whose go.mod declares modulePath.
func findRepo(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for range 64 { // bounded: no file system is that deep
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			if goModModule(data) == modulePath {
				return dir, nil
			}
			return "", fmt.Errorf("%s/go.mod is module %q, not %s; pass --repo", dir, goModModule(data), modulePath)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("no go.mod above the working directory; pass --repo")
}

func goModModule(data []byte) string {
	for line := range strings.Lines(string(data)) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// buildExporter runs `go build -o out root` in root.
func buildExporter(ctx context.Context, root, out string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, ".")
	cmd.Dir = root
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, buf.Bytes())
	}
	return nil
}

// freeAddr returns a loopback address with a port that was free a moment ago. The exporter
// takes its address as a flag, so a small race with other programs is unavoidable; the
// ceiling server avoids it by inheriting its listener instead.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// child is a process started by the bench. Every child is registered so that killAll can end
// it whatever way the bench exits (return, error, panic in any goroutine, SIGINT/SIGTERM);
// on Linux the kernel also kills it if the bench dies with SIGKILL (see proc_linux.go).
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error
}

var children struct {
	sync.Mutex
	list []*child
}

func startChild(name, bin string, args []string, logPath string, extra []*os.File, env ...string) (*child, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = extra
	cmd.Env = append(childEnv(), env...)
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	children.Lock()
	children.list = append(children.list, c)
	children.Unlock()
	goSafe(func() {
		c.waitErr = cmd.Wait()
		logf.Close()
		close(c.done)
	})
	return c, nil
}

// childEnv is the bench's environment without PELOTON_* variables: the exporter reads its
// settings from them (PELOTON_CACHE_TTL, PELOTON_STATE_FILE, credentials …), and each phase
// must run with exactly the flags it states.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PELOTON_") {
			env = append(env, kv)
		}
	}
	return env
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM (the exporter finishes in-flight scrapes), then SIGKILL after a grace.
func (c *child) stop() {
	if c.exited() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return
	case <-time.After(5 * time.Second):
	}
	_ = c.cmd.Process.Kill()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
}

// logTail is the end of the child's output, for error messages.
func (c *child) logTail(lines int) string {
	data, _ := os.ReadFile(c.logPath)
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// killAll ends every child still running, one by one (never by name, never a process group).
func killAll() {
	children.Lock()
	list := children.list
	children.list = nil
	children.Unlock()
	for _, c := range list {
		c.stop()
	}
}

// goSafe runs f in a goroutine; a panic there would end the process without running main's
// deferred functions, so the children are killed before the panic goes on.
func goSafe(f func()) {
	go func() {
		defer func() {
			if r := recover(); r != nil {
				killAll()
				panic(r)
			}
		}()
		f()
	}()
}

// rss is the resident set size of pid (VmRSS), in bytes; 0 and an error where /proc is absent.
func rss(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			f := strings.Fields(v) // "21376 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// clockTicks is USER_HZ. It is 100 on every Linux architecture Go supports, and reading it
// properly (sysconf) would need cgo.
const clockTicks = 100

// cpuTime is the user+system CPU time pid has used so far.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, may hold spaces and parentheses: fields count from the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state); utime is field 14, stime 15
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}
