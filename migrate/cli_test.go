package migrate_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/migrate"
)

// newKeyring makes an embedded keyring with the default alias (as serve
// does on first start) and returns its directory.
func newKeyring(t testing.TB) (string, *keyring.Keyring) {
	t.Helper()
	dir := t.TempDir()
	kr, err := keyring.Open(keyring.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kr.Close() })
	md, err := kr.CreateKey("default")
	if err != nil {
		t.Fatal(err)
	}
	if err := kr.CreateAlias(keyring.DefaultAlias, md.KeyID); err != nil {
		t.Fatal(err)
	}
	return dir, kr
}

// keyringProxy starts s3seal in front of u with the keyring in dir.
func keyringProxy(t testing.TB, u *testenv.Upstream, dir string) *testenv.S3seal {
	t.Helper()
	env := u.UpstreamEnv()
	env["S3SEAL_DATA_DIR"] = dir
	return testenv.StartS3seal(t, env)
}

// cliEnv is the environment of an s3seal migrate between two stores, both
// with the keyring in dir.
func cliEnv(src, dst *testenv.Upstream, dir string) []string {
	env := []string{"HOME=" + os.TempDir(), "PATH=" + os.Getenv("PATH")}
	for side, u := range map[string]*testenv.Upstream{"SRC": src, "DST": dst} {
		env = append(env,
			"S3SEAL_"+side+"_UPSTREAM="+u.Endpoint, "S3SEAL_"+side+"_UPSTREAM_ACCESS_KEY="+u.AccessKey,
			"S3SEAL_"+side+"_UPSTREAM_SECRET_KEY="+u.SecretKey, "S3SEAL_"+side+"_DATA_DIR="+dir)
	}
	return env
}

func s3seal(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(testenv.BuildS3seal(t), args...)
	cmd.Env = env
	return cmd
}

// runJSON runs s3seal with --json and decodes its report; the exit status
// is returned as err.
func runJSON(t *testing.T, env []string, args ...string) (*migrate.Report, error) {
	cmd := s3seal(t, env, append(args, "--json")...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var rep migrate.Report
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
		return nil, fmt.Errorf("s3seal %s: %v, no JSON report (%v):\n%s\n%s", strings.Join(args, " "), err, jerr, out.String(), errOut.String())
	}
	return &rep, err
}

// A migration killed (SIGKILL) in the middle of a multipart object, then
// run again: everything arrives once, intact, and the upload the first run
// left behind is gone.
func TestKilledMidway(t *testing.T) {
	dir, _ := newKeyring(t)
	src, dst := &regA.store.Upstream, &regB.store.Upstream
	createBucket(t, src, "kill-src")
	createBucket(t, dst, "kill-dst")
	p := keyringProxy(t, src, dir)
	objs := corpus(1)
	for i := range 4 {
		objs = append(objs, object{key: fmt.Sprintf("mp/big-%d", i), data: pattern(uint64(40+i), 15<<20), parts: []int{5 << 20, 5 << 20, 5 << 20}})
	}
	objs = write(t, p.S3Client(), "kill-src", objs)

	// Kill the run as soon as the destination has an upload in progress.
	cmd := s3seal(t, cliEnv(src, dst, dir), "migrate", "s3://kill-src", "s3://kill-dst", "--workers", "2", "--progress", "never")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dc := dst.S3Client()
	killed := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		ups, err := dc.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String("kill-dst")})
		if err == nil && len(ups.Uploads) > 0 {
			cmd.Process.Kill()
			killed = true
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("no upload seen in progress; the run said:\n%s", out.String())
	}
	ups, _ := dc.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String("kill-dst")})
	if len(ups.Uploads) == 0 {
		t.Fatal("the killed run left no upload behind: the test killed nothing midway")
	}
	t.Logf("killed with %d uploads in progress after:\n%s", len(ups.Uploads), out.String())

	rep, err := runJSON(t, cliEnv(src, dst, dir), "migrate", "s3://kill-src", "s3://kill-dst", "--verify=full")
	if err != nil || rep.Failed != 0 || rep.Copied+rep.Skipped != len(objs) || rep.Copied == 0 || rep.Skipped == 0 {
		t.Fatalf("re-run: %v, %+v", err, rep)
	}
	ups, _ = dc.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String("kill-dst")})
	if len(ups.Uploads) != 0 {
		t.Errorf("%d uploads left at the destination", len(ups.Uploads))
	}
	check(t, keyringProxy(t, dst, dir).S3Client(), "kill-dst", "", objs)
}

