package proxy

import (
	"strings"
	"testing"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/kms"
)

// TestBucketKeyOrder: a bucket's own RSA key, then its symmetric key, then
// the instance's RSA key, then the default; a bucket in both maps, or RSA
// keys without their KMS, is a configuration error; a write-only instance
// refuses the keys its headers name, a read instance does not.
func TestBucketKeyOrder(t *testing.T) {
	s := &Server{cfg: Config{DefaultKeyID: "sym-default", BucketKeys: map[string]string{"photos": "sym-photos"},
		Asymmetric: AsymmetricKeys{KMS: kms.NewCache(nil, kms.CacheConfig{}), DefaultKeyID: "rsa-default", BucketKeys: map[string]string{"backups": "rsa-backups"}}}}
	for bucket, want := range map[string]struct {
		key  string
		asym bool
	}{"backups": {"rsa-backups", true}, "photos": {"sym-photos", false}, "other": {"rsa-default", true}} {
		if k, a := s.bucketKey(bucket); k != want.key || a != want.asym {
			t.Errorf("%s: %s %v, want %s %v", bucket, k, a, want.key, want.asym)
		}
	}
	s.cfg.Asymmetric.DefaultKeyID = ""
	if k, a := s.bucketKey("other"); k != "sym-default" || a {
		t.Errorf("other without an instance RSA key: %s %v", k, a)
	}

	if err := s.cfg.Asymmetric.check(map[string]string{"backups": "k"}); err == nil || !strings.Contains(err.Error(), "both") {
		t.Errorf("a bucket with both keys: %v", err)
	}
	if err := (&AsymmetricKeys{DefaultKeyID: "k"}).check(nil); err == nil {
		t.Error("RSA keys without a KMS accepted")
	}

	ki := envelope.KeyInfo{KeyID: "rsa", Wrapped: []byte{1}, Flags: envelope.FlagAsymmetricWrap}
	if !s.writeOnly(ki) || s.writeOnly(envelope.KeyInfo{KeyID: "sym"}) {
		t.Error("write-only instance: which headers it cannot open")
	}
	if _, err := s.unwrap(t.Context(), ki, "backups"); err != errWriteOnly {
		t.Errorf("unwrap on a write-only instance: %v", err)
	}
	s.cfg.Asymmetric.Decrypt = true
	if s.writeOnly(ki) {
		t.Error("a read instance refuses RSA-wrapped headers")
	}
}
