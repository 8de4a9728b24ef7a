package keyring

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/s3seal/s3seal/kms"
)

// fileFormatOf reads the format number of the keyring file in dir.
func fileFormatOf(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Format int `json:"format"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f.Format
}

// TestFormatVersion: a keyring that uses nothing of format 2 is written as
// format 1 (an older s3seal still opens it); a policy, tag, rotation
// schedule or grant makes it format 2, and removing them makes it 1 again.
func TestFormatVersion(t *testing.T) {
	dir := t.TempDir()
	k := open(t, Config{Dir: dir})
	id := mustCreate(t, k, "v1 things only")
	if _, err := k.RotateKey(id); err != nil {
		t.Fatal(err)
	}
	if err := k.CreateAlias("alias/x", id); err != nil {
		t.Fatal(err)
	}
	if err := k.SetDescription(id, "still v1"); err != nil {
		t.Fatal(err)
	}
	if err := k.SetPolicy(id, DefaultPolicy); err != nil {
		t.Fatal(err)
	}
	if f := fileFormatOf(t, dir); f != 1 {
		t.Fatalf("format %d after format 1 changes", f)
	}
	steps := []struct {
		name       string
		set, unset func() error
	}{
		{"policy", func() error { return k.SetPolicy(id, `{"Statement":[]}`) }, func() error { return k.SetPolicy(id, DefaultPolicy) }},
		{"tags", func() error { return k.TagKey(id, map[string]string{"a": "b"}) }, func() error { return k.UntagKey(id, []string{"a"}) }},
		{"rotation", func() error { return k.EnableRotation(id, 0) }, func() error { return k.DisableRotation(id) }},
		{"grant", func() error {
			_, err := k.CreateGrant(id, Grant{GranteePrincipal: "arn:aws:iam::000000000000:user/x", Operations: []string{"Decrypt"}})
			return err
		}, func() error {
			ki, err := k.Key(id)
			if err != nil {
				return err
			}
			return k.DeleteGrant(id, ki.Grants[0].ID)
		}},
	}
	for _, s := range steps {
		if err := s.set(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if f := fileFormatOf(t, dir); f != 2 {
			t.Fatalf("%s: format %d", s.name, f)
		}
		// Another process sees it.
		k2 := open(t, Config{Dir: dir})
		if _, err := k2.Key(id); err != nil {
			t.Fatal(err)
		}
		if err := s.unset(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if f := fileFormatOf(t, dir); f != 1 {
			t.Fatalf("%s removed: format %d", s.name, f)
		}
	}
}

func TestKeyInfo(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	k := open(t, Config{Dir: t.TempDir(), Now: clock.Now})
	ki, err := k.CreateKeyWith(KeyOptions{Description: "d", Policy: `{"p":1}`, Tags: map[string]string{"team": "photos"}})
	if err != nil {
		t.Fatal(err)
	}
	if ki.Policy != `{"p":1}` || ki.Tags["team"] != "photos" || ki.Description != "d" || ki.Rotation != nil || len(ki.Versions) != 1 {
		t.Fatalf("%+v", ki)
	}
	if ki.Versions[0].MaterialID != MaterialID(ki.KeyID, 1) || len(ki.Versions[0].MaterialID) != 64 {
		t.Fatalf("material id %q", ki.Versions[0].MaterialID)
	}
	plain, err := k.CreateKeyWith(KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if plain.Policy != DefaultPolicy {
		t.Fatalf("policy of a key created without one: %s", plain.Policy)
	}
	// KeyInfo is a copy.
	ki.Tags["team"] = "x"
	again, err := k.Key(ki.KeyID)
	if err != nil || again.Tags["team"] != "photos" {
		t.Fatalf("%v %v", err, again.Tags)
	}

	tags := map[string]string{}
	for i := range MaxTags {
		tags[string(rune('A'+i))] = "v"
	}
	if err := k.TagKey(plain.KeyID, tags); err != nil {
		t.Fatal(err)
	}
	wantCode(t, k.TagKey(plain.KeyID, map[string]string{"one-more": ""}), kms.CodeLimitExceeded)
	if err := k.TagKey(plain.KeyID, map[string]string{"A": "replaced"}); err != nil {
		t.Fatalf("replacing a tag at the limit: %v", err)
	}

	// Pending deletion: no tags, no grants, policy still settable.
	if _, err := k.ScheduleKeyDeletion(plain.KeyID, 7); err != nil {
		t.Fatal(err)
	}
	wantCode(t, k.TagKey(plain.KeyID, map[string]string{"x": "y"}), kms.CodeInvalidState)
	_, err = k.CreateGrant(plain.KeyID, Grant{GranteePrincipal: "p", Operations: []string{"Decrypt"}})
	wantCode(t, err, kms.CodeInvalidState)
	if err := k.SetPolicy(plain.KeyID, `{"q":1}`); err != nil {
		t.Fatal(err)
	}

	// Grants.
	g, err := k.CreateGrant(ki.KeyID, Grant{Name: "n", GranteePrincipal: "arn:aws:iam::000000000000:user/bob", Operations: []string{"Decrypt", "Encrypt"},
		Constraints: &GrantConstraints{EncryptionContextSubset: map[string]string{"s3seal:bucket": "photos"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.ID) != 64 || !g.CreationDate.Equal(clock.Now()) {
		t.Fatalf("%+v", g)
	}
	all, err := k.Grants()
	if err != nil || len(all[ki.KeyID]) != 1 || all[ki.KeyID][0].Constraints.EncryptionContextSubset["s3seal:bucket"] != "photos" {
		t.Fatalf("%v %+v", err, all)
	}
	wantCode(t, k.DeleteGrant(ki.KeyID, "nope"), kms.CodeNotFound)
	if err := k.DeleteGrant(ki.KeyID, g.ID); err != nil {
		t.Fatal(err)
	}
	if again, _ := k.Key(ki.KeyID); len(again.Grants) != 0 {
		t.Fatal("grant still there")
	}
}

// TestAutomaticRotation: rotation on a schedule, with an injected clock.
// Data keys wrapped before and after every rotation keep decrypting.
func TestAutomaticRotation(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	k := open(t, Config{Dir: dir, Now: clock.Now})
	ctx := context.Background()
	id := mustCreate(t, k, "rotating")
	ec := kms.BucketContext("photos")

	wantCode(t, k.EnableRotation(id, 89), kms.CodeValidation)
	wantCode(t, k.EnableRotation(id, 2561), kms.CodeValidation)
	if err := k.EnableRotation(id, 90); err != nil {
		t.Fatal(err)
	}
	ki, _ := k.Key(id)
	if ki.Rotation == nil || ki.Rotation.PeriodDays != 90 || !ki.Rotation.NextRotation.Equal(clock.Now().Add(90*24*time.Hour)) {
		t.Fatalf("rotation %+v", ki.Rotation)
	}

	var wrapped []*kms.DataKey
	wrap := func() {
		dk, err := k.GenerateDataKey(ctx, id, ec)
		if err != nil {
			t.Fatal(err)
		}
		wrapped = append(wrapped, dk)
	}
	rotate := func(want bool) {
		t.Helper()
		got, err := k.RotateDue()
		if err != nil {
			t.Fatal(err)
		}
		if (len(got) == 1 && got[0] == id) != want {
			t.Fatalf("RotateDue at %v: %v, want rotated=%v", clock.Now(), got, want)
		}
	}
	wrap()
	rotate(false)
	clock.Add(89 * 24 * time.Hour)
	rotate(false)
	clock.Add(24 * time.Hour)
	rotate(true)
	rotate(false) // once per due date
	wrap()

	// A second keyring on the same dir (another process) rotates nothing
	// more for the same date.
	k2 := open(t, Config{Dir: dir, Now: clock.Now})
	if got, err := k2.RotateDue(); err != nil || len(got) != 0 {
		t.Fatalf("second process: %v %v", got, err)
	}

	// Disabled: not rotated; enabled again after its date: rotated.
	clock.Add(91 * 24 * time.Hour)
	if err := k.DisableKey(id); err != nil {
		t.Fatal(err)
	}
	rotate(false)
	wantCode(t, k.EnableRotation(id, 120), kms.CodeDisabled)
	if err := k.EnableKey(id); err != nil {
		t.Fatal(err)
	}
	rotate(true)
	wrap()

	// A new period counts from the last rotation.
	if err := k.EnableRotation(id, 365); err != nil {
		t.Fatal(err)
	}
	ki, _ = k.Key(id)
	if !ki.Rotation.NextRotation.Equal(clock.Now().Add(365 * 24 * time.Hour)) {
		t.Fatalf("next rotation %v", ki.Rotation.NextRotation)
	}
	// On-demand rotation does not move the schedule.
	if _, err := k.RotateKey(id); err != nil {
		t.Fatal(err)
	}
	wrap()
	ki, _ = k.Key(id)
	auto := []bool{}
	for _, v := range ki.Versions {
		auto = append(auto, v.Automatic)
	}
	if !slices.Equal(auto, []bool{false, true, true, false}) || !ki.Rotation.NextRotation.Equal(clock.Now().Add(365*24*time.Hour)) {
		t.Fatalf("versions %v, next %v", auto, ki.Rotation.NextRotation)
	}
	for i, dk := range wrapped {
		if _, v, err := BlobKey(dk.Ciphertext); err != nil || v != i+1 {
			t.Fatalf("data key %d: version %d, %v", i, v, err)
		}
		pt, err := k2.Decrypt(ctx, "", dk.Ciphertext, ec)
		if err != nil || string(pt) != string(dk.Plaintext) {
			t.Fatalf("data key %d (version %d) after rotations: %v", i, i+1, err)
		}
	}

	if err := k.DisableRotation(id); err != nil {
		t.Fatal(err)
	}
	clock.Add(3000 * 24 * time.Hour)
	rotate(false)
}
