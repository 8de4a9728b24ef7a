package keyring

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/kmstest"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func open(t *testing.T, cfg Config) *Keyring {
	t.Helper()
	k, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func mustCreate(t *testing.T, k *Keyring, desc string) string {
	t.Helper()
	md, err := k.CreateKey(desc)
	if err != nil {
		t.Fatal(err)
	}
	return md.KeyID
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if kms.ErrorCode(err) != code {
		t.Fatalf("got %v, want %s", err, code)
	}
}

func TestSuite(t *testing.T) {
	kmstest.Run(t, func(t *testing.T) kmstest.Env {
		k := open(t, Config{Dir: t.TempDir()})
		id := mustCreate(t, k, "suite")
		other := mustCreate(t, k, "other")
		if err := k.CreateAlias("alias/suite", id); err != nil {
			t.Fatal(err)
		}
		return kmstest.Env{
			Client: k, KeyID: id, KeyARN: ARN(id), Alias: "alias/suite",
			OtherKeyID: other, MissingKeyID: "0b0e8f2c-0000-4000-8000-000000000000",
		}
	})
}

func TestLifecycle(t *testing.T) {
	clk := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	k := open(t, Config{Dir: t.TempDir(), Now: clk.Now})
	ctx := context.Background()
	id := mustCreate(t, k, "life")
	ec := kms.BucketContext("b")
	dk, err := k.GenerateDataKey(ctx, id, ec)
	if err != nil {
		t.Fatal(err)
	}
	works := func() {
		t.Helper()
		if _, err := k.GenerateDataKey(ctx, id, ec); err != nil {
			t.Fatal(err)
		}
		pt, err := k.Decrypt(ctx, id, dk.Ciphertext, ec)
		if err != nil || !bytes.Equal(pt, dk.Plaintext) {
			t.Fatal(err)
		}
	}
	fails := func(code string) {
		t.Helper()
		_, err := k.GenerateDataKey(ctx, id, ec)
		wantCode(t, err, code)
		_, err = k.Decrypt(ctx, id, dk.Ciphertext, ec)
		wantCode(t, err, code)
		_, err = k.Decrypt(ctx, "", dk.Ciphertext, ec)
		wantCode(t, err, code)
		_, err = k.Encrypt(ctx, id, []byte("x"), ec)
		wantCode(t, err, code)
	}

	t.Run("disable", func(t *testing.T) {
		if err := k.DisableKey(id); err != nil {
			t.Fatal(err)
		}
		fails(kms.CodeDisabled)
		md, _ := k.DescribeKey(ctx, id)
		if md.KeyState != kms.KeyDisabled {
			t.Fatal(md.KeyState)
		}
		_, err := k.RotateKey(id)
		wantCode(t, err, kms.CodeDisabled)
	})
	t.Run("enable", func(t *testing.T) {
		if err := k.EnableKey(id); err != nil {
			t.Fatal(err)
		}
		works()
	})
	t.Run("rotate", func(t *testing.T) {
		v, err := k.RotateKey(id)
		if err != nil || v != 2 {
			t.Fatalf("rotate: v%d, %v", v, err)
		}
		works() // the version-1 blob still decrypts
		dk2, err := k.GenerateDataKey(ctx, id, ec)
		if err != nil {
			t.Fatal(err)
		}
		if got := blobVersion(dk2.Ciphertext); got != 2 {
			t.Fatalf("new blob uses version %d, want 2", got)
		}
		if got := blobVersion(dk.Ciphertext); got != 1 {
			t.Fatalf("old blob version %d", got)
		}
		// A blob claiming version 3 (which does not exist) or relabelled
		// from version 2 to 1 is refused.
		bad := bytes.Clone(dk2.Ciphertext)
		bad[20] = 1
		_, err = k.Decrypt(ctx, id, bad, ec)
		wantCode(t, err, kms.CodeInvalidCiphertext)
		bad[20] = 3
		_, err = k.Decrypt(ctx, id, bad, ec)
		wantCode(t, err, kms.CodeInvalidCiphertext)
		md, _ := k.DescribeKey(ctx, id)
		if md.KeyVersions != 2 {
			t.Fatal(md.KeyVersions)
		}
	})
	t.Run("schedule deletion", func(t *testing.T) {
		for _, days := range []int{6, 31, -1} {
			_, err := k.ScheduleKeyDeletion(id, days)
			wantCode(t, err, kms.CodeValidation)
		}
		when, err := k.ScheduleKeyDeletion(id, 7)
		if err != nil {
			t.Fatal(err)
		}
		if !when.Equal(clk.Now().Add(7 * 24 * time.Hour)) {
			t.Fatal(when)
		}
		fails(kms.CodeInvalidState)
		wantCode(t, k.EnableKey(id), kms.CodeInvalidState)
		wantCode(t, k.DisableKey(id), kms.CodeInvalidState)
		_, err = k.ScheduleKeyDeletion(id, 10)
		wantCode(t, err, kms.CodeInvalidState)
		md, err := k.DescribeKey(ctx, id)
		if err != nil || md.KeyState != kms.KeyPendingDeletion || !md.DeletionDate.Equal(when) {
			t.Fatalf("%+v %v", md, err)
		}
	})
	t.Run("cancel deletion", func(t *testing.T) {
		if err := k.CancelKeyDeletion(id); err != nil {
			t.Fatal(err)
		}
		// As in AWS KMS, a cancelled key is Disabled until enabled.
		fails(kms.CodeDisabled)
		wantCode(t, k.CancelKeyDeletion(id), kms.CodeInvalidState)
		if err := k.EnableKey(id); err != nil {
			t.Fatal(err)
		}
		works()
	})
	t.Run("deletion date passes", func(t *testing.T) {
		if err := k.CreateAlias("alias/doomed", id); err != nil {
			t.Fatal(err)
		}
		if _, err := k.ScheduleKeyDeletion(id, 7); err != nil {
			t.Fatal(err)
		}
		clk.Add(7*24*time.Hour - time.Second)
		fails(kms.CodeInvalidState)
		clk.Add(time.Second)
		fails(kms.CodeNotFound)
		_, err := k.DescribeKey(ctx, "alias/doomed")
		wantCode(t, err, kms.CodeNotFound)
		wantCode(t, k.CancelKeyDeletion(id), kms.CodeNotFound)
		keys, _ := k.ListKeys()
		for _, md := range keys {
			if md.KeyID == id {
				t.Fatal("deleted key listed")
			}
		}
		// The next write purges it from the file, material included.
		mustCreate(t, k, "after")
		raw, _ := os.ReadFile(filepath.Join(k.cfg.Dir, FileName))
		if strings.Contains(string(raw), id) {
			t.Fatal("deleted key still in the keyring file")
		}
	})
}

