package testenv

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// pinnedTool is a server the tests run, built from its Go module at a
// pinned version and cached in $(go env GOPATH)/bin like any `go install`.
type pinnedTool struct {
	bin     string // binary name
	module  string // main module of the binary
	pkg     string // package path for go install
	version string

	once sync.Once
	path string
	err  error
}

// binary returns the path of the tool at its pinned version. It looks in
// $GOBIN, $(go env GOPATH)/bin and $PATH; if none holds the pinned build,
// it runs `go install pkg@version` under a file lock, so that parallel test
// processes build it once. The result is cached for the process.
func (t *pinnedTool) binary() (string, error) {
	t.once.Do(func() { t.path, t.err = t.findOrBuild() })
	return t.path, t.err
}

func (t *pinnedTool) findOrBuild() (string, error) {
	if p, err := t.find(); err == nil {
		return p, nil
	}
	var path string
	err := withFileLock(t.bin+"-build.lock", func() error {
		// Another process may have built it while we waited.
		if p, err := t.find(); err == nil {
			path = p
			return nil
		}
		cmd := exec.Command("go", "install", t.pkg+"@"+t.version)
		cmd.Dir = os.TempDir() // outside any module: install exactly the pinned version
		cmd.Env = append(os.Environ(), "GOFLAGS=", "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("testenv: go install %s@%s: %v\n%s", t.pkg, t.version, err, out)
		}
		p, err := t.find()
		if err != nil {
			return fmt.Errorf("testenv: after go install: %w", err)
		}
		path = p
		return nil
	})
	return path, err
}

// find returns the first candidate binary whose embedded build info names
// the pinned module version.
func (t *pinnedTool) find() (string, error) {
	var tried []string
	for _, p := range t.candidates() {
		info, err := buildinfo.ReadFile(p)
		switch {
		case err != nil:
			tried = append(tried, fmt.Sprintf("%s: %v", p, err))
		case info.Main.Path != t.module:
			tried = append(tried, fmt.Sprintf("%s: main module is %q", p, info.Main.Path))
		case info.Main.Version != t.version:
			tried = append(tried, fmt.Sprintf("%s: version %s", p, info.Main.Version))
		default:
			return p, nil
		}
	}
	return "", fmt.Errorf("no %s binary at %s (%s)", t.bin, t.version, strings.Join(tried, "; "))
}

func (t *pinnedTool) candidates() []string {
	var c []string
	if gobin := goEnv("GOBIN"); gobin != "" {
		c = append(c, filepath.Join(gobin, t.bin))
	}
	if gopath := goEnv("GOPATH"); gopath != "" {
		for _, dir := range filepath.SplitList(gopath) {
			c = append(c, filepath.Join(dir, "bin", t.bin))
		}
	}
	if p, err := exec.LookPath(t.bin); err == nil {
		c = append(c, p)
	}
	return c
}
