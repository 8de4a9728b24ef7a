package s3wire

import (
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/s3seal/s3seal/envelope"
)

// Header rules: which client headers go to the store, which store headers
// come back, and which headers s3seal seals into the object instead.
// Upstream requests are built from scratch: a client header is forwarded
// only if forwardable says so.

// dropRequestHeaders are client headers never forwarded as they are: they
// authenticate or describe the client's request, not the upstream one.
var dropRequestHeaders = map[string]bool{
	"Authorization": true, "Host": true, "Content-Length": true, "Content-Md5": true,
	"Connection": true, "Keep-Alive": true, "Transfer-Encoding": true, "Te": true, "Trailer": true,
	"Upgrade": true, "Expect": true, "Proxy-Authorization": true, "Proxy-Connection": true,
	"User-Agent": true, "Accept-Encoding": true, "Range": true,
	"X-Amz-Content-Sha256": true, "X-Amz-Date": true, "X-Amz-Decoded-Content-Length": true,
	"X-Amz-Trailer": true, "X-Amz-Sdk-Checksum-Algorithm": true, "X-Amz-Security-Token": true,
	"X-Amz-Checksum-Algorithm": true, "X-Amz-Checksum-Type": true, "X-Amz-Checksum-Mode": true,
	"X-Amz-User-Agent": true, "Amz-Sdk-Invocation-Id": true, "Amz-Sdk-Request": true,
	"X-Amz-Copy-Source": true,
}

// forwardable reports whether a client header (canonical key) may be
// copied upstream.
func forwardable(k string) bool {
	if dropRequestHeaders[k] {
		return false
	}
	switch {
	case strings.HasPrefix(k, "X-Amz-Checksum-"),
		strings.HasPrefix(k, "X-Amz-Server-Side-Encryption"),
		strings.HasPrefix(k, UserMetaPrefix),
		strings.HasPrefix(k, "X-Amz-Copy-Source-"):
		return false
	case strings.HasPrefix(k, "X-Amz-"):
		return true
	}
	switch k {
	case "Content-Type", "Content-Disposition", "Content-Language", "Cache-Control", "Expires",
		"If-Modified-Since", "If-Unmodified-Since", "Accept":
		return true
	}
	return false
}

// CopyRequestHeaders copies the forwardable client headers to out, mapping
// ETags in conditions and removing aws-chunked from Content-Encoding.
func CopyRequestHeaders(out http.Header, in http.Header) {
	for k, vs := range in {
		switch k {
		case "If-Match", "If-None-Match":
			out[k] = []string{storeETagList(strings.Join(vs, ", "))}
			continue
		case "Content-Encoding":
			if enc := stripAWSChunked(strings.Join(vs, ",")); enc != "" {
				out[k] = []string{enc}
			}
			continue
		}
		if forwardable(k) {
			out[k] = append([]string(nil), vs...)
		}
	}
}

// stripAWSChunked removes the aws-chunked transport coding from a
// Content-Encoding value.
func stripAWSChunked(v string) string {
	var kept []string
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if p != "" && !strings.EqualFold(p, "aws-chunked") {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, ",")
}

// conditionHeaders are the GET/HEAD conditions forwarded to the store
// (ETags mapped) so that it evaluates them against the stored version.
var conditionHeaders = []string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"}

// Conditions are the client's GET/HEAD conditions as the store must see
// them.
func Conditions(h http.Header) http.Header {
	cond := http.Header{}
	for _, k := range conditionHeaders {
		if v := h.Get(k); v != "" {
			if strings.HasSuffix(k, "Match") {
				v = storeETagList(v)
			}
			cond.Set(k, v)
		}
	}
	return cond
}

// NamesMultipartETag reports whether an If-Match or If-None-Match value
// names a multipart ETag ("<hex>-N"). Such an ETag may be the one s3seal
// sealed for the object (envelope.Meta.ETag), which the store does not
// know: the proxy evaluates those conditions itself (CheckReadConditions),
// or maps them to the store's ETag after reading the object's header.
func NamesMultipartETag(v string) bool {
	for _, c := range strings.Split(v, ",") {
		if envelope.PartsInETag(strings.TrimPrefix(strings.TrimSpace(c), "W/")) > 0 {
			return true
		}
	}
	return false
}

// LocalConditions reports whether the GET/HEAD conditions in h must be
// evaluated by the proxy (CheckReadConditions) rather than by the store:
// when an ETag in them is a multipart one. The date conditions go with
// them, since S3 weighs each ETag condition against its date condition.
func LocalConditions(h http.Header) bool {
	return NamesMultipartETag(h.Get("If-Match")) || NamesMultipartETag(h.Get("If-None-Match"))
}

// CheckReadConditions evaluates the GET/HEAD conditions in h against the
// object version read (store ETag storeTag, sealed ETag sealed, its
// Last-Modified) as S3 does: the status to answer instead of the object,
// 412 or 304, or 0 to serve it.
func CheckReadConditions(h http.Header, storeTag, sealed, lastModified string) int {
	failed, notModified := evalConditions(h, readConditions, versionTags(storeTag, sealed), lastModified)
	switch {
	case failed:
		return http.StatusPreconditionFailed
	case notModified:
		return http.StatusNotModified
	}
	return 0
}