func TestDefaultKey(t *testing.T) {
	dir := t.TempDir()
	k := open(t, Config{Dir: dir})
	ctx := context.Background()
	keys, _ := k.ListKeys()
	if len(keys) != 0 {
		t.Fatal("keys before first use")
	}
	dk, err := k.GenerateDataKey(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	dk2, err := k.GenerateDataKey(ctx, DefaultAlias, nil)
	if err != nil || dk2.KeyID != dk.KeyID {
		t.Fatal("default key changed", err)
	}
	keys, _ = k.ListKeys()
	if len(keys) != 1 || keys[0].KeyID != dk.KeyID || len(keys[0].Aliases) != 1 || keys[0].Aliases[0] != DefaultAlias {
		t.Fatalf("%+v", keys)
	}
	// Another process opening the same dir sees the same default key.
	k2 := open(t, Config{Dir: dir})
	dk3, err := k2.GenerateDataKey(ctx, "", nil)
	if err != nil || dk3.KeyID != dk.KeyID {
		t.Fatal(err)
	}
}

func TestAliases(t *testing.T) {
	k := open(t, Config{Dir: t.TempDir()})
	a, b := mustCreate(t, k, "a"), mustCreate(t, k, "b")
	for _, bad := range []string{"noprefix", "alias/", "alias/aws/x", "alias/sp ace"} {
		wantCode(t, k.CreateAlias(bad, a), kms.CodeValidation)
	}
	if err := k.CreateAlias("alias/x", a); err != nil {
		t.Fatal(err)
	}
	wantCode(t, k.CreateAlias("alias/x", b), kms.CodeAlreadyExists)
	wantCode(t, k.CreateAlias("alias/y", "9b0e8f2c-0000-4000-8000-000000000000"), kms.CodeNotFound)
	if err := k.UpdateAlias("alias/x", b); err != nil {
		t.Fatal(err)
	}
	md, err := k.DescribeKey(context.Background(), "alias/x")
	if err != nil || md.KeyID != b {
		t.Fatal(md, err)
	}
	if err := k.DeleteAlias("alias/x"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, k.DeleteAlias("alias/x"), kms.CodeNotFound)
	_, err = k.DescribeKey(context.Background(), "alias/x")
	wantCode(t, err, kms.CodeNotFound)
}

func TestFilePermissionsAndAtRest(t *testing.T) {
	dir := t.TempDir()
	k := open(t, Config{Dir: dir})
	id := mustCreate(t, k, "perm")
	for _, name := range []string{FileName, MasterKeyFileName, LockFileName} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	// The material in memory must not appear in the file.
	raw, _ := os.ReadFile(filepath.Join(dir, FileName))
	k.mu.RLock()
	mat := bytes.Clone(k.st.material[id][0])
	k.mu.RUnlock()
	if bytes.Contains(raw, mat) || strings.Contains(string(raw), b64(mat)) {
		t.Fatal("key material stored in clear")
	}
	// A wrong master key is refused.
	other := filepath.Join(t.TempDir(), "other.key")
	if err := createMasterKey(other, randReader()); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Dir: dir, MasterKeyFile: other}); err == nil || !strings.Contains(err.Error(), "wrong master key") {
		t.Fatalf("wrong master key: %v", err)
	}
	// A lost master key file is reported, not regenerated.
	os.Rename(filepath.Join(dir, MasterKeyFileName), filepath.Join(dir, "moved"))
	if _, err := Open(Config{Dir: dir}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing master key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, MasterKeyFileName)); err == nil {
		t.Fatal("a new master key was generated for an existing keyring")
	}
	os.Rename(filepath.Join(dir, "moved"), filepath.Join(dir, MasterKeyFileName))
	// A world-readable master key is refused.
	os.Chmod(filepath.Join(dir, MasterKeyFileName), 0o644)
	if _, err := Open(Config{Dir: dir}); err == nil {
		t.Fatal("0644 master key accepted")
	}
}

