package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/s3seal/s3seal/internal/testenv"
)

// s3seal has no profiling endpoint of its own. For --pprof the harness
// builds it with one extra file, added with `go build -overlay` and never
// written into the source tree: when pprofAddrEnv is set it serves /start
// and /stop, which begin and end a CPU profile written to pprofDirEnv.
const (
	pprofAddrEnv = "S3SEAL_BENCH_PPROF_ADDR"
	pprofDirEnv  = "S3SEAL_BENCH_PPROF_DIR"
)

const pprofOverlaySource = `package main

// Added by the s3seal benchmark harness (bench/pprof.go) with go build
// -overlay; not part of s3seal's sources.

import (
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
)

func init() {
	addr, dir := os.Getenv("` + pprofAddrEnv + `"), os.Getenv("` + pprofDirEnv + `")
	if addr == "" || dir == "" {
		return
	}
	var mu sync.Mutex
	var f *os.File
	mux := http.NewServeMux()
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if f != nil {
			http.Error(w, "already profiling", http.StatusConflict)
			return
		}
		out, err := os.Create(filepath.Join(dir, filepath.Base(r.URL.Query().Get("name"))))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			out.Close()
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		f = out
	})
	mux.HandleFunc("/stop", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if f == nil {
			http.Error(w, "not profiling", http.StatusConflict)
			return
		}
		pprof.StopCPUProfile()
		err := f.Close()
		f = nil
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	go http.ListenAndServe(addr, mux)
}
`

// buildProfilingS3seal builds ./cmd/s3seal of the module in the working
// directory with the profiling endpoint, into dir.
func buildProfilingS3seal(dir string) (string, error) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		return "", fmt.Errorf("--pprof builds s3seal from source, run it inside the s3seal module: %w", err)
	}
	src := filepath.Join(dir, "zz_bench_pprof.go")
	if err := os.WriteFile(src, []byte(pprofOverlaySource), 0o644); err != nil {
		return "", err
	}
	overlay, err := json.Marshal(map[string]map[string]string{
		"Replace": {filepath.Join(root, "cmd", "s3seal", "zz_bench_pprof.go"): src},
	})
	if err != nil {
		return "", err
	}
	overlayFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "s3seal-pprof")
	cmd := exec.Command("go", "build", "-overlay", overlayFile, "-o", bin, "./cmd/s3seal")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -overlay ./cmd/s3seal: %v\n%s", err, out)
	}
	return bin, nil
}

// profile runs fn with a CPU profile of the proxy written to name (in the
// pprof dir). Without a profiling endpoint it just runs fn.
func (p *proxyProc) profile(ctx context.Context, name string, fn func() error) error {
	if p == nil || p.pprofAddr == "" {
		return fn()
	}
	if err := p.pprofCall(ctx, "start?name="+url.QueryEscape(name)); err != nil {
		return fmt.Errorf("start profile: %w", err)
	}
	ferr := fn()
	if err := p.pprofCall(context.WithoutCancel(ctx), "stop"); err != nil && ferr == nil {
		return fmt.Errorf("stop profile: %w", err)
	}
	return ferr
}

func (p *proxyProc) pprofCall(ctx context.Context, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.pprofAddr+"/"+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	return nil
}
