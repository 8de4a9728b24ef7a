package sigv4

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"time"
)

// Algorithm names and special payload hashes (x-amz-content-sha256 values).
const (
	Algorithm = "AWS4-HMAC-SHA256"

	UnsignedPayload             = "UNSIGNED-PAYLOAD"
	StreamingPayload            = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	StreamingPayloadTrailer     = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	StreamingUnsignedTrailer    = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	streamingECDSAPayload       = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
	streamingECDSAPayloadTailer = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER"

	// EmptySHA256 is the hex SHA-256 of the empty string.
	EmptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

	chunkAlgorithm   = "AWS4-HMAC-SHA256-PAYLOAD"
	trailerAlgorithm = "AWS4-HMAC-SHA256-TRAILER"
	terminator       = "aws4_request"

	// TimeFormat is the ISO 8601 basic format of X-Amz-Date.
	TimeFormat = "20060102T150405Z"
	dateFormat = "20060102"
)

// hexUpper is used for percent-encoding (AWS requires upper-case hex digits).
const hexUpper = "0123456789ABCDEF"

// unreserved reports whether c is left as is by the AWS URI encoding
// (RFC 3986 unreserved characters).
func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// appendURIEncode appends s encoded the AWS way: every byte but the
// unreserved ones becomes %XX with upper-case hex.
func appendURIEncode(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			dst = append(dst, c)
		} else {
			dst = append(dst, '%', hexUpper[c>>4], hexUpper[c&15])
		}
	}
	return dst
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// queryUnescape decodes one query name or value as a form decoder does
// ('+' is a space, %XX a byte). Unlike net/url it never fails: a '%' not
// followed by two hex digits stands for itself, so a canonical form exists for
// every raw query and signer and verifier agree on it.
func queryUnescape(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b = append(b, ' ')
		case '%':
			if i+2 < len(s) {
				h, ok1 := unhex(s[i+1])
				l, ok2 := unhex(s[i+2])
				if ok1 && ok2 {
					b = append(b, h<<4|l)
					i += 2
					continue
				}
			}
			b = append(b, c)
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// queryParam is one name=value pair of a raw query, decoded.
type queryParam struct {
	name, value string
}

// parseQuery splits a raw query on '&' and each part on its first '='
// (a part without '=' has an empty value; empty parts are dropped) and decodes
// names and values. Order is kept.
func parseQuery(raw string) []queryParam {
	if raw == "" {
		return nil
	}
	params := make([]queryParam, 0, strings.Count(raw, "&")+1)
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		name, value, _ := strings.Cut(part, "=")
		params = append(params, queryParam{queryUnescape(name), queryUnescape(value)})
	}
	return params
}

// CanonicalQuery returns the canonical query string of a raw query (as on the
// wire): parameters split on '&' and the first '=', names and values decoded
// and re-encoded the AWS way, sorted by encoded name then encoded value.
func CanonicalQuery(rawQuery string) string {
	return string(appendCanonicalQuery(nil, parseQuery(rawQuery), ""))
}

// appendCanonicalQuery appends the canonical query of params, leaving out every
// parameter named skip (X-Amz-Signature for presigned requests) when skip is
// not empty.
func appendCanonicalQuery(dst []byte, params []queryParam, skip string) []byte {
	if len(params) == 0 {
		return dst
	}
	// All encoded names and values go into one buffer; pairs index it.
	type span struct{ name, value [2]int }
	size := 0
	for _, p := range params {
		size += len(p.name) + len(p.value)
	}
	buf := make([]byte, 0, size*3/2+16)
	spans := make([]span, 0, len(params))
	for _, p := range params {
		if skip != "" && p.name == skip {
			continue
		}
		var sp span
		sp.name[0] = len(buf)
		buf = appendURIEncode(buf, p.name)
		sp.name[1] = len(buf)
		sp.value[0] = len(buf)
		buf = appendURIEncode(buf, p.value)
		sp.value[1] = len(buf)
		spans = append(spans, sp)
	}
	part := func(r [2]int) []byte { return buf[r[0]:r[1]] }
	slices.SortFunc(spans, func(a, b span) int {
		if c := bytes.Compare(part(a.name), part(b.name)); c != 0 {
			return c
		}
		return bytes.Compare(part(a.value), part(b.value))
	})
	for i, sp := range spans {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, part(sp.name)...)
		dst = append(dst, '=')
		dst = append(dst, part(sp.value)...)
	}
	return dst
}

// canonicalURI is the path exactly as the client sent it (S3 neither
// re-encodes nor normalizes it), "/" when empty.
func canonicalURI(rawPath string) string {
	if rawPath == "" {
		return "/"
	}
	return rawPath
}

// appendHeaderValue appends one header value trimmed of surrounding white
// space with inner runs of spaces collapsed to one, as SigV4 requires.
func appendHeaderValue(dst []byte, v string) []byte {
	v = strings.TrimSpace(v)
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		dst = append(dst, c)
	}
	return dst
}

// headerSource gives the values of a header by lower-case name.
type headerSource interface {
	values(name string) []string
}

// requestHeaders looks headers up in a Request; "host" is Request.Host.
type requestHeaders struct {
	r *Request
}