func TestPassphrase(t *testing.T) {
	dir := t.TempDir()
	k := open(t, Config{Dir: dir, Passphrase: "correct horse battery staple"})
	id := mustCreate(t, k, "pp")
	dk, err := k.GenerateDataKey(context.Background(), id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, MasterKeyFileName)); err == nil {
		t.Fatal("master key file created for a passphrase keyring")
	}
	if _, err := Open(Config{Dir: dir, Passphrase: "wrong"}); err == nil {
		t.Fatal("wrong passphrase accepted")
	}
	if _, err := Open(Config{Dir: dir}); err == nil {
		t.Fatal("no passphrase accepted")
	}
	k2 := open(t, Config{Dir: dir, Passphrase: "correct horse battery staple"})
	pt, err := k2.Decrypt(context.Background(), "", dk.Ciphertext, nil)
	if err != nil || !bytes.Equal(pt, dk.Plaintext) {
		t.Fatal(err)
	}
	// And a master-key keyring refuses a passphrase.
	dir2 := t.TempDir()
	open(t, Config{Dir: dir2})
	if _, err := Open(Config{Dir: dir2, Passphrase: "x"}); err == nil {
		t.Fatal("passphrase accepted for a master-key keyring")
	}
}

func TestCrashLeavesOldFile(t *testing.T) {
	dir := t.TempDir()
	k := open(t, Config{Dir: dir})
	id := mustCreate(t, k, "survivor")
	dk, _ := k.GenerateDataKey(context.Background(), id, nil)

	crash := errors.New("simulated crash")
	testHookBeforeRename = func() error { return crash }
	_, err := k.CreateKey("lost")
	testHookBeforeRename = nil
	if !errors.Is(err, crash) {
		t.Fatal(err)
	}
	temps, _ := filepath.Glob(filepath.Join(dir, FileName+".tmp-*"))
	if len(temps) != 1 {
		t.Fatalf("want the crash's temp file left behind, got %v", temps)
	}
	// A fresh process (after the "crash") sees the last good file.
	k2 := open(t, Config{Dir: dir})
	keys, err := k2.ListKeys()
	if err != nil || len(keys) != 1 || keys[0].KeyID != id {
		t.Fatalf("%+v %v", keys, err)
	}
	pt, err := k2.Decrypt(context.Background(), id, dk.Ciphertext, nil)
	if err != nil || !bytes.Equal(pt, dk.Plaintext) {
		t.Fatal(err)
	}
	// The next write succeeds and clears the debris.
	mustCreate(t, k2, "next")
	temps, _ = filepath.Glob(filepath.Join(dir, FileName+".tmp-*"))
	if len(temps) != 0 {
		t.Fatalf("stale temp files: %v", temps)
	}
	fi, _ := os.Stat(filepath.Join(dir, FileName))
	if fi.Mode().Perm() != 0o600 {
		t.Fatal(fi.Mode())
	}
}

