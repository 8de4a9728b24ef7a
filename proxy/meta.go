package proxy

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
)

// sealedMeta is what the proxy keeps inside the envelope's sealed metadata
// blob: everything about the object that must not be readable from the
// store. FORMAT.md documents its fields.
type sealedMeta struct {
	// Size is the plaintext size, cross-checked against the stored size.
	Size int64 `json:"s"`
	// User holds x-amz-meta-* headers, names lowercased without the prefix.
	User map[string]string `json:"u,omitempty"`
	// MD5 is the base64 plaintext MD5 when the client sent a Content-MD5
	// that the proxy verified.
	MD5 string `json:"m,omitempty"`
	// Origin is where the parts of a multipart object were sealed, when
	// that is not the object's own path: a copy reuses the source's
	// ciphertext parts, which stay bound to the source bucket and key.
	Origin *objectPath `json:"o,omitempty"`
	// Checksum holds a full-object checksum of the plaintext the client
	// sent as a header (known before the body, verified over it): header
	// name (x-amz-checksum-crc32c, ...) to base64 value.
	Checksum map[string]string `json:"c,omitempty"`
}

type objectPath struct {
	Bucket string `json:"b"`
	Key    string `json:"k"`
}

// partsPath is the bucket and key the object's parts were sealed to.
func (m *sealedMeta) partsPath(bucket, key string) (string, string) {
	if m.Origin != nil {
		return m.Origin.Bucket, m.Origin.Key
	}
	return bucket, key
}

func (m *sealedMeta) encode() []byte {
	b, _ := json.Marshal(m) // cannot fail: strings and ints only
	return b
}

func decodeMeta(b []byte) (*sealedMeta, error) {
	var m sealedMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

const (
	userMetaPrefix = "X-Amz-Meta-"
	// sealHeader holds the envelope header (FORMAT.md); clients can neither
	// set nor see it.
	sealHeader = "X-Amz-Meta-S3seal"
	// userMetaLimit is S3's limit on user metadata (names and values).
	userMetaLimit = 2048
)

// userMetadata extracts the client's x-amz-meta-* headers.
func userMetadata(h http.Header) (map[string]string, error) {
	var m map[string]string
	total := 0
	for k, vs := range h {
		name, ok := strings.CutPrefix(k, userMetaPrefix)
		if !ok {
			continue
		}
		name = strings.ToLower(name)
		if name == "s3seal" || strings.HasPrefix(name, "s3seal-") {
			return nil, errInvalidArgument("x-amz-meta-s3seal is reserved by the proxy")
		}
		if m == nil {
			m = make(map[string]string)
		}
		v := strings.Join(vs, ",")
		m[name] = v
		total += len(name) + len(v)
	}
	if total > userMetaLimit {
		return nil, errMetadataTooLarge
	}
	return m, nil
}

// setUserMetadata writes decrypted user metadata as S3 shows it: lowercase
// x-amz-meta-* names.
func setUserMetadata(set func(k, v string), m map[string]string) {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		set("x-amz-meta-"+k, m[k])
	}
}