// Four processes, each with --shard K/4, over one S3 Inventory report:
// every object migrated exactly once.
func TestShardedInventory(t *testing.T) {
	dir, _ := newKeyring(t)
	src, dst := &regA.store.Upstream, &regB.store.Upstream
	createBucket(t, src, "shard-src")
	createBucket(t, src, "shard-inv")
	createBucket(t, dst, "shard-dst")
	p := keyringProxy(t, src, dir)
	c := p.S3Client()
	var objs []object
	var csv1, csv2 bytes.Buffer
	for i := range 40 {
		o := object{key: fmt.Sprintf("file %02d+ü.txt", i), data: pattern(uint64(100+i), 100*i)}
		if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("shard-src"), Key: &o.key, Body: bytes.NewReader(o.data)}); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
		w := &csv1
		if i%2 == 1 {
			w = &csv2
		}
		// S3 Inventory's CSV: quoted fields, URL-encoded keys.
		fmt.Fprintf(w, "\"shard-src\",\"%s\",\"%d\",\"2026-12-01T00:00:00.000Z\",\"etag\"\n", url.QueryEscape(o.key), len(o.data))
	}
	// An object not in the report is not migrated.
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("shard-src"), Key: aws.String("not-listed"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	ic := src.S3Client()
	put := func(key string, b []byte) {
		if _, err := ic.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("shard-inv"), Key: &key, Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(csv1.Bytes())
	zw.Close()
	put("inv/shard-src/daily/data/a.csv.gz", gz.Bytes())
	put("inv/shard-src/daily/data/b.csv", csv2.Bytes())
	put("inv/shard-src/daily/2026-12-01T00-00Z/manifest.json", []byte(`{
  "sourceBucket": "shard-src", "destinationBucket": "arn:aws:s3:::shard-inv", "version": "2016-11-30",
  "fileFormat": "CSV", "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag",
  "files": [{"key": "inv/shard-src/daily/data/a.csv.gz", "size": 1, "MD5checksum": "x"},
            {"key": "inv/shard-src/daily/data/b.csv", "size": 1, "MD5checksum": "x"}]}`))

	var wg sync.WaitGroup
	reps := make([]*migrate.Report, 4)
	errs := make([]error, 4)
	for k := range 4 {
		wg.Go(func() {
			reps[k], errs[k] = runJSON(t, cliEnv(src, dst, dir), "migrate", "s3://shard-src", "s3://shard-dst",
				"--inventory", "s3://shard-inv/inv/shard-src/daily/2026-12-01T00-00Z/manifest.json", "--shard", fmt.Sprintf("%d/4", k))
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for k, rep := range reps {
		if errs[k] != nil || rep == nil || rep.Failed != 0 {
			t.Fatalf("shard %d: %v %+v", k, errs[k], rep)
		}
		if rep.Copied == 0 || rep.Copied == len(objs) {
			t.Errorf("shard %d copied %d of %d objects", k, rep.Copied, len(objs))
		}
		for _, r := range rep.Objects {
			seen[r.Source]++
		}
	}
	for _, o := range objs {
		if n := seen["s3://shard-src/"+o.key]; n != 1 {
			t.Errorf("%s migrated %d times", o.key, n)
		}
	}
	if len(seen) != len(objs) {
		t.Errorf("%d objects migrated, want %d", len(seen), len(objs))
	}
	check(t, keyringProxy(t, dst, dir).S3Client(), "shard-dst", "", objs)

	// A plain list of keys, into another prefix.
	list := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(list, []byte(objs[3].key+"\n# a comment\nnot-listed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := runJSON(t, cliEnv(src, dst, dir), "migrate", "s3://shard-src", "s3://shard-dst/from-list/", "--keys", list)
	if err != nil || rep.Copied != 2 || rep.Objects[1].Dest != "s3://shard-dst/from-list/not-listed" {
		t.Fatalf("--keys: %v %+v", err, rep)
	}
}

// rewrap re-wraps a bucket in place under a new key: afterwards the old
// key is disabled, and every object, single and multipart, still reads
// through s3seal.
func TestRewrap(t *testing.T) {
	dir, kr := newKeyring(t)
	src := &regA.store.Upstream
	createBucket(t, src, "rewrap")
	p := keyringProxy(t, src, dir)
	objs := write(t, p.S3Client(), "rewrap", corpus(2))
	p.Stop()
	old, err := kr.DescribeKey(context.Background(), keyring.DefaultAlias)
	if err != nil {
		t.Fatal(err)
	}
	md, err := kr.CreateKey("new")
	if err != nil {
		t.Fatal(err)
	}
	if err := kr.CreateAlias("alias/new", md.KeyID); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + os.TempDir(), "S3SEAL_UPSTREAM=" + src.Endpoint, "S3SEAL_UPSTREAM_ACCESS_KEY=" + src.AccessKey,
		"S3SEAL_UPSTREAM_SECRET_KEY=" + src.SecretKey, "S3SEAL_DATA_DIR=" + dir}

	rep, err := runJSON(t, env, "rewrap", "s3://rewrap", "--to", "alias/new", "--dry-run")
	if err != nil || rep.Planned != len(objs) || rep.Copied != 0 {
		t.Fatalf("dry run: %v %+v", err, rep)
	}
	rep, err = runJSON(t, env, "rewrap", "s3://rewrap", "--to", "alias/new", "--verify")
	if err != nil || rep.Copied != len(objs) {
		t.Fatalf("rewrap: %v %+v", err, rep)
	}
	for _, r := range rep.Objects {
		want := migrate.ModeMetadataCopy
		if strings.HasPrefix(r.Source, "s3://rewrap/mp/") {
			want = migrate.ModeParts
		}
		if r.Mode != want {
			t.Errorf("%s: %s, want %s", r.Source, r.Mode, want)
		}
	}
	if err := kr.DisableKey(old.KeyID); err != nil {
		t.Fatal(err)
	}
	check(t, keyringProxy(t, src, dir).S3Client(), "rewrap", "", objs)

	// A re-run has nothing to do, and needs no old key.
	rep, err = runJSON(t, env, "rewrap", "s3://rewrap", "--to", "alias/new")
	if err != nil || rep.Skipped != len(objs) {
		t.Fatalf("re-run: %v %+v", err, rep)
	}
}
