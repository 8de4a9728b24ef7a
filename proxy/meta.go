package proxy

import (
	"net/http"
	"sort"
	"strings"
)

// contentHeaders are the standard headers that tell a client how to treat
// an object. Version 2 objects keep them sealed (envelope.Meta.Headers) and
// serve them from there: the store, the adversary, cannot change them, and
// they are not sent to it in clear (a Content-Encoding: gzip on ciphertext
// would be a lie there anyway).
var contentHeaders = []string{
	"Content-Type", "Content-Disposition", "Content-Encoding", "Content-Language",
	"Cache-Control", "Expires",
}

// sealedContentHeaders collects the content headers of a write request, for
// the sealed metadata; aws-chunked is transport, not content.
func sealedContentHeaders(h http.Header) map[string]string {
	var m map[string]string
	for _, k := range contentHeaders {
		v := strings.Join(h.Values(k), ",")
		if k == "Content-Encoding" {
			v = stripAWSChunked(v)
		}
		if v == "" {
			continue
		}
		if m == nil {
			m = make(map[string]string, len(contentHeaders))
		}
		m[k] = v
	}
	return m
}

// dropContentHeaders removes the content headers from an upstream request
// whose object keeps them sealed.
func dropContentHeaders(h http.Header) {
	for _, k := range contentHeaders {
		h.Del(k)
	}
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
