package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs the whole harness with tiny sizes against the real
// MinIO and s3seal, reading every byte back and checking it, so that a
// broken harness (or a proxy that breaks one of its workloads) fails CI.
func TestSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	sizes := Sizes{
		Large: 6<<20 + 12345, Streams: 2,
		PartSize: 5 << 20, PartConcurrency: 2, // two parts, the last short
		RangeSize: 1<<20 + 7, RangeCount: 8, RangeConcurrency: 4,
		SmallSizes: []int64{4 << 10, 70_000}, SmallCount: 40, SmallConcurrency: 8,
		ListRepeats: 1, LatencyCount: 5,
	}
	var progress bytes.Buffer
	rep, err := Run(ctx, Config{Sizes: sizes, Verify: true, Log: &progress})
	if err != nil {
		t.Fatalf("%v\nprogress:\n%s", err, progress.String())
	}
	if len(rep.Errors) > 0 {
		t.Fatalf("workloads failed:\n%s", strings.Join(rep.Errors, "\n"))
	}

	const large = "6303801 B"
	want := []string{
		"PUT " + large + " x1", "GET " + large + " x2", "multipart PUT " + large + " (5 MiB parts x2)",
		"GET multipart " + large + " x1", "range GET 1048583 B of " + large + " x4",
		"PUT 4 KiB x8", "GET 70000 B x8: p99", "HEAD 4 KiB x8", "LIST 40 objects (pages of 1000)",
	}
	for _, name := range want {
		m, ok := rep.Find(name)
		if !ok {
			t.Errorf("no measurement %q", name)
			continue
		}
		for _, s := range Systems {
			if v, ok := m.Values[s]; !ok || v <= 0 {
				t.Errorf("%s on %s: %v (present %v)", name, s, v, ok)
			}
		}
	}
	// 6 MB take a few ms of CPU, below /proc's 10 ms resolution: only
	// check that the proxy's CPU was recorded, and for it alone.
	if m, ok := rep.Find("PUT " + large + " x1: proxy CPU"); !ok || len(m.Values) != 1 || m.Values[S3seal] < 0 {
		t.Errorf("proxy CPU: %+v", m)
	}
	for _, name := range []string{"GET 4 KiB x1: p99", "HEAD 4 KiB x1: p50"} {
		if m, ok := rep.Find(name); !ok || len(m.Values) != len(Systems) {
			t.Errorf("%s: %+v", name, m)
		}
	}
	if m, ok := rep.Find("GET 4 KiB x1: p50 added to direct"); !ok || m.Unit != unitMsAdded || len(m.Values) != len(Systems)-1 {
		t.Errorf("added p50: %+v", m)
	}
	if m, ok := rep.Find("PUT 4 KiB x1: p99 added to direct"); !ok || m.Unit != unitMsAdded || len(m.Values) != len(Systems)-1 {
		t.Errorf("added p99: %+v", m)
	}
	for _, name := range []string{"PUT " + large + " x1: floor CPU, TCP relay, splice", "GET " + large + " x1: floor CPU, HTTP relay + AES-GCM"} {
		if m, ok := rep.Find(name); !ok || len(m.Values) != 1 || m.Values[S3seal] < 0 {
			t.Errorf("%s: %+v", name, m)
		}
	}
	if m, ok := rep.Find("proxy peak RSS, large objects"); !ok || len(m.Values) != 1 || m.Values[S3seal] < 1 {
		t.Errorf("proxy peak RSS: %+v", m)
	}
	// One data key serves all 40 PUTs: with the cache in front of the
	// audit log, at most one KMS call reaches the backend per size.
	m, ok := rep.Find("KMS calls per 1000 PUTs of 4 KiB")
	if !ok || m.Values[S3seal] > 1000.0/float64(sizes.SmallCount) {
		t.Errorf("KMS calls: %+v", m)
	}
	// The cost row is the PUTs' and GETs' calls at $0.03 per 10,000.
	mg, okg := rep.Find("KMS calls per 1000 GETs of 4 KiB")
	mc, okc := rep.Find("KMS cost per million objects of 4 KiB written and read")
	if want := (m.Values[S3seal] + mg.Values[S3seal]) / 2000 * 1e6 * 0.03 / 1e4; !okg || !okc || math.Abs(mc.Values[S3seal]-want) > 1e-9 {
		t.Errorf("KMS cost: %+v, want %v (GETs %+v)", mc, want, mg)
	}

	var table, md bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{table.String(), md.String()} {
		if !strings.Contains(out, "s3seal/direct") || !strings.Contains(out, "PUT 4 KiB x8") {
			t.Errorf("table:\n%s", out)
		}
	}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Measurements []struct {
			Name   string             `json:"name"`
			Unit   string             `json:"unit"`
			Values map[string]float64 `json:"values"`
		} `json:"measurements"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Measurements) != len(rep.Measurements) || back.Measurements[0].Values["minio_sse"] <= 0 {
		t.Errorf("JSON round trip: %s", b)
	}
	again, err := ReadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Measurements) != len(rep.Measurements) || again.Measurements[0].Values[S3seal] != rep.Measurements[0].Values[S3seal] {
		t.Errorf("ReadReport: %+v", again.Measurements[0])
	}
}

func TestGenReaderRandomAccess(t *testing.T) {
	const seed, size = 42, 1000
	whole, err := io.ReadAll(newGenReader(seed, 0, size))
	if err != nil {
		t.Fatal(err)
	}
	if len(whole) != size {
		t.Fatalf("read %d bytes", len(whole))
	}
	for _, c := range []struct{ off, n int64 }{{0, 1}, {1, 7}, {3, 8}, {7, 9}, {8, 16}, {13, 500}, {999, 1}} {
		got, err := io.ReadAll(newGenReader(seed, c.off, c.n))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, whole[c.off:c.off+c.n]) {
			t.Errorf("[%d, +%d) differs from the whole stream's bytes", c.off, c.n)
		}
	}
	other, _ := io.ReadAll(newGenReader(seed+1, 0, size))
	if bytes.Equal(other, whole) {
		t.Error("two seeds gave the same data")
	}
	s := &sink{seed: seed, off: 13, verify: true}
	if _, err := s.Write(whole[13:100]); err != nil {
		t.Errorf("sink refused the right bytes: %v", err)
	}
	bad := bytes.Clone(whole[100:200])
	bad[50] ^= 1
	if _, err := s.Write(bad); err != errMismatch {
		t.Errorf("sink accepted a flipped bit: %v", err)
	}
}

func TestPercentile(t *testing.T) {
	d := make([]time.Duration, 100)
	for i := range d {
		d[i] = time.Duration(i + 1)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 50}, {0.99, 99}, {1, 100}, {0.001, 1}} {
		if got := percentile(d, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile(d[:1], 0.99); got != 1 {
		t.Errorf("one sample: %v", got)
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{1 << 30: "1 GiB", 16 << 20: "16 MiB", 4 << 10: "4 KiB", 70_000: "70000 B", 3 << 29: "1536 MiB"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
	for x, want := range map[float64]string{1234.5: "1234", 12.34: "12.3", 1.234: "1.23", 0.8: "0.80", 0.01234: "0.0123", 0: "0.00"} {
		if got := formatNumber(x); got != want {
			t.Errorf("formatNumber(%v) = %q, want %q", x, got, want)
		}
	}
}

// A value measured again joins the samples and the row shows their median.
func TestReportRepeatMedian(t *testing.T) {
	var r Report
	r.add("GET", unitMBps, higher, S3seal, 10)
	if m, _ := r.Find("GET"); m.Values[S3seal] != 10 || m.Samples != nil {
		t.Fatalf("one value: %+v", m)
	}
	r.add("GET", unitMBps, higher, Direct, 50)
	for _, v := range []float64{30, 20} {
		r.add("GET", unitMBps, higher, S3seal, v)
	}
	m, _ := r.Find("GET")
	if m.Values[S3seal] != 20 || len(m.Samples[S3seal]) != 3 || m.Values[Direct] != 50 {
		t.Fatalf("three values: %+v", m)
	}
	r.add("GET", unitMBps, higher, S3seal, 40)
	if m, _ := r.Find("GET"); m.Values[S3seal] != 25 {
		t.Fatalf("even count: median %v, want 25", m.Values[S3seal])
	}
}

// TestFloorRatios checks that s3seal's proxy CPU is divided by each floor
// of the same report, and that a missing or zero floor adds no row.
func TestFloorRatios(t *testing.T) {
	rep := &Report{}
	rep.add("PUT 1 GiB x1: proxy CPU", unitCPU, lower, S3seal, 0.9)
	rep.add("PUT 1 GiB x1: floor CPU, TCP relay, splice", unitCPU, lower, S3seal, 0.3)
	rep.add("PUT 1 GiB x1: floor CPU, HTTP relay + AES-GCM", unitCPU, lower, S3seal, 0.6)
	rep.add("GET 1 GiB x1: proxy CPU", unitCPU, lower, S3seal, 0.5)
	rep.add("GET 1 GiB x1: floor CPU, TCP relay, splice", unitCPU, lower, S3seal, 0)
	rep.addFloorRatios("1 GiB")
	for name, want := range map[string]float64{
		"PUT 1 GiB x1: proxy CPU / floor (TCP relay, splice)":    3,
		"PUT 1 GiB x1: proxy CPU / floor (HTTP relay + AES-GCM)": 1.5,
	} {
		m, ok := rep.Find(name)
		if !ok || m.Unit != unitTimes || math.Abs(m.Values[S3seal]-want) > 1e-9 {
			t.Errorf("%s: %+v, want %v", name, m, want)
		}
	}
	for _, name := range []string{"GET 1 GiB x1: proxy CPU / floor (TCP relay, splice)", "GET 1 GiB x1: proxy CPU / floor (HTTP relay + AES-GCM)"} {
		if m, ok := rep.Find(name); ok {
			t.Errorf("%s: %+v, want no row", name, m)
		}
	}
}
