package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// versitygw: a second real S3 store for the end-to-end suites, stricter
// than MinIO where AWS S3 is strict (an upload created with a checksum
// algorithm needs part checksums at Complete, for instance). Its posix
// backend with sidecar metadata needs no extended attributes.
const (
	VersityGWModule  = "github.com/versity/versitygw"
	VersityGWVersion = "v1.8.0"
)

var versityTool = &pinnedTool{bin: "versitygw", module: VersityGWModule,
	pkg: VersityGWModule + "/cmd/versitygw", version: VersityGWVersion}

// VersityGWBinary returns the path of the pinned versitygw, building it the
// first time; see pinnedTool.
func VersityGWBinary() (string, error) { return versityTool.binary() }

// VersityGW is a running versitygw with its posix backend.
type VersityGW struct {
	Upstream
	// DataDir holds the buckets (data/) and the sidecar metadata (meta/).
	DataDir string

	proc *process
	log  *logBuffer
	once sync.Once
}

// LaunchVersityGW starts versitygw on a free loopback port with a fresh
// temp data dir; Stop stops it and removes the dir.
func LaunchVersityGW() (*VersityGW, error) {
	bin, err := VersityGWBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "s3seal-versitygw-*")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		v, err := launchVersityGWOnce(bin, dir)
		if err == nil {
			return v, nil
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func launchVersityGWOnce(bin, dir string) (*VersityGW, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	data, meta := filepath.Join(dir, "data"), filepath.Join(dir, "meta")
	for _, d := range []string{data, meta} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	v := &VersityGW{
		Upstream: Upstream{Name: "versitygw", Endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
			AccessKey: "vk" + RandomKey(9), SecretKey: RandomKey(20)},
		DataDir: dir,
		log:     &logBuffer{limit: logLimit},
	}
	cmd := exec.Command(bin, "--port", "127.0.0.1:"+strconv.Itoa(port),
		"--access", v.AccessKey, "--secret", v.SecretKey, "--region", Region,
		"posix", "--sidecar", meta, data)
	cmd.Env = hermeticEnv()
	cmd.Stdout, cmd.Stderr = v.log, v.log
	if v.proc, err = startProcess(cmd); err != nil {
		return nil, fmt.Errorf("testenv: start versitygw: %w", err)
	}
	// Ready when a signed ListBuckets answers.
	deadline := time.Now().Add(30 * time.Second)
	client := v.S3Client()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = client.ListBuckets(ctx, nil)
		cancel()
		if err == nil {
			return v, nil
		}
		if v.proc.exited() || time.Now().After(deadline) {
			v.proc.stop(5 * time.Second)
			log := v.log.String()
			if isBindError(log) {
				return nil, fmt.Errorf("testenv: versitygw: %w: %v\n%s", errPortTaken, err, log)
			}
			return nil, fmt.Errorf("testenv: versitygw not ready: %v\nversitygw output:\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server and removes its data dir. It is safe to call more
// than once.
func (v *VersityGW) Stop() {
	v.once.Do(func() {
		v.proc.stop(10 * time.Second)
		os.RemoveAll(v.DataDir)
	})
}

// Log returns what the server printed.
func (v *VersityGW) Log() string { return v.log.String() }
