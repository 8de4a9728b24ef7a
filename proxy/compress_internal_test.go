package proxy

import (
	"net/http"
	"testing"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/proxy/s3wire"
)

// TestCompressFor: which PUTs are compressed, by bucket setting, size,
// name, type, the client's Content-Encoding, and the bucket's key (a
// write-only RSA bucket never is: its writer could not show the size).
func TestCompressFor(t *testing.T) {
	z, err := newCompressor(Compression{Algorithm: envelope.AlgS2, Buckets: map[string]envelope.Algorithm{"cold": "", "logs": envelope.AlgZstd},
		SkipExtensions: DefaultSkipExtensions, SkipContentTypes: DefaultSkipContentTypes})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{comp: z, cfg: Config{DefaultKeyID: "sym",
		Asymmetric: AsymmetricKeys{KMS: kms.NewCache(nil, kms.CacheConfig{}), BucketKeys: map[string]string{"backups": "rsa"}}}}
	for _, tc := range []struct {
		bucket, key, ctype, cenc string
		size                     int64
		want                     envelope.Algorithm
	}{
		{"data", "a.json", "application/json", "", 1000, envelope.AlgS2},
		{"logs", "a.log", "", "", 1000, envelope.AlgZstd},
		{"cold", "a.log", "", "", 1000, ""},
		{"data", "a.log", "", "", 0, ""},
		{"data", "a.log", "", "", envelope.MaxCompressedSize + 1, ""},
		{"data", "photo.JPG", "", "", 1000, ""},
		{"data", "dir.v2/archive.tar.gz", "", "", 1000, ""},
		{"data", "clip", "video/mp4", "", 1000, ""},
		{"data", "pic", "image/png; q=1", "", 1000, ""},
		{"data", "a.json", "", "gzip", 1000, ""},
		{"data", "a.json", "", "aws-chunked", 1000, envelope.AlgS2},
		{"backups", "a.log", "", "", 1000, ""},
	} {
		h := http.Header{}
		if tc.ctype != "" {
			h.Set("Content-Type", tc.ctype)
		}
		if tc.cenc != "" {
			h.Set("Content-Encoding", tc.cenc)
		}
		r := &request{t: &s3wire.Target{Bucket: tc.bucket, Key: tc.key}, header: h}
		if got := s.compressFor(r, tc.size); got != tc.want {
			t.Errorf("%+v: %q", tc, got)
		}
	}
}
