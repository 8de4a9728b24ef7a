package testenv

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// MinIO module path and pinned version. Every test and the benchmark use
// exactly this build; .ci/run installs the same.
const (
	MinIOModule  = "github.com/minio/minio"
	MinIOVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"
)

// MinIOOptions configures a MinIO server.
type MinIOOptions struct {
	// KMSSecretKey, if set, is passed as MINIO_KMS_SECRET_KEY
	// ("name:base64-32-bytes"), enabling MinIO's own SSE (the benchmark's
	// peer). Use NewMinIOKMSSecretKey to make one.
	KMSSecretKey string
	// Env holds extra environment variables ("NAME=value").
	Env []string
	// Args are extra flags for `minio server` (e.g. --no-compat).
	Args []string
	// StartTimeout bounds the wait for the server to be ready; 0 means 60s.
	StartTimeout time.Duration
}

// NewMinIOKMSSecretKey returns a random MINIO_KMS_SECRET_KEY value.
func NewMinIOKMSSecretKey(name string) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return name + ":" + base64.StdEncoding.EncodeToString(b)
}

// MinIO is a running MinIO server.
type MinIO struct {
	// Upstream holds the S3 endpoint (http://127.0.0.1:PORT) and the root
	// credentials, random per start.
	Upstream
	// DataDir holds the server's data.
	DataDir string

	log     *logBuffer
	ownsDir bool
	once    sync.Once

	// What Start needs to run the same server again.
	bin     string
	args    []string
	env     []string
	timeout time.Duration

	mu   sync.Mutex
	proc *process
}

// StartMinIO starts a MinIO server for the test and stops it when the test
// ends. The data dir is a t.TempDir().
func StartMinIO(t testing.TB, opts MinIOOptions) *MinIO {
	t.Helper()
	m, err := launchMinIO(opts, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

// LaunchMinIO starts a MinIO server with a fresh temp data dir, for use from
// TestMain. The caller must call Stop, which also removes the data dir.
func LaunchMinIO(opts MinIOOptions) (*MinIO, error) {
	dir, err := os.MkdirTemp("", "s3seal-minio-*")
	if err != nil {
		return nil, err
	}
	m, err := launchMinIO(opts, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	m.ownsDir = true
	return m, nil
}

func launchMinIO(opts MinIOOptions, dataDir string) (*MinIO, error) {
	bin, err := MinIOBinary()
	if err != nil {
		return nil, err
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		m, err := launchMinIOOnce(bin, opts, dataDir, timeout)
		if err == nil {
			return m, nil
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	return nil, lastErr
}

var errPortTaken = errors.New("port taken")

func launchMinIOOnce(bin string, opts MinIOOptions, dataDir string, timeout time.Duration) (*MinIO, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	consolePort, err := FreePort()
	if err != nil {
		return nil, err
	}
	m := &MinIO{
		Upstream: Upstream{Name: "minio", Endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
			AccessKey: "tk" + RandomKey(9), SecretKey: RandomKey(20)},
		DataDir: dataDir,
		log:     &logBuffer{limit: logLimit},
	}
	args := append([]string{"server",
		"--address", "127.0.0.1:" + strconv.Itoa(port),
		"--console-address", "127.0.0.1:" + strconv.Itoa(consolePort),
		"--quiet", "--anonymous"}, opts.Args...)
	m.bin, m.args, m.timeout = bin, append(args, dataDir), timeout
	m.env = append(hermeticEnv(),
		"MINIO_ROOT_USER="+m.AccessKey,
		"MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CALLHOME_ENABLE=off",
		"MINIO_REGION=us-east-1",
	)
	if opts.KMSSecretKey != "" {
		m.env = append(m.env, "MINIO_KMS_SECRET_KEY="+opts.KMSSecretKey)
	}
	m.env = append(m.env, opts.Env...)
	if err := m.run(); err != nil {
		return nil, err
	}
	return m, nil
}

// run starts the server process and waits until it serves.
func (m *MinIO) run() error {
	cmd := exec.Command(m.bin, m.args...)
	cmd.Env = m.env
	cmd.Stdout = m.log
	cmd.Stderr = m.log
	off := m.log.offset()
	p, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("testenv: start minio: %w", err)
	}
	m.mu.Lock()
	m.proc = p
	m.mu.Unlock()
	// /minio/health/live answers 200 before the object layer, bucket
	// metadata and IAM are up (requests then fail with
	// XMinioServerNotInitialized); /minio/health/cluster waits for all three.
	err = waitHTTP(p, m.Endpoint+"/minio/health/cluster", m.timeout, func(r *http.Response) bool {
		return r.StatusCode == http.StatusOK
	})
	if err != nil {
		p.stop(5 * time.Second)
		log := m.log.since(off)
		if isBindError(log) {
			return fmt.Errorf("testenv: minio: %w: %v\n%s", errPortTaken, err, log)
		}
		return fmt.Errorf("testenv: minio: %v\nminio output:\n%s", err, log)
	}
	return nil
}

// Kill ends the server with SIGKILL, as a crash would: requests in flight
// are cut off and nothing is flushed. Start runs it again.
func (m *MinIO) Kill() { m.current().kill() }

// Start starts a killed server again on the same port, with the same data
// dir and credentials, and waits until it serves. The port is the old
// one, so that clients configured with Endpoint reach it again; if another
// process took it meanwhile, Start fails.
func (m *MinIO) Start() error {
	if !m.current().exited() {
		return errors.New("testenv: minio: Start while the server runs")
	}
	return m.run()
}

func (m *MinIO) current() *process {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc
}

// Stop stops the server (SIGTERM, then SIGKILL after 10s). It is safe to
// call more than once. A data dir made by LaunchMinIO is removed.
func (m *MinIO) Stop() {
	m.once.Do(func() {
		m.current().stop(10 * time.Second)
		if m.ownsDir {
			os.RemoveAll(m.DataDir)
		}
	})
}

// Log returns what the server printed (stdout and stderr).
func (m *MinIO) Log() string { return m.log.String() }

// PID returns the server's process id.
func (m *MinIO) PID() int { return m.current().cmd.Process.Pid }

// minioTool is the pinned MinIO build.
var minioTool = &pinnedTool{bin: "minio", module: MinIOModule, pkg: MinIOModule, version: MinIOVersion}

// MinIOBinary returns the path of a minio binary built from MinIOModule at
// MinIOVersion, building it the first time (about 5 minutes on 2 cores);
// see pinnedTool.
func MinIOBinary() (string, error) { return minioTool.binary() }

func goEnv(name string) string {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
