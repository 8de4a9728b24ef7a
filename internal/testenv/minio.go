package testenv

import (
	"crypto/rand"
	"debug/buildinfo"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	// Endpoint is the S3 endpoint, http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are the root credentials, random per start.
	AccessKey, SecretKey string
	// DataDir holds the server's data.
	DataDir string

	proc    *process
	log     *logBuffer
	ownsDir bool
	once    sync.Once
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
		Endpoint:  "http://127.0.0.1:" + strconv.Itoa(port),
		AccessKey: "tk" + RandomKey(9),
		SecretKey: RandomKey(20),
		DataDir:   dataDir,
		log:       &logBuffer{limit: logLimit},
	}
	args := append([]string{"server",
		"--address", "127.0.0.1:" + strconv.Itoa(port),
		"--console-address", "127.0.0.1:" + strconv.Itoa(consolePort),
		"--quiet", "--anonymous"}, opts.Args...)
	cmd := exec.Command(bin, append(args, dataDir)...)
	cmd.Env = append(hermeticEnv(),
		"MINIO_ROOT_USER="+m.AccessKey,
		"MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CALLHOME_ENABLE=off",
		"MINIO_REGION=us-east-1",
	)
	if opts.KMSSecretKey != "" {
		cmd.Env = append(cmd.Env, "MINIO_KMS_SECRET_KEY="+opts.KMSSecretKey)
	}
	cmd.Env = append(cmd.Env, opts.Env...)
	cmd.Stdout = m.log
	cmd.Stderr = m.log
	m.proc, err = startProcess(cmd)
	if err != nil {
		return nil, fmt.Errorf("testenv: start minio: %w", err)
	}
	// /minio/health/live answers 200 before the object layer, bucket
	// metadata and IAM are up (requests then fail with
	// XMinioServerNotInitialized); /minio/health/cluster waits for all three.
	err = waitHTTP(m.proc, m.Endpoint+"/minio/health/cluster", timeout, func(r *http.Response) bool {
		return r.StatusCode == http.StatusOK
	})
	if err != nil {
		m.proc.stop(5 * time.Second)
		log := m.log.String()
		if isBindError(log) {
			return nil, fmt.Errorf("testenv: minio: %w: %v\n%s", errPortTaken, err, log)
		}
		return nil, fmt.Errorf("testenv: minio: %v\nminio output:\n%s", err, log)
	}
	return m, nil
}

// Stop stops the server (SIGTERM, then SIGKILL after 10s). It is safe to
// call more than once. A data dir made by LaunchMinIO is removed.
func (m *MinIO) Stop() {
	m.once.Do(func() {
		m.proc.stop(10 * time.Second)
		if m.ownsDir {
			os.RemoveAll(m.DataDir)
		}
	})
}

// Log returns what the server printed (stdout and stderr).
func (m *MinIO) Log() string { return m.log.String() }

// PID returns the server's process id.
func (m *MinIO) PID() int { return m.proc.cmd.Process.Pid }

var (
	minioBinOnce sync.Once
	minioBin     string
	minioBinErr  error
)

// MinIOBinary returns the path of a minio binary built from MinIOModule at
// MinIOVersion. It looks in $GOBIN, $(go env GOPATH)/bin and $PATH; if none
// holds the pinned build, it runs `go install MinIOModule@MinIOVersion`
// (about 5 minutes on 2 cores) under a file lock, so that parallel test
// processes build it once. The result is cached for the process.
func MinIOBinary() (string, error) {
	minioBinOnce.Do(func() {
		minioBin, minioBinErr = findOrBuildMinIO()
	})
	return minioBin, minioBinErr
}

func findOrBuildMinIO() (string, error) {
	if p, err := findPinnedMinIO(); err == nil {
		return p, nil
	}
	var path string
	err := withFileLock("minio-build.lock", func() error {
		// Another process may have built it while we waited.
		if p, err := findPinnedMinIO(); err == nil {
			path = p
			return nil
		}
		cmd := exec.Command("go", "install", MinIOModule+"@"+MinIOVersion)
		cmd.Dir = os.TempDir() // outside any module: install exactly the pinned version
		cmd.Env = append(os.Environ(), "GOFLAGS=", "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("testenv: go install %s@%s: %v\n%s", MinIOModule, MinIOVersion, err, out)
		}
		p, err := findPinnedMinIO()
		if err != nil {
			return fmt.Errorf("testenv: after go install: %w", err)
		}
		path = p
		return nil
	})
	return path, err
}

// findPinnedMinIO returns the first minio binary among the candidates whose
// embedded build info names the pinned module version.
func findPinnedMinIO() (string, error) {
	var tried []string
	for _, p := range minioCandidates() {
		v, err := binaryModuleVersion(p)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", p, err))
			continue
		}
		if v != MinIOVersion {
			tried = append(tried, fmt.Sprintf("%s: version %s", p, v))
			continue
		}
		return p, nil
	}
	return "", fmt.Errorf("no minio binary at %s (%s)", MinIOVersion, strings.Join(tried, "; "))
}

func minioCandidates() []string {
	var c []string
	if gobin := goEnv("GOBIN"); gobin != "" {
		c = append(c, filepath.Join(gobin, "minio"))
	}
	if gopath := goEnv("GOPATH"); gopath != "" {
		for _, dir := range filepath.SplitList(gopath) {
			c = append(c, filepath.Join(dir, "bin", "minio"))
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		c = append(c, p)
	}
	return c
}

// binaryModuleVersion reads the main module version embedded in a Go
// binary (what `go version -m` shows) and checks the module path.
func binaryModuleVersion(path string) (string, error) {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return "", err
	}
	if info.Main.Path != MinIOModule {
		return "", fmt.Errorf("main module is %q", info.Main.Path)
	}
	return info.Main.Version, nil
}

func goEnv(name string) string {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
