package testenv

import (
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// KMSServer is a running `s3seal kms serve`: the embedded keyring of its
// data dir served over the AWS KMS API.
type KMSServer struct {
	// Endpoint is http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are the identity it was started with
	// (S3SEAL_ACCESS_KEY / S3SEAL_SECRET_KEY), its administrator, unless
	// the caller's env gave a credentials file instead.
	AccessKey, SecretKey string
	DataDir              string

	env  map[string]string
	log  *logBuffer
	bin  string
	proc *process // replaced by Start only while the test's own goroutine waits
}

// StartKMSServer builds (once) and starts `s3seal kms serve` on a free
// loopback port with a t.TempDir() data dir, waits for GET /healthz, and
// stops it when the test ends. env adds or overrides settings.
func StartKMSServer(t testing.TB, env map[string]string) *KMSServer {
	t.Helper()
	bin := BuildS3seal(t)
	k := &KMSServer{
		DataDir: t.TempDir(),
		log:     &logBuffer{limit: logLimit},
		bin:     bin,
	}
	k.env = map[string]string{
		"S3SEAL_DATA_DIR": k.DataDir,
		// Apart from the data dir, and never in the user's own
		// configuration directory.
		"S3SEAL_MASTER_KEY_FILE": filepath.Join(t.TempDir(), "master.key"),
		"S3SEAL_ACCESS_KEY":      "AK" + strings.ToUpper(RandomKey(9)),
		"S3SEAL_SECRET_KEY":      RandomKey(20),
	}
	for key, v := range env {
		k.env[key] = v
	}
	k.AccessKey, k.SecretKey = k.env["S3SEAL_ACCESS_KEY"], k.env["S3SEAL_SECRET_KEY"]
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = k.start(false); err == nil || !errors.Is(err, errPortTaken) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		k.proc.stop(10 * time.Second)
		if t.Failed() {
			t.Logf("s3seal kms serve log (%s):\n%s", k.Endpoint, tail(k.log.String(), 8<<10))
		}
	})
	return k
}

// start runs the server on a free port, or with samePort on the one it
// had.
func (k *KMSServer) start(samePort bool) error {
	if !samePort {
		port, err := FreePort()
		if err != nil {
			return err
		}
		k.env["S3SEAL_KMS_LISTEN"] = "127.0.0.1:" + strconv.Itoa(port)
		k.Endpoint = "http://" + k.env["S3SEAL_KMS_LISTEN"]
	}
	cmd := exec.Command(k.bin, "kms", "serve")
	cmd.Env = hermeticEnv()
	keys := make([]string, 0, len(k.env))
	for key := range k.env {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		cmd.Env = append(cmd.Env, key+"="+k.env[key])
	}
	cmd.Stdout, cmd.Stderr = k.log, k.log
	off := k.log.offset()
	p, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("testenv: start s3seal kms serve: %w", err)
	}
	err = waitHTTP(p, k.Endpoint+"/healthz", 30*time.Second, func(r *http.Response) bool { return r.StatusCode == http.StatusOK })
	if err != nil {
		p.stop(5 * time.Second)
		out := k.log.since(off)
		if isBindError(out) {
			return fmt.Errorf("testenv: s3seal kms serve: %w: %v\n%s", errPortTaken, err, out)
		}
		return fmt.Errorf("testenv: s3seal kms serve: %v\noutput:\n%s", err, out)
	}
	k.proc = p
	return nil
}

// Log returns what the server printed.
func (k *KMSServer) Log() string { return k.log.String() }

// Kill ends the server with SIGKILL: calls in flight are cut off. Its
// keyring stays in DataDir; Start serves it again.
func (k *KMSServer) Kill() { k.proc.kill() }

// Start starts a killed server again on the same port with the same data
// dir (so the same keys), and waits for /healthz.
func (k *KMSServer) Start() error {
	if !k.proc.exited() {
		return errors.New("testenv: s3seal kms serve: Start while the server runs")
	}
	return k.start(true)
}

// KMSClientEnv returns the settings that make an `s3seal serve` use a KMS
// API at endpoint (S3SEAL_KMS=aws) as the identity accessKey.
func KMSClientEnv(endpoint, accessKey, secretKey string) map[string]string {
	return map[string]string{
		"S3SEAL_KMS":                "aws",
		"S3SEAL_KMS_ENDPOINT":       endpoint,
		"S3SEAL_KMS_REGION":         Region,
		"AWS_ACCESS_KEY_ID":         accessKey,
		"AWS_SECRET_ACCESS_KEY":     secretKey,
		"AWS_EC2_METADATA_DISABLED": "true",
	}
}
