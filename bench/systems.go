package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sys/unix"

	"github.com/s3seal/s3seal/internal/testenv"
)

// The three systems every workload runs against, in column order.
const (
	Direct   = "direct"    // plain MinIO
	MinIOSSE = "minio_sse" // MinIO encrypting itself (auto-encryption with MINIO_KMS_SECRET_KEY)
	S3seal   = "s3seal"    // s3seal in front of the plain MinIO
)

// Systems lists the system names in column order.
var Systems = []string{Direct, MinIOSSE, S3seal}

// system is one S3 endpoint under test.
type system struct {
	name   string
	client *s3.Client
	bucket string
	// serverPIDs are the processes whose CPU time the system spends: the
	// MinIO behind it, and the proxy for s3seal.
	serverPIDs []int
	proxy      *proxyProc // s3seal only
}

// env holds the running servers.
type env struct {
	tmp        string // removed by close
	plain, sse *testenv.MinIO
	proxy      *proxyProc
	systems    []*system
}

// purgeTrash empties both MinIOs' trash: MinIO moves every overwritten or
// deleted object there and purges it in the background, slowly. Repeated
// GiB workloads (8 streams of 1 GiB per system, three times) otherwise
// pile up tens of GB there and fill the disk, and MinIO answers 503 when
// it is full. Nothing in the trash is read again.
func (e *env) purgeTrash() {
	for _, m := range []*testenv.MinIO{e.plain, e.sse} {
		if m == nil {
			continue
		}
		trash := filepath.Join(m.DataDir, ".minio.sys", "tmp", ".trash")
		entries, _ := os.ReadDir(trash)
		for _, de := range entries {
			os.RemoveAll(filepath.Join(trash, de.Name()))
		}
	}
}

// envConfig says how to start the servers.
type envConfig struct {
	s3sealBin string
	pin       bool
	noCompat  bool   // the plain MinIO runs with --no-compat
	pprofDir  string // "": no profiling endpoint
	logf      func(format string, args ...any)
}

// CPUs of --pin: MinIO and the client on one, s3seal on the other.
const (
	cpuStore = 0
	cpuProxy = 1
)

func startEnv(ctx context.Context, cfg envConfig) (_ *env, err error) {
	e := &env{}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if cfg.pin {
		// Threads made later inherit the mask of the thread that makes
		// them, and so do the MinIO children: pin every thread now.
		if err := pinProcess(os.Getpid(), cpuStore); err != nil {
			return nil, fmt.Errorf("pin the harness to CPU %d: %w", cpuStore, err)
		}
	}
	if e.tmp, err = os.MkdirTemp("", "s3seal-bench-*"); err != nil {
		return nil, err
	}
	cfg.logf("starting MinIO (plain)")
	var plainOpts testenv.MinIOOptions
	if cfg.noCompat {
		plainOpts.Args = []string{"--no-compat"}
	}
	if e.plain, err = testenv.LaunchMinIO(plainOpts); err != nil {
		return nil, err
	}
	cfg.logf("starting MinIO (auto-encryption)")
	e.sse, err = testenv.LaunchMinIO(testenv.MinIOOptions{
		KMSSecretKey: testenv.NewMinIOKMSSecretKey("bench-key"),
		// Every request without SSE headers becomes SSE-KMS under
		// MinIO's built-in static key: the client sends nothing extra,
		// as with s3seal.
		Env: []string{"MINIO_KMS_AUTO_ENCRYPTION=on"},
	})
	if err != nil {
		return nil, err
	}
	if cfg.pin {
		for _, pid := range []int{e.plain.PID(), e.sse.PID()} {
			if err := pinProcess(pid, cpuStore); err != nil {
				return nil, fmt.Errorf("pin MinIO: %w", err)
			}
		}
	}
	cfg.logf("starting s3seal")
	cpu := -1
	if cfg.pin {
		cpu = cpuProxy
	}
	e.proxy, err = startProxy(cfg.s3sealBin, e.plain, cpu, cfg.pprofDir)
	if err != nil {
		return nil, err
	}
	if cfg.pin {
		for pid, want := range map[int]int{os.Getpid(): cpuStore, e.plain.PID(): cpuStore, e.sse.PID(): cpuStore, e.proxy.pid(): cpuProxy} {
			if err := checkPinned(pid, want); err != nil {
				return nil, err
			}
		}
	}

	hc := newHTTPClient()
	e.systems = []*system{
		{name: Direct, bucket: "bench-direct", serverPIDs: []int{e.plain.PID()},
			client: newS3Client(hc, e.plain.Endpoint, e.plain.AccessKey, e.plain.SecretKey)},
		{name: MinIOSSE, bucket: "bench-sse", serverPIDs: []int{e.sse.PID()},
			client: newS3Client(hc, e.sse.Endpoint, e.sse.AccessKey, e.sse.SecretKey)},
		{name: S3seal, bucket: "bench-s3seal", serverPIDs: []int{e.plain.PID(), e.proxy.pid()}, proxy: e.proxy,
			client: newS3Client(hc, e.proxy.endpoint, e.proxy.accessKey, e.proxy.secretKey)},
	}
	for _, s := range e.systems {
		if _, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.bucket)}); err != nil {
			return nil, fmt.Errorf("%s: create bucket: %w", s.name, err)
		}
	}
	for _, b := range compressedBuckets {
		if b.bucket == "" {
			continue
		}
		if _, err := e.systems[2].client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b.bucket)}); err != nil {
			return nil, fmt.Errorf("s3seal: create bucket %s: %w", b.bucket, err)
		}
	}
	return e, nil
}

