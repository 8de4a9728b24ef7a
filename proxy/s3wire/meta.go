package s3wire

import (
	"net/http"
	"sort"
	"strings"
)

// Headers that s3seal seals into an object instead of leaving them to the
// store.

const (
	UserMetaPrefix = "X-Amz-Meta-"
	// SealHeader holds the envelope header (FORMAT.md); clients can neither
	// set nor see it.
	SealHeader = "X-Amz-Meta-S3seal"
	// userMetaLimit is S3's limit on user metadata (names and values).
	userMetaLimit = 2048
)

// ContentHeaders are the standard headers that tell a client how to treat
// an object. Version 2 objects keep them sealed (envelope.Meta.Headers) and
// serve them from there: the store, the adversary, cannot change them, and
// they are not sent to it in clear (a Content-Encoding: gzip on ciphertext
// would be a lie there anyway).
var ContentHeaders = []string{
	"Content-Type", "Content-Disposition", "Content-Encoding", "Content-Language",
	"Cache-Control", "Expires",
}

// SealedContentHeaders collects the content headers of a write request, for
// the sealed metadata; aws-chunked is transport, not content.
func SealedContentHeaders(h http.Header) map[string]string {
	var m map[string]string
	for _, k := range ContentHeaders {
		v := strings.Join(h.Values(k), ",")
		if k == "Content-Encoding" {
			v = StripAWSChunked(v)
		}
		if v == "" {
			continue
		}
		if m == nil {
			m = make(map[string]string, len(ContentHeaders))
		}
		m[k] = v
	}
	return m
}

// DropContentHeaders removes the content headers from an upstream request
// whose object keeps them sealed.
func DropContentHeaders(h http.Header) {
	for _, k := range ContentHeaders {
		h.Del(k)
	}
}

// UserMetadata extracts the client's x-amz-meta-* headers.
func UserMetadata(h http.Header) (map[string]string, error) {
	var m map[string]string
	total := 0
	for k, vs := range h {
		name, ok := strings.CutPrefix(k, UserMetaPrefix)
		if !ok {
			continue
		}
		name = strings.ToLower(name)
		if name == "s3seal" || strings.HasPrefix(name, "s3seal-") {
			return nil, InvalidArgument("x-amz-meta-s3seal is reserved by the proxy")
		}
		if m == nil {
			m = make(map[string]string)
		}
		v := strings.Join(vs, ",")
		m[name] = v
		total += len(name) + len(v)
	}
	if total > userMetaLimit {
		return nil, ErrMetadataTooLarge
	}
	return m, nil
}

// SetUserMetadata writes decrypted user metadata as S3 shows it: lowercase
// x-amz-meta-* names, in order.
func SetUserMetadata(set func(k, v string), m map[string]string) {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		set("x-amz-meta-"+k, m[k])
	}
}

// createApplied are CreateMultipartUpload headers the store applies to the
// object it creates and a copy would not keep: the copy that finalizes the
// upload asks for them again (tags survive a copy by themselves).
var createApplied = []string{
	"X-Amz-Acl", "X-Amz-Grant-Read", "X-Amz-Grant-Read-Acp", "X-Amz-Grant-Write-Acp",
	"X-Amz-Grant-Full-Control", "X-Amz-Storage-Class", "X-Amz-Website-Redirect-Location",
	"X-Amz-Object-Lock-Mode", "X-Amz-Object-Lock-Retain-Until-Date", "X-Amz-Object-Lock-Legal-Hold",
}

// CreateHeaders collects the createApplied headers of a
// CreateMultipartUpload, for the pending header's sealed metadata.
func CreateHeaders(h http.Header) map[string]string {
	var m map[string]string
	for _, k := range createApplied {
		if v := strings.Join(h.Values(k), ","); v != "" {
			if m == nil {
				m = make(map[string]string)
			}
			m[k] = v
		}
	}
	return m
}

// CopyHeadersKept are the stored headers a COPY directive carries over.
// The store is always told REPLACE (the envelope header must change), so
// the proxy re-sends what S3 would have copied.
var CopyHeadersKept = []string{
	"Content-Type", "Content-Disposition", "Content-Encoding", "Content-Language",
	"Cache-Control", "Expires", "X-Amz-Website-Redirect-Location",
}
