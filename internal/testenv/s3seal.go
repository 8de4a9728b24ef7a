package testenv

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	s3sealBuildOnce sync.Once
	s3sealBin       string
	s3sealBuildErr  error
)

// S3sealBinary builds ./cmd/s3seal of the module under test (found with
// `go env GOMOD`) and returns the binary's path. It builds once per test
// process, into a per-user directory keyed by the module root and the FIPS
// 140-3 module version (`go env GOFIPS140`), under a file lock; `go build`
// leaves an up-to-date binary untouched and replaces a stale one by rename,
// so binaries still running from it are not disturbed.
//
// The build inherits the test's environment, so a FIPS pass
// (GOFIPS140=v1.0.0 go test ./...) builds a FIPS s3seal, and GODEBUG
// (fips140=on or only) reaches the started processes through hermeticEnv.
// Keying the directory by GOFIPS140 keeps a FIPS pass and a normal one run
// side by side from replacing each other's binary under a running test.
func S3sealBinary() (string, error) {
	s3sealBuildOnce.Do(func() {
		s3sealBin, s3sealBuildErr = buildS3seal()
	})
	return s3sealBin, s3sealBuildErr
}

// BuildS3seal is S3sealBinary for tests: it fails the test on a build error.
func BuildS3seal(t testing.TB) string {
	t.Helper()
	bin, err := S3sealBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func buildS3seal() (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	state, err := stateDir()
	if err != nil {
		return "", err
	}
	key := root
	if fips := goEnv("GOFIPS140"); fips != "" && fips != "off" {
		key += "\x00GOFIPS140=" + fips
	}
	sum := sha256.Sum256([]byte(key))
	dir := filepath.Join(state, "bin-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "s3seal")
	err = withFileLock("s3seal-build-"+hex.EncodeToString(sum[:6])+".lock", func() error {
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/s3seal")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("testenv: go build ./cmd/s3seal in %s: %v\n%s", root, err, out)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return bin, nil
}

// S3seal is a running `s3seal serve`.
type S3seal struct {
	// Endpoint is http://127.0.0.1:PORT, https with S3SEAL_TLS_CERT set
	// (it may change on Restart if the old port was taken meanwhile).
	Endpoint string
	// AccessKey and SecretKey are the credentials clients sign with
	// (S3SEAL_ACCESS_KEY / S3SEAL_SECRET_KEY), generated per start unless
	// the caller's env set them.
	AccessKey, SecretKey string
	// DataDir is S3SEAL_DATA_DIR (the embedded keyring lives there). It is
	// kept across Restart.
	DataDir string
	// MasterKeyFile is S3SEAL_MASTER_KEY_FILE: by default a file in a
	// temp dir of its own, apart from the data dir as s3seal wants it.
	MasterKeyFile string

	bin     string
	env     map[string]string // as passed to the process, S3SEAL_LISTEN included
	fixed   bool              // the caller chose S3SEAL_LISTEN
	log     *logBuffer
	ownsDir bool
	keyDir  string // removed with the data dir when ownsDir

	mu   sync.Mutex
	proc *process
}

// StartS3seal builds (once) and starts `s3seal serve` on a free loopback
// port with a t.TempDir() data dir, waits for GET /healthz to answer 200,
// and stops it when the test ends. env adds or overrides S3SEAL_* settings,
// e.g. S3SEAL_UPSTREAM and its credentials; without S3SEAL_UPSTREAM the
// proxy uses its embedded store.
func StartS3seal(t testing.TB, env map[string]string) *S3seal {
	t.Helper()
	bin := BuildS3seal(t)
	s, err := launchS3seal(bin, env, t.TempDir(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A proxy that was gone before the end says how it ended (a test
		// may have stopped it on purpose; one killed by a signal with no
		// log line points outside the proxy).
		if exited, err := s.Exited(); exited && t.Failed() {
			t.Logf("s3seal (%s) had already exited: %v", s.Endpoint, err)
		}
		s.Stop()
		if t.Failed() {
			t.Logf("s3seal log (%s):\n%s", s.Endpoint, tail(s.Log(), 8<<10))
		}
	})
	return s
}

// LaunchS3seal is StartS3seal for TestMain: the caller must call Stop,
// which also removes the temp data dir.
func LaunchS3seal(env map[string]string) (*S3seal, error) {
	bin, err := S3sealBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "s3seal-data-*")
	if err != nil {
		return nil, err
	}
	keyDir, err := os.MkdirTemp("", "s3seal-key-*")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s, err := launchS3seal(bin, env, dir, keyDir)
	if err != nil {
		os.RemoveAll(dir)
		os.RemoveAll(keyDir)
		return nil, err
	}
	s.ownsDir, s.keyDir = true, keyDir
	return s, nil
}

func launchS3seal(bin string, env map[string]string, dataDir, keyDir string) (*S3seal, error) {
	s := &S3seal{
		bin:     bin,
		DataDir: dataDir,
		log:     &logBuffer{limit: logLimit},
		env: map[string]string{
			"S3SEAL_DATA_DIR":        dataDir,
			"S3SEAL_MASTER_KEY_FILE": filepath.Join(keyDir, "master.key"),
			"S3SEAL_ACCESS_KEY":      "AK" + strings.ToUpper(RandomKey(9)),
			"S3SEAL_SECRET_KEY":      RandomKey(20),
		},
	}
	for k, v := range env {
		s.env[k] = v
	}
	if _, ok := env["S3SEAL_LISTEN"]; ok {
		s.fixed = true
	}
	s.AccessKey = s.env["S3SEAL_ACCESS_KEY"]
	s.MasterKeyFile = s.env["S3SEAL_MASTER_KEY_FILE"]
	s.SecretKey = s.env["S3SEAL_SECRET_KEY"]
	if err := s.start(false); err != nil {
		return nil, err
	}
	return s, nil
}

// start runs the process; with samePort it first tries the current port.
func (s *S3seal) start(samePort bool) error {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if !s.fixed && !(samePort && attempt < 3) {
			port, err := FreePort()
			if err != nil {
				return err
			}
			s.env["S3SEAL_LISTEN"] = "127.0.0.1:" + strconv.Itoa(port)
		}
		err := s.startOnce()
		if err == nil {
			return nil
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) || s.fixed {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return lastErr
}

func (s *S3seal) startOnce() error {
	listen := s.env["S3SEAL_LISTEN"]
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("testenv: S3SEAL_LISTEN %q: %w", listen, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	scheme := "http"
	if s.env["S3SEAL_TLS_CERT"] != "" {
		scheme = "https"
	}
	s.Endpoint = scheme + "://" + net.JoinHostPort(host, port)

	cmd := exec.Command(s.bin, "serve")
	cmd.Env = hermeticEnv()
	keys := make([]string, 0, len(s.env))
	for k := range s.env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+s.env[k])
	}
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	off := s.log.offset()
	p, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("testenv: start s3seal: %w", err)
	}
	err = waitHTTP(p, s.Endpoint+"/healthz", 30*time.Second, func(r *http.Response) bool {
		return r.StatusCode == http.StatusOK
	})
	if err != nil {
		p.stop(5 * time.Second)
		out := s.log.since(off)
		if isBindError(out) {
			return fmt.Errorf("testenv: s3seal: %w: %v\n%s", errPortTaken, err, out)
		}
		return fmt.Errorf("testenv: s3seal serve: %v\noutput:\n%s", err, out)
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// Stop stops the proxy (SIGTERM, SIGKILL after 10s). It is safe to call
// more than once; Restart starts it again.
func (s *S3seal) Stop() {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p != nil {
		p.stop(10 * time.Second)
	}
}

// Kill ends the proxy with SIGKILL (kill -9): requests in flight are cut
// off and no shutdown runs. Start runs it again.
func (s *S3seal) Kill() {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p != nil {
		p.kill()
	}
}

// Start starts a stopped or killed proxy again with the same settings and
// data dir, on the same port if it is still free, and waits for /healthz.
func (s *S3seal) Start() error {
	if exited, _ := s.Exited(); !exited {
		return errors.New("testenv: s3seal: Start while the proxy runs")
	}
	return s.start(true)
}

// Close stops the proxy and removes a data dir made by LaunchS3seal.
func (s *S3seal) Close() {
	s.Stop()
	if s.ownsDir {
		os.RemoveAll(s.DataDir)
		os.RemoveAll(s.keyDir)
	}
}

// Restart stops the proxy and starts it again with the same settings and
// data dir, on the same port if it is still free.
func (s *S3seal) Restart() error {
	s.Stop()
	return s.start(true)
}

// Exited reports whether the current process has exited (crashed or
// stopped), and its exit error.
func (s *S3seal) Exited() (bool, error) {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		return true, nil
	}
	if !p.exited() {
		return false, nil
	}
	return true, p.err
}

// PID returns the process id of the running proxy (0 if none).
func (s *S3seal) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Env returns the S3SEAL_* settings the process was started with.
func (s *S3seal) Env() map[string]string {
	m := make(map[string]string, len(s.env))
	for k, v := range s.env {
		m[k] = v
	}
	return m
}

// Log returns everything the proxy printed (stdout and stderr) since it was
// first started, across restarts (the oldest bytes beyond 16 MiB are
// dropped).
func (s *S3seal) Log() string { return s.log.String() }

// LogOffset returns a mark for LogSince: take it before a request, then
// LogSince(mark) is what the proxy printed about it.
func (s *S3seal) LogOffset() int64 { return s.log.offset() }

// LogSince returns what the proxy printed after the LogOffset mark.
func (s *S3seal) LogSince(mark int64) string { return s.log.since(mark) }

// PeakRSS returns the proxy's peak resident set size in bytes (VmHWM from
// /proc/PID/status).
func (s *S3seal) PeakRSS() (int64, error) { return ProcStatusBytes(s.PID(), "VmHWM") }

// RSS returns the proxy's current resident set size in bytes (VmRSS).
func (s *S3seal) RSS() (int64, error) { return ProcStatusBytes(s.PID(), "VmRSS") }

// ProcStatusBytes reads a "Name:   1234 kB" line of /proc/PID/status
// (VmHWM, VmRSS, ...) in bytes.
func ProcStatusBytes(pid int, field string) (int64, error) {
	if pid == 0 {
		return 0, errors.New("testenv: process not running")
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("testenv: unexpected %s line %q", field, sc.Text())
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, err
		}
		return n << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("testenv: no %s in /proc/%d/status", field, pid)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
