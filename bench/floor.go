package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/s3seal/s3seal/internal/testenv"
)

// floorModes are the relay's two runs: bench/relay as it is (splice) and
// with -gcm (whole-batch reads, AES-256-GCM, one write per batch).
var floorModes = []struct {
	label string
	gcm   bool
}{{"TCP relay, splice", false}, {"HTTP relay + AES-GCM", true}}

// floor measures what a proxy has to spend on this machine: bench/relay
// takes s3seal's place (pinned where s3seal is) between the same client
// and the plain MinIO, and forwards the same 1 GiB PUT and GET; once
// splicing (the kernel's loopback path alone), once reading whole batches
// and running AES-256-GCM over every byte as s3seal does. Its CPU time per
// GiB has no HTTP beyond finding the bodies, no signatures and no
// allocation: s3seal's proxy CPU rows are to be read against these
// (addFloorRatios).
func (r *runner) floor(ctx context.Context) error {
	z := r.cfg.Sizes
	sz := formatSize(z.Large)
	var bin string
	for _, m := range floorModes {
		workload := "floor: " + m.label
		if r.cfg.Filter != nil && !r.cfg.Filter.MatchString(workload) {
			continue
		}
		r.ran = true
		if bin == "" {
			var err error
			if bin, err = buildRelay(r.env.tmp); err != nil {
				return err
			}
		}
		r.logf("  %-28s", workload)
		if err := r.floorOnce(ctx, bin, m.label, m.gcm, sz); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.rep.Errors = append(r.rep.Errors, fmt.Sprintf("%s: %v", workload, err))
			r.logf("    error: %v", err)
		}
	}
	return nil
}

func (r *runner) floorOnce(ctx context.Context, bin, label string, gcm bool, sz string) error {
	cpu := -1
	if r.cfg.Pin {
		cpu = cpuProxy
	}
	rel, err := startRelay(bin, r.env.plain.Endpoint, cpu, gcm)
	if err != nil {
		return err
	}
	defer rel.stop()
	i := slices.IndexFunc(r.env.systems, func(s *system) bool { return s.name == Direct })
	if i < 0 {
		return fmt.Errorf("no %s system", Direct)
	}
	direct := r.env.systems[i]
	s := &system{name: S3seal, bucket: direct.bucket,
		client: newS3Client(newHTTPClient(), rel.endpoint, r.env.plain.AccessKey, r.env.plain.SecretKey)}
	size := r.cfg.Sizes.Large
	const key = "floor/0"
	defer func() { _ = direct.delete(context.WithoutCancel(ctx), key) }()
	for _, step := range []struct {
		op string
		fn func() error
	}{
		{"PUT", func() error { return s.put(ctx, key, size) }},
		{"GET", func() error { return s.get(ctx, key, 0, size, false, r.cfg.Verify) }},
	} {
		before, err := procCPU(rel.cmd.Process.Pid)
		if err != nil {
			return err
		}
		if err := step.fn(); err != nil {
			return fmt.Errorf("%s through the relay: %w", step.op, err)
		}
		after, err := procCPU(rel.cmd.Process.Pid)
		if err != nil {
			return err
		}
		r.rep.add(fmt.Sprintf("%s %s x1: floor CPU, %s", step.op, sz, label), unitCPU, lower, S3seal,
			(after-before).Seconds()/(float64(size)/(1<<30)))
	}
	return nil
}

// addFloorRatios adds, for PUT and GET of size sz, s3seal's proxy CPU
// divided by each floor's (their medians, from the same run): 1.00x means
// s3seal spends what the cheapest proxy doing the same work would, and
// what is above it is s3seal's own (HTTP, signatures, allocation, framing).
func (r *Report) addFloorRatios(sz string) {
	for _, op := range []string{"PUT", "GET"} {
		p, ok := r.Find(fmt.Sprintf("%s %s x1: proxy CPU", op, sz))
		if !ok || p.Values[S3seal] <= 0 {
			continue
		}
		for _, m := range floorModes {
			f, ok := r.Find(fmt.Sprintf("%s %s x1: floor CPU, %s", op, sz, m.label))
			if !ok || f.Values[S3seal] <= 0 {
				continue
			}
			r.add(fmt.Sprintf("%s %s x1: proxy CPU / floor (%s)", op, sz, m.label), unitTimes, lower, S3seal,
				p.Values[S3seal]/f.Values[S3seal])
		}
	}
}

// buildRelay builds bench/relay into dir.
func buildRelay(dir string) (string, error) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "relay")
	cmd := exec.Command("go", "build", "-o", bin, "./bench/relay")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./bench/relay: %v\n%s", err, out)
	}
	return bin, nil
}

type relayProc struct {
	endpoint string
	cmd      *exec.Cmd
	waited   <-chan error // testenv.StartProcessGroup's
	out      *os.File     // read end of the relay's stdout
}

// startRelay runs the relay in front of the store at endpoint, under
// taskset if cpu >= 0, and waits for its address.
func startRelay(bin, endpoint string, cpu int, gcm bool) (*relayProc, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	args := []string{bin, "-target", u.Host, "-gcm=" + strconv.FormatBool(gcm)}
	if cpu >= 0 {
		args = append([]string{"taskset", "-c", strconv.Itoa(cpu)}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = os.Stderr
	// A pipe of our own rather than StdoutPipe: the wait runs beside the
	// read (testenv.StartProcessGroup), and Wait closes StdoutPipe's.
	out, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = w
	waited, err := testenv.StartProcessGroup(cmd)
	w.Close()
	if err != nil {
		out.Close()
		return nil, err
	}
	rel := &relayProc{cmd: cmd, waited: waited, out: out}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		addr, ok := strings.CutPrefix(strings.TrimSpace(s), "listening on ")
		if !ok {
			rel.stop()
			return nil, fmt.Errorf("relay: unexpected first line %q", s)
		}
		rel.endpoint = "http://" + addr
	case <-time.After(30 * time.Second):
		rel.stop()
		return nil, fmt.Errorf("relay did not start")
	}
	return rel, nil
}

func (p *relayProc) stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.waited
	p.out.Close()
}
