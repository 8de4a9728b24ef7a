// Package testenv starts real components for tests: a MinIO server built
// from its Go module at a pinned version, moto_server (a real AWS KMS API),
// and the s3seal binary built from this module. Each component listens on a
// free loopback port, keeps its state in a temp dir and is stopped when the
// test (or the TestMain that launched it) ends.
//
// Two forms exist for each component: StartX(t, ...) for tests, which fails
// the test on error and registers the cleanup, and LaunchX(...) returning
// (*X, error) for use from TestMain, where the caller must call Stop.
//
// Nothing here skips a test because a component is missing: a missing MinIO
// binary is built with `go install` (once, under a file lock shared by all
// test processes), a missing moto_server is installed with pip or reported
// as a clear failure.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may take it before the caller binds it: the Launch
// functions retry on a bind failure.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// RandomKey returns n random bytes hex-encoded, for per-run credentials.
func RandomKey(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// ModuleRoot returns the directory holding the go.mod of the module the
// tests run in (from `go env GOMOD`).
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("testenv: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("testenv: not inside a Go module (go env GOMOD is empty)")
	}
	return filepath.Dir(gomod), nil
}

// stateDir is where testenv keeps what outlives one test process: lock
// files and the s3seal binary. It is per user.
func stateDir() (string, error) {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("s3seal-testenv-%d", os.Getuid()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, nil
}

// withFileLock runs fn while holding an exclusive flock on name inside
// stateDir, so that test binaries of several packages, run in parallel by
// `go test ./...`, do not build the same thing at once.
func withFileLock(name string, fn func() error) error {
	dir, err := stateDir()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("testenv: flock %s: %w", f.Name(), err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck // closed right after
	return fn()
}

// logBuffer collects a child process's output for assertions. It is safe
// for concurrent use and keeps at most limit bytes (the oldest are dropped).
type logBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	limit int
	// total counts every byte ever written, so Offset/Since keep working
	// after old bytes were dropped.
	total int64
}

const logLimit = 16 << 20

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	l.total += int64(len(p))
	if l.buf.Len() > l.limit {
		l.buf.Next(l.buf.Len() - l.limit)
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) offset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func (l *logBuffer) since(off int64) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := int64(l.buf.Len()) - (l.total - off)
	if start < 0 {
		start = 0
	}
	if start > int64(l.buf.Len()) {
		return ""
	}
	return string(l.buf.Bytes()[start:])
}

// process is a started child with its exit status collected in the
// background.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid after done is closed
}

func startProcess(cmd *exec.Cmd) (*process, error) {
	waited, err := StartProcessGroup(cmd)
	if err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = <-waited
		close(p.done)
	}()
	return p, nil
}

// StartProcessGroup starts cmd in a process group of its own (so a stop
// reaches its children too) that gets SIGKILL if the starting program
// dies, so no store or proxy outlives a test or benchmark. The returned
// channel yields cmd.Wait's result once.
//
// Pdeathsig fires when the *thread* that started the child ends, not the
// process (go.dev/issue/27505), and Go ends a thread whose goroutine exits
// while locked to it: a child started from an arbitrary thread can be
// SIGKILLed mid-test (seen under load: proxies gone with no log line, then
// "could not connect"). So the child is started and waited for from a
// goroutine locked to its thread, which lives as long as the child.
func StartProcessGroup(cmd *exec.Cmd) (<-chan error, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid, cmd.SysProcAttr.Pdeathsig = true, syscall.SIGKILL
	started, waited := make(chan error, 1), make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		waited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return waited, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, waits up to grace, then SIGKILL.
func (p *process) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
}

// kill ends the process group with SIGKILL, as a crash or the OOM killer
// would (nothing is flushed, no handler runs), and waits for it.
func (p *process) kill() {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// waitHTTP polls url until check accepts the response, the process exits,
// or the timeout passes.
func waitHTTP(p *process, url string, timeout time.Duration, check func(*http.Response) bool) error {
	// Only liveness is probed here: a test's own clients verify an https
	// endpoint's certificate.
	client := &http.Client{Timeout: 2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("process exited before %s answered: %v", url, p.err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ok := check(resp)
			cancel()
			if ok {
				return nil
			}
			last = fmt.Errorf("status %s", resp.Status)
		} else {
			cancel()
			last = err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s: %v", url, timeout, last)
}

// hermeticEnv returns the current environment without variables that could
// make a child talk to something other than what the test configured:
// AWS_*, MINIO_* and S3SEAL_*.
func hermeticEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "AWS_"),
			strings.HasPrefix(name, "MINIO_"),
			strings.HasPrefix(name, "S3SEAL_"):
			continue
		}
		env = append(env, kv)
	}
	return env
}

// isBindError reports whether a child's log says its port was taken.
func isBindError(log string) bool {
	return strings.Contains(log, "address already in use") ||
		strings.Contains(log, "bind:")
}