func (h requestHeaders) values(name string) []string {
	switch name {
	case "host":
		if h.r.Host != "" {
			return []string{h.r.Host}
		}
	case "expect":
		// Servers answer and drop "Expect: 100-continue" before handlers see
		// it; a client that signed it sent that value (MinIO does the same).
		if v := lookupHeader(h.r.Header, name); v != nil {
			return v
		}
		return []string{"100-continue"}
	}
	return lookupHeader(h.r.Header, name)
}

// lookupHeader finds name in h, trying the canonical key first and then a
// case-insensitive scan (the Header may not use canonical keys throughout).
func lookupHeader(h http.Header, name string) []string {
	var buf [64]byte
	if len(name) <= len(buf) {
		// Canonicalize on the stack: the map lookup of string(bytes) does
		// not allocate.
		upper := true
		for i := 0; i < len(name); i++ {
			c := name[i]
			if upper && 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			} else if !upper && 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			upper = c == '-'
			buf[i] = c
		}
		if v, ok := h[string(buf[:len(name)])]; ok {
			return v
		}
	} else if v, ok := h[textproto.CanonicalMIMEHeaderKey(name)]; ok {
		return v
	}
	if v, ok := h[name]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// appendCanonicalRequest appends the canonical request:
//
//	method \n uri \n query \n (name:values \n)* \n signed-headers \n payload-hash
func appendCanonicalRequest(dst []byte, method, uri string, query []byte, signed []string, hs headerSource, payloadHash string) []byte {
	dst = append(dst, method...)
	dst = append(dst, '\n')
	dst = append(dst, uri...)
	dst = append(dst, '\n')
	dst = append(dst, query...)
	dst = append(dst, '\n')
	for _, name := range signed {
		dst = append(dst, name...)
		dst = append(dst, ':')
		for i, v := range hs.values(name) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendHeaderValue(dst, v)
		}
		dst = append(dst, '\n')
	}
	dst = append(dst, '\n')
	for i, name := range signed {
		if i > 0 {
			dst = append(dst, ';')
		}
		dst = append(dst, name...)
	}
	dst = append(dst, '\n')
	dst = append(dst, payloadHash...)
	return dst
}

// scope is a credential scope: date/region/service/aws4_request.
type scope struct {
	date, region, service string
}

func (s scope) String() string {
	return s.date + "/" + s.region + "/" + s.service + "/" + terminator
}

// appendStringToSign appends the string to sign for a canonical request.
func appendStringToSign(dst []byte, amzDate string, sc scope, canonicalRequest []byte) []byte {
	sum := sha256.Sum256(canonicalRequest)
	dst = append(dst, Algorithm...)
	dst = append(dst, '\n')
	dst = append(dst, amzDate...)
	dst = append(dst, '\n')
	dst = append(dst, sc.String()...)
	dst = append(dst, '\n')
	return hex.AppendEncode(dst, sum[:])
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// deriveKey computes the SigV4 signing key for a secret and scope.
func deriveKey(secret string, sc scope) [32]byte {
	k := hmacSHA256([]byte("AWS4"+secret), sc.date)
	k = hmacSHA256(k, sc.region)
	k = hmacSHA256(k, sc.service)
	k = hmacSHA256(k, terminator)
	return [32]byte(k)
}

// signature returns the hex HMAC-SHA256 of stringToSign under key.
func signature(key [32]byte, stringToSign []byte) string {
	m := hmac.New(sha256.New, key[:])
	m.Write(stringToSign)
	var sum [32]byte
	return hex.EncodeToString(m.Sum(sum[:0]))
}

// keyCache caches derived signing keys by access key and scope. A signing key
// only changes when the date does, so one derivation (four HMACs) serves a
// whole day of requests. The secret is stored with the key and compared, so a
// rotated secret is never served a stale key. The cache is bounded: when full
// it is emptied, which only costs re-derivations.
type keyCache struct {
	mu sync.RWMutex
	m  map[cacheKey]cachedKey
}

const keyCacheMax = 4096

type cacheKey struct {
	accessKey string
	scope     scope
}

type cachedKey struct {
	secret string
	key    [32]byte
}

func (c *keyCache) get(accessKey, secret string, sc scope) [32]byte {
	ck := cacheKey{accessKey, sc}
	c.mu.RLock()
	e, ok := c.m[ck]
	c.mu.RUnlock()
	if ok && subtle.ConstantTimeCompare([]byte(e.secret), []byte(secret)) == 1 {
		return e.key
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Double-check: another goroutine may have derived it meanwhile.
	if e, ok := c.m[ck]; ok && subtle.ConstantTimeCompare([]byte(e.secret), []byte(secret)) == 1 {
		return e.key
	}
	key := deriveKey(secret, sc)
	if c.m == nil || len(c.m) >= keyCacheMax {
		c.m = make(map[cacheKey]cachedKey)
	}
	c.m[ck] = cachedKey{secret, key}
	return key
}

// formatAmzDate formats t in the X-Amz-Date format, in UTC.
func formatAmzDate(t time.Time) string {
	return t.UTC().Format(TimeFormat)
}
