package testenv

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// AWSCLI is one installed major version of the aws cli.
type AWSCLI struct {
	Name string // "v1" or "v2"
	Path string
}

// AWSCLIs returns aws cli v1 and v2, which the suites run side by side:
// v1 is on the machine image (pip), v2 is Debian's awscli package, which
// .ci/run installs. It fails the test if either is missing: a client suite
// never skips silently.
func AWSCLIs(t testing.TB) []AWSCLI {
	t.Helper()
	found := map[string]string{}
	var candidates []string
	if p, err := exec.LookPath("aws"); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/bin/aws", "/usr/local/bin/aws")
	for _, p := range candidates {
		abs, err := filepath.Abs(p)
		if err != nil {
			continue
		}
		out, err := exec.Command(abs, "--version").CombinedOutput()
		if err != nil {
			continue
		}
		for _, v := range []string{"1", "2"} {
			if strings.HasPrefix(string(out), "aws-cli/"+v+".") && found["v"+v] == "" {
				found["v"+v] = abs
			}
		}
	}
	var clis []AWSCLI
	for _, v := range []string{"v1", "v2"} {
		if found[v] == "" {
			t.Fatalf("aws cli %s not found (.ci/run installs it: v1 with pip, v2 as Debian's awscli)", v)
		}
		clis = append(clis, AWSCLI{Name: v, Path: found[v]})
	}
	return clis
}
