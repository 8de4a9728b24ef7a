package tools_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// resticTree is about 300 MiB: four large files, ten of 4 MiB and a few
// hundred small ones.
func resticTree(seed uint64) []fileSpec {
	rng := rand.New(rand.NewPCG(seed, 2))
	specs := []fileSpec{
		{"large/a.bin", 96 << 20},
		{"large/b.bin", 64<<20 + 12345},
		{"large/c.bin", 48 << 20},
		{"large/d.bin", 32<<20 - 1},
	}
	for i := 0; i < 10; i++ {
		specs = append(specs, fileSpec{fmt.Sprintf("mid/m%02d", i), 4<<20 + rng.IntN(4096)})
	}
	for i := 0; i < 300; i++ {
		specs = append(specs, fileSpec{fmt.Sprintf("small/%02d/s%03d", i%17, i), rng.IntN(128 << 10)})
	}
	return specs
}

var resticAdded = regexp.MustCompile(`Added to the repository: ([0-9.]+) ([KMGT]?i?B)`)

// resticAddedBytes parses "Added to the repository: 1.234 MiB (…)".
func resticAddedBytes(t *testing.T, out string) float64 {
	t.Helper()
	m := resticAdded.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("restic backup printed no \"Added to the repository\":\n%s", tail(out, 4<<10))
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("restic backup: %q: %v", m[0], err)
	}
	unit := map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m[2]]
	if unit == 0 {
		t.Fatalf("restic backup: unknown unit in %q", m[0])
	}
	return v * unit
}

func TestRestic(t *testing.T) { forEachStore(t, testRestic) }

func testRestic(t *testing.T, st *storeEnv) {
	requireTool(t, "restic")
	p := st.startProxy(t, nil)
	bucket := st.newBucket(t, "restic")
	work := t.TempDir()
	home := t.TempDir()
	rs := &tool{name: "restic", env: childEnv(home,
		"RESTIC_REPOSITORY=s3:"+p.Endpoint+"/"+bucket+"/repo",
		"RESTIC_PASSWORD="+"pw-"+strconv.FormatUint(rand.Uint64(), 16),
		"AWS_ACCESS_KEY_ID="+p.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+p.SecretKey,
		"AWS_DEFAULT_REGION=us-east-1",
	)}
	src := filepath.Join(work, "src")
	specs := resticTree(9)
	writeTree(t, src, specs, 9)
	total := 0
	for _, s := range specs {
		total += s.size
	}
	t.Logf("tree: %d files, %d MiB", len(specs), total>>20)
	rs.dir = work // back up "src", a relative path: restore puts it at target/src

	rs.ok(t, "init")
	out, _ := rs.ok(t, "backup", "src")
	added := resticAddedBytes(t, out)
	t.Logf("first backup: added %.0f bytes", added)
	if added < float64(total)*0.9 {
		t.Errorf("first backup added %.0f bytes for a %d-byte tree", added, total)
	}
	out, _ = rs.ok(t, "check", "--read-data")
	if !strings.Contains(out, "no errors were found") {
		t.Errorf("check --read-data:\n%s", tail(out, 4<<10))
	}
	rs.ok(t, "restore", "latest", "--target", filepath.Join(work, "restored"))
	assertSameTree(t, "restic restore", src, filepath.Join(work, "restored", "src"))

	out, _ = rs.ok(t, "backup", "src")
	added = resticAddedBytes(t, out)
	t.Logf("second backup: added %.0f bytes", added)
	if added > 64<<10 {
		t.Errorf("second backup of the unchanged tree added %.0f bytes, want (almost) nothing:\n%s", added, tail(out, 2<<10))
	}
	out, _ = rs.ok(t, "snapshots", "--json")
	var snaps []struct{ Paths []string }
	if err := json.Unmarshal([]byte(out), &snaps); err != nil {
		t.Fatalf("snapshots --json: %v\n%s", err, out)
	}
	if len(snaps) != 2 {
		t.Errorf("snapshots: %d, want 2:\n%s", len(snaps), out)
	}
}
