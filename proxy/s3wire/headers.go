package s3wire

import (
	"net/http"
	"strings"
)

// Header rules: which client headers go to the store, and which store
// headers come back. Upstream requests are built from scratch: a client
// header is forwarded only if Forwardable says so.

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

// Forwardable reports whether a client header (canonical key) may be
// copied upstream.
func Forwardable(k string) bool {
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
			out[k] = []string{StoreETagList(strings.Join(vs, ", "))}
			continue
		case "Content-Encoding":
			if enc := StripAWSChunked(strings.Join(vs, ",")); enc != "" {
				out[k] = []string{enc}
			}
			continue
		}
		if Forwardable(k) {
			out[k] = append([]string(nil), vs...)
		}
	}
}

// StripAWSChunked removes the aws-chunked transport coding from a
// Content-Encoding value.
func StripAWSChunked(v string) string {
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
				v = StoreETagList(v)
			}
			cond.Set(k, v)
		}
	}
	return cond
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
