package keyusage

import (
	"context"
	"reflect"
	"testing"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/objstore"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
)

// named reads the key material version only from an embedded-keyring blob
// that names the header's own key.
func TestNamed(t *testing.T) {
	kr, err := keyring.Open(keyring.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	md, err := kr.CreateKey("usage")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dk, err := kr.GenerateDataKey(ctx, md.KeyID, kms.BucketContext("b"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.RotateKey(md.KeyID); err != nil {
		t.Fatal(err)
	}
	dk2, err := kr.GenerateDataKey(ctx, md.KeyID, kms.BucketContext("b"))
	if err != nil {
		t.Fatal(err)
	}
	aws := append([]byte{1}, make([]byte, 180)...) // parses as a keyring blob of another key id
	for _, tc := range []struct {
		name string
		ki   envelope.KeyInfo
		want keyVersion
	}{
		{"version 1", envelope.KeyInfo{KeyID: dk.KeyID, Wrapped: dk.Ciphertext}, keyVersion{dk.KeyID, 1}},
		{"version 2", envelope.KeyInfo{KeyID: dk2.KeyID, Wrapped: dk2.Ciphertext}, keyVersion{dk2.KeyID, 2}},
		{"blob of another key", envelope.KeyInfo{KeyID: "arn:aws:kms:us-east-1:111122223333:key/x", Wrapped: dk.Ciphertext}, keyVersion{"arn:aws:kms:us-east-1:111122223333:key/x", 0}},
		{"not a keyring blob", envelope.KeyInfo{KeyID: "k", Wrapped: []byte{2, 3}}, keyVersion{"k", 0}},
		{"zero key id", envelope.KeyInfo{KeyID: "k", Wrapped: aws}, keyVersion{"k", 0}},
	} {
		if got := named(tc.ki); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// A compressed single object (plaintext size -1: sealed) counts in the
// objects and stored bytes of each of its keys and in PlaintextSealed, not
// in PlaintextBytes; an object under two keys counts once under each.
func TestAggregateSealedSizes(t *testing.T) {
	a := newAggregate()
	obj := func(key string, stored int64) item {
		return item{bucket: "b", obj: objstore.Listed{Key: key, Size: stored}}
	}
	a.add(obj("plain", 1000), map[keyVersion]bool{{key: "k1"}: true}, 900, nil)
	a.add(obj("compressed", 300), map[keyVersion]bool{{key: "k1"}: true, {key: "k2"}: true}, -1, nil)
	a.add(obj("mp", 5000), map[keyVersion]bool{{key: "k2", version: 1}: true, {key: "k2", version: 2}: true}, 8000, nil)
	var rep Report
	a.into(&rep)
	want := map[string]KeyUsage{
		"k1": {KeyID: "k1", Objects: 2, PlaintextBytes: 900, StoredBytes: 1300, PlaintextSealed: 1, Buckets: []string{"b"}},
		"k2": {KeyID: "k2", Objects: 2, PlaintextBytes: 8000, StoredBytes: 5300, PlaintextSealed: 1, Buckets: []string{"b"},
			Versions: []VersionUsage{{Version: 1, Objects: 1}, {Version: 2, Objects: 1}}},
	}
	if rep.Sealed != 3 || len(rep.Keys) != 2 {
		t.Fatalf("report %+v", rep)
	}
	for _, got := range rep.Keys {
		if w := want[got.KeyID]; !reflect.DeepEqual(got, w) {
			t.Errorf("key %s: %+v, want %+v", got.KeyID, got, w)
		}
	}
}