// conditionNames are the four headers of a set of HTTP conditions.
type conditionNames struct{ match, unmodifiedSince, noneMatch, modifiedSince string }

var (
	readConditions = conditionNames{"If-Match", "If-Unmodified-Since", "If-None-Match", "If-Modified-Since"}
	copyConditions = conditionNames{"X-Amz-Copy-Source-If-Match", "X-Amz-Copy-Source-If-Unmodified-Since",
		"X-Amz-Copy-Source-If-None-Match", "X-Amz-Copy-Source-If-Modified-Since"}
)

// evalConditions evaluates conditions in S3's order (RFC 9110 13.2.2): a
// false If-Match, or a false If-Unmodified-Since without If-Match, fails
// the request; a true If-None-Match, or a false If-Modified-Since without
// If-None-Match, makes it "not modified". tags are the ETags that name the
// version; lastModified is its Last-Modified.
func evalConditions(h http.Header, n conditionNames, tags []string, lastModified string) (failed, notModified bool) {
	matches := func(cond string) bool {
		return slices.ContainsFunc(tags, func(t string) bool { return etagMatches(cond, t) })
	}
	lm, lmErr := http.ParseTime(lastModified)
	if v := h.Get(n.match); v != "" && !matches(v) {
		return true, false
	}
	if v := h.Get(n.unmodifiedSince); v != "" && h.Get(n.match) == "" {
		if t, err := http.ParseTime(v); err == nil && lmErr == nil && lm.After(t) {
			return true, false
		}
	}
	if v := h.Get(n.noneMatch); v != "" && matches(v) {
		return false, true
	}
	if v := h.Get(n.modifiedSince); v != "" && h.Get(n.noneMatch) == "" {
		if t, err := http.ParseTime(v); err == nil && lmErr == nil && !lm.After(t) {
			return false, true
		}
	}
	return false, false
}

// versionTags are the ETags a condition may name one object version by:
// the one it is shown with, and the store's as listings show it.
func versionTags(storeTag, sealed string) []string {
	shown, listed := ObjectETag(storeTag, sealed), ClientETag(storeTag)
	if shown == listed {
		return []string{shown}
	}
	return []string{shown, listed}
}

// dropResponseHeaders are upstream response headers the client never sees
// as they are.
var dropResponseHeaders = map[string]bool{
	"Content-Length": true, "Connection": true, "Keep-Alive": true, "Transfer-Encoding": true,
	"Server": true, "X-Amz-Request-Id": true, "X-Amz-Id-2": true, "Strict-Transport-Security": true,
	"X-Content-Type-Options": true, "X-Xss-Protection": true, "Vary": true,
	"X-Ratelimit-Limit": true, "X-Ratelimit-Remaining": true, "Accept-Ranges": true,
}

// DropResponseHeader reports whether a store response header (canonical
// key) stays from the client: hop-by-hop ones, and for a sealed object
// anything that describes the ciphertext (the proxy sets those itself).
// Any other ETag goes to the client through ClientETag.
func DropResponseHeader(key string, sealed bool) bool {
	if dropResponseHeaders[key] {
		return true
	}
	if !sealed {
		return false
	}
	switch {
	case strings.HasPrefix(key, UserMetaPrefix),
		strings.HasPrefix(key, "X-Amz-Checksum-"),
		strings.HasPrefix(key, "X-Amz-Server-Side-Encryption"),
		key == "Content-Range", key == "Etag", key == "Content-Md5":
		return true
	}
	return false
}

// ResponseOverrides are GetObject's query parameters that set a response
// header.
var ResponseOverrides = map[string]string{
	"response-content-type": "Content-Type", "response-content-language": "Content-Language",
	"response-expires": "Expires", "response-cache-control": "Cache-Control",
	"response-content-disposition": "Content-Disposition", "response-content-encoding": "Content-Encoding",
}

// SSE request and response headers, and the algorithms s3seal accepts.
const (
	HeaderSSE        = "X-Amz-Server-Side-Encryption"
	HeaderSSEKeyID   = "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"
	HeaderSSEContext = "X-Amz-Server-Side-Encryption-Context"
	SSEKMS           = "aws:kms"
	SSEAES256        = "AES256"
)

// HasSSEC reports SSE-C (customer-provided key) headers, which s3seal
// cannot combine with its own encryption.
func HasSSEC(h http.Header) bool {
	for _, k := range []string{
		"X-Amz-Server-Side-Encryption-Customer-Algorithm",
		"X-Amz-Server-Side-Encryption-Customer-Key",
		"X-Amz-Copy-Source-Server-Side-Encryption-Customer-Algorithm",
	} {
		if h.Get(k) != "" {
			return true
		}
	}
	return false
}

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
			v = stripAWSChunked(v)
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