func (e *env) close() {
	if e.proxy != nil {
		e.proxy.stop()
	}
	if e.sse != nil {
		e.sse.Stop()
	}
	if e.plain != nil {
		e.plain.Stop()
	}
	if e.tmp != "" {
		os.RemoveAll(e.tmp)
	}
}

// newHTTPClient is the one transport every system's client shares: enough
// idle connections for 32 concurrent clients, large buffers, no gzip.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     256 << 10,
		ReadBufferSize:      256 << 10,
	}}
}

// newS3Client is aws-sdk-go-v2's S3 client as the benchmark uses it: path
// style, no retries, UNSIGNED-PAYLOAD (over plain HTTP the SDK would
// otherwise hash every body before sending it, and could not stream a
// generated one), no optional checksums, no Expect: 100-continue.
func newS3Client(hc *http.Client, endpoint, accessKey, secretKey string) *s3.Client {
	return testenv.NewS3Client(endpoint, accessKey, secretKey, func(o *s3.Options) {
		o.HTTPClient = hc
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.ContinueHeaderThresholdBytes = -1
		o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	})
}

// proxyProc is a running `s3seal serve` in front of a MinIO. The harness
// starts it itself (rather than with testenv) so that it can run a given
// binary (s3seal-bench --s3seal) under taskset.
type proxyProc struct {
	endpoint             string
	accessKey, secretKey string
	dataDir              string
	auditLog             string
	pprofAddr            string // "": no profiling endpoint

	cmd  *exec.Cmd
	done chan struct{}
	out  *tailBuffer
}

