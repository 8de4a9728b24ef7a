package proxy

import (
	"errors"
	"net/http"
	"testing"

	"github.com/s3seal/s3seal/proxy/checksum"
	"github.com/s3seal/s3seal/proxy/s3wire"
)

// TestCreateChecksum: CreateMultipartUpload's algorithm and type, S3's
// defaults and refusals.
func TestCreateChecksum(t *testing.T) {
	for _, tc := range []struct {
		name, alg, typ string
		want           checksum.Algorithm
		wantType       checksum.Type
		err            string // error code, "" for none
	}{
		{"none", "", "", "", "", ""},
		{"crc32 defaults to composite", "crc32", "", checksum.CRC32, checksum.Composite, ""},
		{"crc64nvme defaults to full object", "CRC64NVME", "", checksum.CRC64NVME, checksum.FullObject, ""},
		{"crc32c full object", "CRC32C", "FULL_OBJECT", checksum.CRC32C, checksum.FullObject, ""},
		{"sha256 composite", "SHA256", "composite", checksum.SHA256, checksum.Composite, ""},
		{"sha1 full object", "SHA1", "FULL_OBJECT", "", "", "InvalidRequest"},
		{"crc64nvme composite", "CRC64NVME", "COMPOSITE", "", "", "InvalidRequest"},
		{"type without algorithm", "", "COMPOSITE", "", "", "InvalidRequest"},
		{"unknown algorithm", "MD5", "", "", "", "InvalidRequest"},
		{"unknown type", "CRC32", "PARTIAL", "", "", "InvalidRequest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.alg != "" {
				h.Set("X-Amz-Checksum-Algorithm", tc.alg)
			}
			if tc.typ != "" {
				h.Set("X-Amz-Checksum-Type", tc.typ)
			}
			alg, typ, err := createChecksum(h)
			var e *s3wire.Error
			switch {
			case tc.err != "" && (!errors.As(err, &e) || e.Code != tc.err):
				t.Errorf("error %v, want %s", err, tc.err)
			case tc.err == "" && err != nil:
				t.Errorf("error %v", err)
			case tc.err == "" && (alg != tc.want || typ != tc.wantType):
				t.Errorf("%q %q, want %q %q", alg, typ, tc.want, tc.wantType)
			}
		})
	}
}

// TestCompleteWantMatches: a composite value matches with or without its
// "-N", never with another N or value.
func TestCompleteWantMatches(t *testing.T) {
	for _, tc := range []struct {
		want, got string
		ok        bool
	}{
		{"abc=-3", "abc=-3", true},
		{"abc=", "abc=-3", true},
		{"abc=-2", "abc=-3", false},
		{"abd=", "abc=-3", false},
		{"abc=", "abc=", true},
	} {
		if got := (completeWant{value: tc.want}).matches(tc.got); got != tc.ok {
			t.Errorf("%q matches %q: %v", tc.want, tc.got, got)
		}
	}
}
