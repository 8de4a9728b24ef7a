package awskms

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// motoEndpoint is the URL of the moto_server TestMain started.
var motoEndpoint string

// startMoto starts `moto_server -H 127.0.0.1 -p PORT` on a free port with
// fake credentials in the environment and waits until it answers. The
// returned stop function kills it (and its children).
func startMoto() (endpoint string, stop func(), err error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return "", nil, fmt.Errorf("moto_server not found (pip install 'moto[server]'): %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_DEFAULT_REGION=us-east-1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.CreateTemp("", "moto-*.log")
	if err != nil {
		return "", nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the process group we created
		cmd.Wait()
		logf.Close()
		os.Remove(logf.Name())
	}
	endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return endpoint, stop, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(logf.Name())
	stop()
	return "", nil, fmt.Errorf("moto_server did not start within 60s:\n%s", log)
}

func TestMain(m *testing.M) {
	// Fake credentials and no shared config files: the default chain must
	// find exactly these.
	tmp, err := os.MkdirTemp("", "awskms-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("AWS_ACCESS_KEY_ID", "testing")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	os.Unsetenv("AWS_SESSION_TOKEN")
	os.Unsetenv("AWS_PROFILE")
	os.Setenv("AWS_CONFIG_FILE", filepath.Join(tmp, "config"))
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(tmp, "credentials"))
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	endpoint, stop, err := startMoto()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(tmp)
		os.Exit(1)
	}
	motoEndpoint = endpoint
	code := m.Run()
	stop()
	os.RemoveAll(tmp)
	os.Exit(code)
}

func newMotoClient(t *testing.T, region string) *Client {
	t.Helper()
	c, err := New(context.Background(), Config{Region: region, Endpoint: motoEndpoint})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