func startProxy(bin string, upstream *testenv.MinIO, cpu int, pprofDir string) (*proxyProc, error) {
	dir, err := os.MkdirTemp("", "s3seal-bench-*")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		p, err := startProxyOnce(bin, upstream, cpu, pprofDir, dir)
		if err == nil {
			return p, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func startProxyOnce(bin string, upstream *testenv.MinIO, cpu int, pprofDir, dir string) (*proxyProc, error) {
	port, err := testenv.FreePort()
	if err != nil {
		return nil, err
	}
	p := &proxyProc{
		endpoint:  "http://127.0.0.1:" + strconv.Itoa(port),
		accessKey: "BENCH" + strings.ToUpper(testenv.RandomKey(8)),
		secretKey: testenv.RandomKey(20),
		dataDir:   dir,
		auditLog:  filepath.Join(dir, "audit.jsonl"),
		done:      make(chan struct{}),
		out:       &tailBuffer{limit: 64 << 10},
	}
	env := map[string]string{
		"S3SEAL_LISTEN": "127.0.0.1:" + strconv.Itoa(port),
		// The master key beside the data dir, not in it (serve refuses
		// that) nor in the user's configuration directory.
		"S3SEAL_DATA_DIR":        filepath.Join(dir, "data"),
		"S3SEAL_MASTER_KEY_FILE": filepath.Join(dir, "master.key"),
		"S3SEAL_ACCESS_KEY":      p.accessKey,
		"S3SEAL_SECRET_KEY":      p.secretKey,
		"S3SEAL_AUDIT_LOG":       p.auditLog,
		"S3SEAL_LOG_LEVEL":       "warn",
		// Compression only in the compression workload's buckets.
		"S3SEAL_COMPRESS_BUCKETS": compressEnv(),
	}
	for k, v := range upstream.UpstreamEnv() {
		env[k] = v
	}
	if pprofDir != "" {
		pport, err := testenv.FreePort()
		if err != nil {
			return nil, err
		}
		p.pprofAddr = "127.0.0.1:" + strconv.Itoa(pport)
		env[pprofAddrEnv] = p.pprofAddr
		env[pprofDirEnv] = pprofDir
	}
	args := []string{bin, "serve"}
	if cpu >= 0 {
		args = append([]string{"taskset", "-c", strconv.Itoa(cpu)}, args...)
	}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Env = hermeticEnv(env)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	waited, err := testenv.StartProcessGroup(p.cmd)
	if err != nil {
		return nil, fmt.Errorf("start s3seal: %w", err)
	}
	go func() {
		<-waited
		close(p.done)
	}()
	if err := p.waitReady(30 * time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("s3seal serve: %w\noutput:\n%s", err, p.out.String())
	}
	return p, nil
}

func (p *proxyProc) waitReady(timeout time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return errors.New("exited before /healthz answered")
		default:
		}
		resp, err := hc.Get(p.endpoint + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("/healthz not ready after %s", timeout)
}

// pid is the proxy's process id (taskset execs it, so it is the
// command's).
func (p *proxyProc) pid() int { return p.cmd.Process.Pid }

func (p *proxyProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proxyProc) stop() {
	if !p.exited() {
		_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
			<-p.done
		}
	}
	os.RemoveAll(p.dataDir)
}

// kmsCalls counts the KMS calls that reached the backend (one audit line
// each).
func (p *proxyProc) kmsCalls() (int, error) {
	b, err := os.ReadFile(p.auditLog)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	return bytes.Count(b, []byte{'\n'}), err
}

// hermeticEnv is the harness's environment without AWS_, MINIO_ and
// S3SEAL_ variables, plus env.
func hermeticEnv(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "AWS_") || strings.HasPrefix(name, "MINIO_") || strings.HasPrefix(name, "S3SEAL_") {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// tailBuffer keeps the last limit bytes written to it.
type tailBuffer struct {
	mu    sync.Mutex
	buf   []byte
	limit int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.limit {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.limit:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// pinProcess sets the CPU affinity of every thread of pid to cpu (what
// `taskset -a -p -c cpu pid` does).
func pinProcess(pid, cpu int) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	var set unix.CPUSet
	set.Set(cpu)
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("thread %d: %w", tid, err)
		}
	}
	return nil
}

// checkPinned fails unless every thread of pid may run on cpu alone.
func checkPinned(pid, cpu int) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &set); err != nil {
			if errors.Is(err, unix.ESRCH) {
				continue
			}
			return err
		}
		if set.Count() != 1 || !set.IsSet(cpu) {
			return fmt.Errorf("--pin: thread %d of process %d is not pinned to CPU %d alone", tid, pid, cpu)
		}
	}
	return nil
}

// procCPU returns the user+system CPU time pid has used.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces: fields after it
	// start behind the last ')'. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// procIO is a process's read and write system calls (syscr, syscw of
// /proc/PID/io) and context switches, voluntary and not, of all its
// threads (/proc/PID/task/*/status); ok is false if they could not be read.
type procIO struct {
	reads, writes, switches int64
	ok                      bool
}

func readProcIO(pid int) procIO {
	var p procIO
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return p
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch k {
		case "syscr":
			p.reads = n
		case "syscw":
			p.writes = n
		}
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return p
	}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue // a thread that ended
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				p.switches += n
			}
		}
	}
	p.ok = true
	return p
}

// clockTicks is sysconf(_SC_CLK_TCK), 100 on every Linux architecture Go
// supports.
const clockTicks = 100
