package testenv

import (
	"crypto/fips140"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// InFIPSMode runs the calling top-level test in FIPS 140-3 mode. In a FIPS
// pass (GOFIPS140=v1.0.0 go test, or GODEBUG=fips140=on) it returns true and
// the test goes on in this process. Otherwise it runs this test binary again
// for this test alone with GODEBUG=fips140=on added, fails t unless that run
// passes the test (a skip there is a failure: the test exists to run in that
// mode), and returns false: the caller then returns. So a test of what FIPS
// mode does runs in every pass, not only in the FIPS one.
func InFIPSMode(t *testing.T) bool {
	t.Helper()
	if fips140.Enabled() {
		return true
	}
	if strings.Contains(t.Name(), "/") {
		t.Fatal("testenv.InFIPSMode: call it from a top-level test, not a subtest")
	}
	godebug := "fips140=on"
	if cur := os.Getenv("GODEBUG"); cur != "" {
		// The last setting of a name wins.
		godebug = cur + "," + godebug
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "GODEBUG="+godebug)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()+" ") {
		t.Fatalf("%s with GODEBUG=%s: %v\n%s", t.Name(), godebug, err, out)
	}
	t.Logf("passed with GODEBUG=%s in a process of its own", godebug)
	return false
}