// TestTwoProcesses: two Keyrings on one dir stand for the CLI and a
// running server. Mutations from either are never lost, and each sees the
// other's changes on its next call.
func TestTwoProcesses(t *testing.T) {
	dir := t.TempDir()
	server := open(t, Config{Dir: dir})
	cli := open(t, Config{Dir: dir})
	ctx := context.Background()
	id := mustCreate(t, cli, "from cli")
	if _, err := server.GenerateDataKey(ctx, id, nil); err != nil {
		t.Fatalf("server does not see the CLI's key: %v", err)
	}
	if err := cli.DisableKey(id); err != nil {
		t.Fatal(err)
	}
	_, err := server.GenerateDataKey(ctx, id, nil)
	wantCode(t, err, kms.CodeDisabled)

	// Concurrent mutations from both sides: none lost.
	var wg sync.WaitGroup
	for _, k := range []*Keyring{server, cli} {
		wg.Go(func() {
			for range 10 {
				if _, err := k.CreateKey("race"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for _, k := range []*Keyring{server, cli} {
		keys, _ := k.ListKeys()
		if len(keys) != 21 {
			t.Fatalf("%d keys, want 21", len(keys))
		}
	}
}

func TestIncorrectKeyID(t *testing.T) {
	k := open(t, Config{Dir: t.TempDir()})
	a, b := mustCreate(t, k, "a"), mustCreate(t, k, "b")
	dk, _ := k.GenerateDataKey(context.Background(), a, nil)
	_, err := k.Decrypt(context.Background(), b, dk.Ciphertext, nil)
	wantCode(t, err, kms.CodeIncorrectKey)
	// Splicing key b's id into a's blob fails authentication.
	db, _ := k.GenerateDataKey(context.Background(), b, nil)
	spliced := bytes.Clone(dk.Ciphertext)
	copy(spliced[1:17], db.Ciphertext[1:17])
	_, err = k.Decrypt(context.Background(), "", spliced, nil)
	wantCode(t, err, kms.CodeInvalidCiphertext)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func randReader() io.Reader { return rand.Reader }

func BenchmarkGenerateDataKey(b *testing.B) {
	k, err := Open(Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	ctx := context.Background()
	ec := kms.BucketContext("bench")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.GenerateDataKey(ctx, "", ec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt(b *testing.B) {
	k, err := Open(Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	ctx := context.Background()
	ec := kms.BucketContext("bench")
	dk, _ := k.GenerateDataKey(ctx, "", ec)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Decrypt(ctx, "", dk.Ciphertext, ec); err != nil {
			b.Fatal(err)
		}
	}
}

func TestARNForms(t *testing.T) {
	k := open(t, Config{Dir: t.TempDir()})
	id := mustCreate(t, k, "arn")
	if err := k.CreateAlias("alias/arn", id); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, good := range []string{ARN(id), "arn:aws:kms:" + Region + ":" + Account + ":alias/arn"} {
		if md, err := k.DescribeKey(ctx, good); err != nil || md.KeyID != id {
			t.Fatalf("%s: %v", good, err)
		}
	}
	for _, bad := range []string{
		"arn:aws:kms:us-east-1:" + Account + ":key/" + id,   // another region
		"arn:aws:kms:" + Region + ":111111111111:key/" + id, // another account
		"arn:aws:s3:" + Region + ":" + Account + ":key/" + id,
		"arn:aws:kms:" + Region,
	} {
		_, err := k.DescribeKey(ctx, bad)
		wantCode(t, err, kms.CodeNotFound)
	}
}

func TestCreated(t *testing.T) {
	dir := t.TempDir()
	k := open(t, Config{Dir: dir})
	if !k.Created() || k.MasterKeyFile() != filepath.Join(dir, MasterKeyFileName) {
		t.Fatal(k.Created(), k.MasterKeyFile())
	}
	if k2 := open(t, Config{Dir: dir}); k2.Created() {
		t.Fatal("reopened keyring reports Created")
	}
}
