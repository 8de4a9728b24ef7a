package keyring

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/kms"
)

// roundTrip is a backup as it leaves and comes back: JSON, then parsed.
func roundTrip(t *testing.T, b *Backup) *Backup {
	t.Helper()
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var got Backup
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	return &got
}

// TestBackupRestore: a keyring with every kind of state (aliases, the
// default key, a rotated key, policy, tags, automatic rotation, a grant, a
// disabled key, a key pending deletion, a key whose date passes while in
// the backup) restored into a new keyring under another master key (a
// passphrase): every data key wrapped before opens, every record is the
// same, the deletion date is the same instant, the expired key is left
// out (or restored Disabled with KeepExpired), and the restored keyring
// survives a reopen.
func TestBackupRestore(t *testing.T) {
	clk := &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	src := open(t, Config{Dir: t.TempDir(), Now: clk.Now})
	ctx := context.Background()
	ec := kms.BucketContext("photos")

	if err := src.ensureDefault(); err != nil {
		t.Fatal(err)
	}
	def, _ := src.DescribeKey(ctx, DefaultAlias)
	rotated := mustCreate(t, src, "rotated")
	if err := src.CreateAlias("alias/photos", rotated); err != nil {
		t.Fatal(err)
	}
	fancy, err := src.CreateKeyWith(KeyOptions{Description: "fancy", Policy: `{"Version":"2012-10-17","Statement":[]}`, Tags: map[string]string{"team": "ops"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.EnableRotation(fancy.KeyID, 90); err != nil {
		t.Fatal(err)
	}
	if _, err := src.CreateGrant(fancy.KeyID, Grant{GranteePrincipal: "arn:aws:iam::000000000000:user/x", Operations: []string{"Decrypt"}}); err != nil {
		t.Fatal(err)
	}
	disabled, pending, expiring := mustCreate(t, src, "disabled"), mustCreate(t, src, "pending"), mustCreate(t, src, "expiring")

	blobs := map[string][]byte{}
	plains := map[string][]byte{}
	wrap := func(name, id string) {
		dk, err := src.GenerateDataKey(ctx, id, ec)
		if err != nil {
			t.Fatal(err)
		}
		blobs[name], plains[name] = dk.Ciphertext, dk.Plaintext
	}
	wrap("default", def.KeyID)
	wrap("rotated-v1", rotated)
	if _, err := src.RotateKey(rotated); err != nil {
		t.Fatal(err)
	}
	wrap("rotated-v2", rotated)
	wrap("fancy", fancy.KeyID)
	wrap("disabled", disabled)
	wrap("pending", pending)
	wrap("expiring", expiring)
	if err := src.DisableKey(disabled); err != nil {
		t.Fatal(err)
	}
	pendingDate, err := src.ScheduleKeyDeletion(pending, 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.ScheduleKeyDeletion(expiring, 7); err != nil {
		t.Fatal(err)
	}
	srcInfo := map[string]*KeyInfo{}
	for _, id := range []string{def.KeyID, rotated, fancy.KeyID, disabled, pending, expiring} {
		ki, err := src.Key(id)
		if err != nil {
			t.Fatal(err)
		}
		srcInfo[id] = ki
	}

	b, err := src.Backup()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(b.Keys()); n != 6 {
		t.Fatalf("backup holds %d keys, want 6", n)
	}
	data, _ := json.Marshal(b)
	for name, p := range plains {
		if strings.Contains(string(data), b64(p)) {
			t.Fatalf("the backup document holds the data key %s", name)
		}
	}

	// Ten days later, on another host: the expiring key's date has passed.
	clk.Add(10 * 24 * time.Hour)
	dstDir := t.TempDir()
	dst := open(t, Config{Dir: dstDir, Passphrase: "another master secret", Now: clk.Now})
	res, err := dst.Restore(roundTrip(t, b), RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Added) != 5 || !reflect.DeepEqual(res.Expired, []string{expiring}) {
		t.Fatalf("restore: %+v", res)
	}
	dst.Close()
	dst = open(t, Config{Dir: dstDir, Passphrase: "another master secret", Now: clk.Now})

	for name, blob := range blobs {
		id, _, _ := BlobKey(blob)
		pt, err := dst.Decrypt(ctx, "", blob, ec)
		switch {
		case name == "expiring":
			if kms.ErrorCode(err) != kms.CodeNotFound {
				t.Errorf("%s: the expired key was restored: %v", name, err)
			}
			continue
		case id == disabled || id == pending:
			if kms.ErrorCode(err) != kms.CodeDisabled && kms.ErrorCode(err) != kms.CodeInvalidState {
				t.Errorf("%s: %v, want the key's state to refuse it", name, err)
			}
			continue
		case err != nil:
			t.Errorf("%s: %v", name, err)
			continue
		}
		if string(pt) != string(plains[name]) {
			t.Errorf("%s: another plaintext", name)
		}
	}
	for id, want := range srcInfo {
		if id == expiring {
			continue
		}
		got, err := dst.Key(id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("key %s restored as\n%+v\nwant\n%+v", id, got, want)
		}
	}
	if got, _ := dst.Key(pending); !got.DeletionDate.Equal(pendingDate) {
		t.Errorf("deletion date %v, want %v", got.DeletionDate, pendingDate)
	}
	if md, err := dst.DescribeKey(ctx, ""); err != nil || md.KeyID != def.KeyID {
		t.Errorf("default key after restore: %+v %v", md, err)
	}
	// A wrapped key made after the restore opens.
	if dk, err := dst.GenerateDataKey(ctx, "alias/photos", ec); err != nil {
		t.Fatal(err)
	} else if _, v, _ := BlobKey(dk.Ciphertext); v != 2 {
		t.Errorf("new data key under version %d, want 2", v)
	}

	// Restoring again into the now non-empty keyring: refused without
	// Merge; with Merge nothing changes.
	if _, err := dst.Restore(roundTrip(t, b), RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "--merge") {
		t.Fatalf("restore into a keyring with keys: %v", err)
	}
	res, err = dst.Restore(roundTrip(t, b), RestoreOptions{Merge: true})
	if err != nil || len(res.Added) != 0 || len(res.Same) != 5 {
		t.Fatalf("merge of the same backup: %+v %v", res, err)
	}

	// KeepExpired: the expired key comes back Disabled and opens its
	// wrapped keys once enabled.
	keep := open(t, Config{Dir: t.TempDir(), Now: clk.Now})
	if _, err := keep.Restore(roundTrip(t, b), RestoreOptions{KeepExpired: true}); err != nil {
		t.Fatal(err)
	}
	if md, err := keep.DescribeKey(ctx, expiring); err != nil || md.KeyState != kms.KeyDisabled || !md.DeletionDate.IsZero() {
		t.Fatalf("kept expired key: %+v %v", md, err)
	}
	if err := keep.EnableKey(expiring); err != nil {
		t.Fatal(err)
	}
	if _, err := keep.Decrypt(ctx, "", blobs["expiring"], ec); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreMerge: a merge adds the keys the keyring lacks, extends a key
// the keyring has an older copy of, keeps the keyring's aliases, and
// refuses a backup whose key of the same id is other material.
func TestRestoreMerge(t *testing.T) {
	ctx := context.Background()
	ec := kms.BucketContext("b")
	dir := t.TempDir()
	k := open(t, Config{Dir: dir})
	id := mustCreate(t, k, "shared")
	other := mustCreate(t, k, "other")
	if err := k.CreateAlias("alias/x", id); err != nil {
		t.Fatal(err)
	}
	old, err := k.Backup()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.RotateKey(id); err != nil {
		t.Fatal(err)
	}
	dk, err := k.GenerateDataKey(ctx, id, ec)
	if err != nil {
		t.Fatal(err)
	}
	newer, err := k.Backup()
	if err != nil {
		t.Fatal(err)
	}

	// A host restored from the old backup, with a key of its own that
	// took alias/x meanwhile.
	h := open(t, Config{Dir: t.TempDir()})
	if _, err := h.Restore(roundTrip(t, old), RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	own := mustCreate(t, h, "own")
	if err := h.UpdateAlias("alias/x", own); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Restore(roundTrip(t, newer), RestoreOptions{}); err == nil {
		t.Fatal("restore into a keyring with keys without Merge")
	}
	res, err := h.Restore(roundTrip(t, newer), RestoreOptions{Merge: true})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Extended, []string{id}) || !reflect.DeepEqual(res.Same, []string{other}) || !reflect.DeepEqual(res.AliasConflicts, []string{"alias/x"}) {
		t.Fatalf("merge: %+v", res)
	}
	if _, err := h.Decrypt(ctx, "", dk.Ciphertext, ec); err != nil {
		t.Fatalf("data key under the version the merge added: %v", err)
	}
	if md, _ := h.DescribeKey(ctx, "alias/x"); md.KeyID != own {
		t.Error("the merge moved the keyring's alias")
	}

	// Another keyring's key under the same id is refused, and nothing
	// of the backup is restored.
	forged := roundTrip(t, newer)
	forged.doc.Keys[0].Versions[0].Material[0] ^= 1
	forged.doc.Keys = append(forged.doc.Keys, roundTrip(t, newer).doc.Keys[1])
	forged.doc.Keys[1].ID = "0b0e8f2c-0000-4000-8000-000000000001"
	before, _ := h.ListKeys()
	if _, err := h.Restore(forged, RestoreOptions{Merge: true}); err == nil || !strings.Contains(err.Error(), "other material") {
		t.Fatalf("forged merge: %v", err)
	}
	if after, _ := h.ListKeys(); len(after) != len(before) {
		t.Fatal("a refused merge changed the keyring")
	}
}

// TestBackupDocumentChecked: documents of another type or format, or
// malformed, are refused before anything is restored.
func TestBackupDocumentChecked(t *testing.T) {
	k := open(t, Config{Dir: t.TempDir()})
	id := mustCreate(t, k, "x")
	if err := k.CreateAlias("alias/x", id); err != nil {
		t.Fatal(err)
	}
	b, err := k.Backup()
	if err != nil {
		t.Fatal(err)
	}
	good, _ := json.Marshal(b)
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"type", `"type":"s3seal keyring backup"`, `"type":"something else"`, "not an s3seal keyring backup"},
		{"format", `"format":1`, `"format":2`, "format 2 is not known"},
		{"alias", `"alias/x":"` + id, `"alias/x":"0b0e8f2c-0000-4000-8000-000000000000`, "does not hold"},
		{"state", `"state":"Enabled"`, `"state":"Gone"`, "unknown state"},
		{"version", `"version":1`, `"version":2`, "out of order"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(string(good), tc.from, tc.to, 1)
			if doc == string(good) {
				t.Fatalf("%q not in the document", tc.from)
			}
			var nb Backup
			err := json.Unmarshal([]byte(doc), &nb)
			if err == nil {
				_, err = open(t, Config{Dir: t.TempDir()}).Restore(&nb, RestoreOptions{})
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	// Material of the wrong length.
	short := roundTrip(t, b)
	short.doc.Keys[0].Versions[0].Material = short.doc.Keys[0].Versions[0].Material[:31]
	if _, err := open(t, Config{Dir: t.TempDir()}).Restore(short, RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "31 bytes") {
		t.Fatalf("short material: %v", err)
	}
	if got := b.Keys(); len(got) != 1 || !slices.Equal(got[0].Aliases, []string{"alias/x"}) || got[0].ReferenceOnly {
		t.Fatalf("Keys: %+v", got)
	}
}

// TestRestoreReferenceOnly: a key the backup holds only the reference of
// (an HSM-backed key: no material) is listed as such and not restored;
// the others are.
func TestRestoreReferenceOnly(t *testing.T) {
	k := open(t, Config{Dir: t.TempDir()})
	hsm, soft := mustCreate(t, k, "hsm"), mustCreate(t, k, "soft")
	b, err := k.Backup()
	if err != nil {
		t.Fatal(err)
	}
	// What exportable answering false for the first key makes.
	b.doc.ReferenceOnly = []string{hsm}
	for i := range b.doc.Keys[0].Versions {
		b.doc.Keys[0].Versions[i].Material = nil
	}
	b = roundTrip(t, b)
	if got := b.Keys(); !got[0].ReferenceOnly || got[1].ReferenceOnly {
		t.Fatalf("Keys: %+v", got)
	}
	dst := open(t, Config{Dir: t.TempDir()})
	res, err := dst.Restore(b, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.ReferenceOnly, []string{hsm}) || !slices.Equal(res.Added, []string{soft}) {
		t.Fatalf("restore: %+v", res)
	}
	if _, err := dst.Key(hsm); kms.ErrorCode(err) != kms.CodeNotFound {
		t.Fatalf("the reference-only key was restored: %v", err)
	}
}

// TestRestoreHeld: a key held past its date when the backup was made is
// restored held, and stays held on a host with no evidence (no report):
// only a check that finds no object lets it go.
func TestRestoreHeld(t *testing.T) {
	clk := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	g := &guardStub{objects: map[string]int{}}
	src := open(t, Config{Dir: t.TempDir(), Now: clk.Now, DeletionGuard: g.guard})
	id := mustCreate(t, src, "held")
	g.set(id, 5)
	if _, err := src.ScheduleKeyDeletion(id, 7); err != nil {
		t.Fatal(err)
	}
	clk.Add(8 * 24 * time.Hour)
	if _, held, _ := src.DeleteDue(); len(held) != 1 {
		t.Fatal("not held")
	}
	b, err := src.Backup()
	if err != nil {
		t.Fatal(err)
	}
	// The new host has no report: the guard knows nothing.
	none := func(*KeyInfo) (DeletionCheck, error) { return DeletionCheck{}, nil }
	dst := open(t, Config{Dir: t.TempDir(), Now: clk.Now, DeletionGuard: none})
	res, err := dst.Restore(roundTrip(t, b), RestoreOptions{})
	if err != nil || len(res.Added) != 1 || len(res.Expired) != 0 {
		t.Fatalf("restore: %+v %v", res, err)
	}
	if del, held, err := dst.DeleteDue(); err != nil || del != nil || len(held) != 1 || held[0].DeletionHold.Objects != 5 {
		t.Fatalf("after restore with no evidence: deleted %v held %+v %v", del, held, err)
	}
	// Evidence of no object lets it go.
	dst2 := open(t, Config{Dir: dst.cfg.Dir, Now: clk.Now, DeletionGuard: func(*KeyInfo) (DeletionCheck, error) {
		return DeletionCheck{Evidence: "a report that shows none"}, nil
	}})
	if del, _, _ := dst2.DeleteDue(); len(del) != 1 {
		t.Fatalf("with evidence of no object: deleted %v", del)
	}
}
