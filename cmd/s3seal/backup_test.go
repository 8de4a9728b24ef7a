package main

import (
	"bytes"
	"context"
	"crypto/fips140"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms"
)

// keysEnv points the keys commands at a fresh data dir and master key
// file, with no recovery passphrase set; it returns both paths.
func keysEnv(t *testing.T) (dataDir, keyFile string) {
	t.Helper()
	dataDir, keyFile = t.TempDir(), filepath.Join(t.TempDir(), "master.key")
	t.Setenv("S3SEAL_DATA_DIR", dataDir)
	t.Setenv("S3SEAL_MASTER_KEY_FILE", keyFile)
	t.Setenv("S3SEAL_KEYRING_PASSPHRASE", "")
	t.Setenv(recoveryPassphraseEnv, "")
	return dataDir, keyFile
}

func mustKeys(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runKeys(t, args...)
	if err != nil {
		t.Fatalf("keys %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func listJSON(t *testing.T) []keyView {
	t.Helper()
	var v []keyView
	if err := json.Unmarshal([]byte(mustKeys(t, "--json", "list")), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// wipe removes the data dir's content and the master key file: a lost host.
func wipe(t *testing.T, dataDir, keyFile string) {
	t.Helper()
	ents, err := os.ReadDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dataDir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
}

// TestKeysExportImportPassphrase: export under a passphrase from the
// environment, lose the data dir and the master key, import: keys list is
// the same (states, deletion dates, versions, aliases). A wrong passphrase,
// a damaged file, a file that is no backup and a short passphrase fail
// with a clear error and change nothing; a keyring with keys is not
// overwritten; --dry-run lists without a data dir; a passphrase file
// works too; the file is a plain age file.
// skipBackupInFIPSMode skips a test of keys export/import in FIPS mode,
// where both are refused (TestFIPSModeDecisions, run in every pass).
func skipBackupInFIPSMode(t *testing.T) {
	t.Helper()
	if fips140.Enabled() {
		t.Skip("keys export/import are refused in FIPS 140-3 mode (TestFIPSModeDecisions)")
	}
}

func TestKeysExportImportPassphrase(t *testing.T) {
	skipBackupInFIPSMode(t)
	dataDir, keyFile := keysEnv(t)
	mustKeys(t, "create", "-d", "photos", "--alias", "alias/photos")
	mustKeys(t, "rotate", "alias/photos")
	mustKeys(t, "create", "-d", "old", "--alias", "alias/old")
	mustKeys(t, "schedule-deletion", "alias/old", "--days", "7")
	before := listJSON(t)

	backup := filepath.Join(t.TempDir(), "keyring.age")
	t.Setenv(recoveryPassphraseEnv, "short")
	if _, err := runKeys(t, "export", "--to", backup); err == nil || !strings.Contains(err.Error(), "at least 12") {
		t.Fatalf("short passphrase: %v", err)
	}
	const pass = "correct horse battery staple"
	t.Setenv(recoveryPassphraseEnv, pass)
	mustKeys(t, "export", "--to", backup)
	if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	raw, _ := os.ReadFile(backup)
	if !bytes.HasPrefix(raw, []byte("age-encryption.org/v1\n-> scrypt ")) {
		t.Fatalf("not a passphrase age file: %q", raw[:40])
	}
	// The age format, opened with the age library alone.
	id, _ := age.NewScryptIdentity(pass)
	r, err := age.Decrypt(bytes.NewReader(raw), id)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := io.ReadAll(r)
	if !strings.Contains(string(doc), `"type": "s3seal keyring backup"`) {
		t.Fatalf("payload: %.80s", doc)
	}

	// Importing into the keyring it came from is refused.
	if _, err := runKeys(t, "import", "--from", backup); err == nil || !strings.Contains(err.Error(), "--merge") {
		t.Fatalf("import over a keyring with keys: %v", err)
	}

	wipe(t, dataDir, keyFile)
	t.Setenv(recoveryPassphraseEnv, "correct horse battery stapler")
	if _, err := runKeys(t, "import", "--from", backup); err == nil || !strings.Contains(err.Error(), "wrong recovery passphrase") {
		t.Fatalf("wrong passphrase: %v", err)
	}
	damaged := filepath.Join(t.TempDir(), "damaged.age")
	bad := bytes.Clone(raw)
	bad[len(bad)-20] ^= 1
	os.WriteFile(damaged, bad, 0o600)
	t.Setenv(recoveryPassphraseEnv, pass)
	if _, err := runKeys(t, "import", "--from", damaged); err == nil || !strings.Contains(err.Error(), "damaged or was altered") {
		t.Fatalf("damaged: %v", err)
	}
	notAge := filepath.Join(t.TempDir(), "keyring.json")
	os.WriteFile(notAge, []byte(`{"format":1}`), 0o600)
	if _, err := runKeys(t, "import", "--from", notAge); err == nil || !strings.Contains(err.Error(), "not a keyring backup") {
		t.Fatalf("not an age file: %v", err)
	}
	if ents, _ := os.ReadDir(dataDir); len(ents) != 0 {
		t.Fatalf("failed imports left %v in the data dir", ents)
	}
	if _, err := os.Stat(keyFile); err == nil {
		t.Fatal("failed imports made a master key")
	}

	// --dry-run lists and writes nothing.
	out := mustKeys(t, "import", "--from", backup, "--dry-run")
	if !strings.Contains(out, "2 keys; it opens and is intact") || !strings.Contains(out, "alias/photos") {
		t.Fatalf("dry run: %s", out)
	}
	if ents, _ := os.ReadDir(dataDir); len(ents) != 0 {
		t.Fatalf("dry run left %v", ents)
	}

	passFile := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(passFile, []byte(pass+"\n"), 0o600)
	t.Setenv(recoveryPassphraseEnv, "")
	out = mustKeys(t, "import", "--from", backup, "--passphrase-file", passFile)
	if !strings.Contains(out, "2 keys added") {
		t.Fatalf("import: %s", out)
	}
	after := listJSON(t)
	if !sameKeys(before, after) {
		t.Fatalf("keys after import:\n%+v\nbefore:\n%+v", after, before)
	}
	if _, err := os.Stat(keyFile); err != nil {
		t.Fatalf("the import made no master key: %v", err)
	}
}

func sameKeys(a, b []keyView) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// TestKeysExportImportRecipients: a backup for age public keys restores
// with either identity, not with a passphrase or another identity.
func TestKeysExportImportRecipients(t *testing.T) {
	skipBackupInFIPSMode(t)
	dataDir, keyFile := keysEnv(t)
	mustKeys(t, "create", "-d", "one", "--alias", "alias/one")
	before := listJSON(t)
	dir := t.TempDir()
	ids := make([]*age.X25519Identity, 3)
	for i := range ids {
		ids[i], _ = age.GenerateX25519Identity()
		os.WriteFile(filepath.Join(dir, string(rune('a'+i))+".key"), []byte(ids[i].String()+"\n"), 0o600)
	}
	recipients := filepath.Join(dir, "recipients")
	os.WriteFile(recipients, []byte("# recovery keys\n"+ids[1].Recipient().String()+"\n"), 0o600)
	backup := filepath.Join(dir, "keyring.age")
	mustKeys(t, "export", "--to", backup, "--recipient", ids[0].Recipient().String(), "--recipients-file", recipients)
	if _, err := runKeys(t, "export", "--to", backup, "--recipient", "age1notakey"); err == nil {
		t.Fatal("a malformed recipient was accepted")
	}

	wipe(t, dataDir, keyFile)
	t.Setenv(recoveryPassphraseEnv, "correct horse battery staple")
	if _, err := runKeys(t, "import", "--from", backup); err == nil || !strings.Contains(err.Error(), "give --identity") {
		t.Fatalf("passphrase for a public-key backup: %v", err)
	}
	if _, err := runKeys(t, "import", "--from", backup, "--identity", filepath.Join(dir, "c.key")); err == nil || !strings.Contains(err.Error(), "none of the identities") {
		t.Fatalf("another identity: %v", err)
	}
	mustKeys(t, "import", "--from", backup, "--identity", filepath.Join(dir, "b.key"))
	if after := listJSON(t); !sameKeys(before, after) {
		t.Fatalf("after import: %+v", after)
	}
}

// editKeyring changes the keyring file's clear metadata as fn says (the
// tests' way to let a waiting period end without waiting for it).
func editKeyring(t *testing.T, dataDir string, fn func(keys []map[string]any)) {
	t.Helper()
	path := filepath.Join(dataDir, "keyring.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var keys []map[string]any
	for _, k := range doc["keys"].([]any) {
		keys = append(keys, k.(map[string]any))
	}
	fn(keys)
	b, _ = json.Marshal(doc)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// pastDue moves the deletion date of key id a day into the past.
func pastDue(t *testing.T, dataDir, id string) {
	editKeyring(t, dataDir, func(keys []map[string]any) {
		for _, k := range keys {
			if k["id"] == id {
				k["deletionDate"] = "2020-01-01T00:00:00Z"
			}
		}
	})
}

// TestKeysDeleteHeld: a key whose waiting period ends while the kept usage
// report shows objects under it is held (keys list says so), keys delete
// refuses it, keys delete --force deletes it; a key scheduled with
// --force over such a report goes at its date; a key no report names goes
// at its date; keys delete before the date refuses.
func TestKeysDeleteHeld(t *testing.T) {
	dataDir, _ := keysEnv(t)
	id := func(args ...string) string {
		var md kms.KeyMetadata
		if err := json.Unmarshal([]byte(mustKeys(t, append([]string{"--json"}, args...)...)), &md); err != nil {
			t.Fatal(err)
		}
		return md.KeyID
	}
	used, forced, free := id("create", "-d", "used"), id("create", "-d", "forced"), id("create", "-d", "free")
	mustKeys(t, "schedule-deletion", used, "--days", "7")
	if _, err := runKeys(t, "delete", used); err == nil || !strings.Contains(err.Error(), "not before") {
		t.Fatalf("delete before the date: %v", err)
	}
	writeReport(t, dataDir, map[string]int{used: 3, forced: 2})
	if _, err := runKeys(t, "schedule-deletion", forced, "--days", "7"); err == nil {
		t.Fatal("schedule-deletion of a key in use")
	}
	mustKeys(t, "schedule-deletion", forced, "--days", "7", "--force")
	mustKeys(t, "schedule-deletion", free, "--days", "7")
	for _, k := range []string{used, forced, free} {
		pastDue(t, dataDir, k)
	}

	out := mustKeys(t, "list")
	if !strings.Contains(out, "HELD: 3 objects") {
		t.Fatalf("list: %s", out)
	}
	v := listJSON(t)
	if len(v) != 1 || v[0].KeyID != used || v[0].DeletionHold == nil || v[0].DeletionHold.Objects != 3 {
		t.Fatalf("list --json: %+v", v)
	}
	if out := mustKeys(t, "describe", used); !strings.Contains(out, "DeletionHeld  3 objects are still under the key according to the key usage report of 2026-12-01T00:00:00Z") {
		t.Fatalf("describe: %s", out)
	}
	if _, err := runKeys(t, "delete", used); err == nil || !strings.Contains(err.Error(), "3 objects are still under the key") {
		t.Fatalf("delete of a held key: %v", err)
	}
	if out := mustKeys(t, "delete", used, "--force"); !strings.Contains(out, "deleted key "+used) {
		t.Fatalf("delete --force: %s", out)
	}
	if v := listJSON(t); len(v) != 0 {
		t.Fatalf("keys left: %+v", v)
	}
}

func writeReport(t *testing.T, dataDir string, objects map[string]int) {
	t.Helper()
	writeReportAt(t, dataDir, "2026-12-01T00:00:00Z", objects)
}

func writeReportAt(t *testing.T, dataDir, when string, objects map[string]int) {
	t.Helper()
	type ku struct {
		KeyID   string   `json:"key_id"`
		Objects int      `json:"objects"`
		Buckets []string `json:"buckets"`
	}
	rep := map[string]any{"time": when, "scanned": []string{"s3://b/"}, "failures": []any{}}
	var keys []ku
	for id, n := range objects {
		keys = append(keys, ku{KeyID: id, Objects: n, Buckets: []string{"b"}})
	}
	rep["keys"] = keys
	b, _ := json.Marshal(rep)
	if err := os.WriteFile(filepath.Join(dataDir, usageFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestServeHoldsKeyInUse: serve, started after the waiting periods of two
// keys ended, deletes the one the usage report does not name and holds the
// one it shows in use: a log line says so and why, and the metric counts
// it.
func TestServeHoldsKeyInUse(t *testing.T) {
	dataDir, keyFile := keysEnv(t)
	id := func(args ...string) string {
		var md kms.KeyMetadata
		if err := json.Unmarshal([]byte(mustKeys(t, append([]string{"--json"}, args...)...)), &md); err != nil {
			t.Fatal(err)
		}
		return md.KeyID
	}
	used, free := id("create", "-d", "used"), id("create", "-d", "free")
	mustKeys(t, "schedule-deletion", used, "--days", "7")
	mustKeys(t, "schedule-deletion", free, "--days", "7")
	writeReport(t, dataDir, map[string]int{used: 4})
	pastDue(t, dataDir, used)
	pastDue(t, dataDir, free)

	p := testenv.StartS3seal(t, map[string]string{"S3SEAL_DATA_DIR": dataDir, "S3SEAL_MASTER_KEY_FILE": keyFile})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Log(), "NOT deleted") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	log := p.Log()
	if !strings.Contains(log, "key NOT deleted at the end of its waiting period: 4 objects are still under the key") || !strings.Contains(log, "key="+used) {
		t.Fatalf("no hold logged:\n%s", log)
	}
	if !strings.Contains(log, "deleted key: its waiting period ended") || !strings.Contains(log, "key="+free) {
		t.Fatalf("no deletion logged:\n%s", log)
	}
	resp, err := http.Get(p.Endpoint + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "\ns3seal_kms_key_deletions_held 1\n") {
		t.Fatalf("metrics:\n%s", body)
	}
	p.Stop()
	// The held key (oldest first), and the default key serve made.
	if v := listJSON(t); len(v) != 2 || v[0].KeyID != used || v[0].DeletionHold == nil || v[1].Aliases[0] != "alias/s3seal-default" {
		t.Fatalf("keys list after serve: %+v", v)
	}
}

// TestKeysDeleteScan: keys delete --scan counts the objects under the key
// at the store (the embedded store here) before it decides: the key an
// object is under is held, the key none is under is deleted.
func TestKeysDeleteScan(t *testing.T) {
	dataDir, keyFile := keysEnv(t)
	id := func(args ...string) string {
		var md kms.KeyMetadata
		if err := json.Unmarshal([]byte(mustKeys(t, append([]string{"--json"}, args...)...)), &md); err != nil {
			t.Fatal(err)
		}
		return md.KeyID
	}
	used, free := id("create", "-d", "used"), id("create", "-d", "free")
	p := testenv.StartS3seal(t, map[string]string{"S3SEAL_DATA_DIR": dataDir, "S3SEAL_MASTER_KEY_FILE": keyFile, "S3SEAL_KMS_KEY_ID": used})
	c := p.S3Client()
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("scanned")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("scanned"), Key: aws.String("o"), Body: strings.NewReader("under the used key")}); err != nil {
		t.Fatal(err)
	}
	p.Stop() // the embedded store has one owner
	mustKeys(t, "schedule-deletion", used, "--days", "7")
	mustKeys(t, "schedule-deletion", free, "--days", "7")
	pastDue(t, dataDir, used)
	pastDue(t, dataDir, free)
	if out, err := runKeys(t, "delete", free, "--scan", "s3://scanned"); err != nil || !strings.Contains(out, "deleted key "+free) {
		t.Fatalf("delete --scan of the free key: %s %v", out, err)
	}
	if _, err := runKeys(t, "delete", used, "--scan", "s3://scanned"); err == nil || !strings.Contains(err.Error(), "1 objects are still under the key") {
		t.Fatalf("delete --scan of the used key: %v", err)
	}
	if _, err := runKeys(t, "delete", used, "--scan", "s3://no-such-bucket"); err == nil || !strings.Contains(err.Error(), "nothing deleted") {
		t.Fatalf("a failed scan: %v", err)
	}
}

// TestServeDeletionScan: serve --deletion-scan scans the store before it
// decides on keys past their deletion date, and does not let a report
// older than a key's date clear it: a key the scan finds an object under
// is held although the stale report shows none; a key with none is
// deleted.
func TestServeDeletionScan(t *testing.T) {
	dataDir, keyFile := keysEnv(t)
	id := func(args ...string) string {
		var md kms.KeyMetadata
		if err := json.Unmarshal([]byte(mustKeys(t, append([]string{"--json"}, args...)...)), &md); err != nil {
			t.Fatal(err)
		}
		return md.KeyID
	}
	used, free := id("create", "-d", "used"), id("create", "-d", "free")
	env := map[string]string{"S3SEAL_DATA_DIR": dataDir, "S3SEAL_MASTER_KEY_FILE": keyFile, "S3SEAL_KMS_KEY_ID": used}
	p := testenv.StartS3seal(t, env)
	c := p.S3Client()
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("scanned")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("scanned"), Key: aws.String("o"), Body: strings.NewReader("under the used key")}); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	mustKeys(t, "schedule-deletion", used, "--days", "7")
	mustKeys(t, "schedule-deletion", free, "--days", "7")
	pastDue(t, dataDir, used)
	pastDue(t, dataDir, free)
	writeReportAt(t, dataDir, "2019-06-01T00:00:00Z", map[string]int{}) // before the dates: stale

	delete(env, "S3SEAL_KMS_KEY_ID") // serve creates the default key: a change to the keyring before the scan
	env["S3SEAL_DELETION_SCAN"] = "s3://scanned"
	p = testenv.StartS3seal(t, env)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.Log(), "key NOT deleted") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	log := p.Log()
	for _, want := range []string{"usage scan for the keys due for deletion done",
		"key NOT deleted at the end of its waiting period: 1 objects are still under the key according to the key usage report of",
		"key=" + used, "deleted key: its waiting period ended", "key=" + free} {
		if !strings.Contains(log, want) {
			t.Fatalf("log lacks %q:\n%s", want, log)
		}
	}
	p.Stop()
	rep, err := loadUsage(dataDir)
	if err != nil || rep.Key(used) == nil || rep.Key(used).Objects != 1 {
		t.Fatalf("kept report: %+v %v", rep, err)
	}
}
