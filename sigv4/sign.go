package sigv4

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Signer signs requests to the upstream store. It is safe for concurrent
// use; do not copy it after first use (it caches derived signing keys).
type Signer struct {
	AccessKey, SecretKey, Region, Service string
	// SessionToken, when set (temporary credentials), is sent as
	// X-Amz-Security-Token and signed.
	SessionToken string

	keys keyCache
}

// signedByDefault reports whether Sign signs a header (lower-case name)
// found in the request: x-amz-*, content-md5 and content-type. Everything
// else (user-agent, content-length, expect, transfer-encoding, ...) is left
// unsigned, so hops and transports may rewrite it.
func signedByDefault(name string) bool {
	switch name {
	case "content-md5", "content-type":
		return true
	case "x-amz-date", "x-amz-content-sha256", "x-amz-security-token":
		return false // set by Sign itself
	}
	return strings.HasPrefix(name, "x-amz-")
}

// signHeaders is the header view while signing: the request's headers plus
// the ones Sign sets.
type signHeaders struct {
	r     *Request
	added map[string]string
}

func (h signHeaders) values(name string) []string {
	if v, ok := h.added[name]; ok {
		return []string{v}
	}
	return requestHeaders{h.r}.values(name)
}

func (s *Signer) service() string {
	if s.Service != "" {
		return s.Service
	}
	return "s3"
}

// Sign returns the headers to set on the upstream request: Authorization,
// X-Amz-Date, X-Amz-Content-Sha256 (payloadHash as given, e.g.
// UNSIGNED-PAYLOAD or a hex hash) and X-Amz-Security-Token when the signer has
// a session token. It signs host and every x-amz-* header present in
// r.Header, plus content-md5 and content-type if present. The path and query
// are signed exactly as they will be sent (r.RawPath, r.RawQuery); nothing is
// re-encoded.
func (s *Signer) Sign(r *Request, payloadHash string, now time.Time) http.Header {
	auth, amzDate := s.sign(r, payloadHash, now)
	h := http.Header{
		"Authorization":        {auth},
		"X-Amz-Date":           {amzDate},
		"X-Amz-Content-Sha256": {payloadHash},
	}
	if s.SessionToken != "" {
		h["X-Amz-Security-Token"] = []string{s.SessionToken}
	}
	return h
}

// defaultSignedHeaders lists what Sign signs: host, the headers it adds, and
// the request's headers accepted by signedByDefault; sorted.
func (s *Signer) defaultSignedHeaders(r *Request, added map[string]string) []string {
	names := make([]string, 0, len(r.Header)+4)
	names = append(names, "host")
	for name := range added {
		names = append(names, name)
	}
	for k := range r.Header {
		lk := strings.ToLower(k)
		if lk != "host" && signedByDefault(lk) && !slices.Contains(names, lk) {
			names = append(names, lk)
		}
	}
	slices.Sort(names)
	return names
}

// sign returns the Authorization value and the X-Amz-Date.
func (s *Signer) sign(r *Request, payloadHash string, now time.Time) (string, string) {
	amzDate := formatAmzDate(now)
	added := map[string]string{
		"x-amz-date":           amzDate,
		"x-amz-content-sha256": payloadHash,
	}
	if s.SessionToken != "" {
		added["x-amz-security-token"] = s.SessionToken
	}
	names := s.defaultSignedHeaders(r, added)
	sig, _, _ := s.signWith(r, amzDate, names, signHeaders{r, added}, appendCanonicalQuery(nil, parseQuery(r.RawQuery), ""), payloadHash)
	var b strings.Builder
	b.Grow(len(Algorithm) + len(s.AccessKey) + 64 + 160 + len(names)*16)
	b.WriteString(Algorithm)
	b.WriteString(" Credential=")
	b.WriteString(s.AccessKey)
	b.WriteByte('/')
	b.WriteString(s.scope(amzDate).String())
	b.WriteString(", SignedHeaders=")
	b.WriteString(strings.Join(names, ";"))
	b.WriteString(", Signature=")
	b.WriteString(sig)
	return b.String(), amzDate
}

func (s *Signer) scope(amzDate string) scope {
	return scope{date: amzDate[:8], region: s.Region, service: s.service()}
}

// signWith computes the signature of r with an explicit signed header list
// and canonical query; it returns the signature, the canonical request and
// the string to sign.
func (s *Signer) signWith(r *Request, amzDate string, names []string, hs headerSource, query []byte, payloadHash string) (sig string, canon, sts []byte) {
	sc := s.scope(amzDate)
	key := s.keys.get(s.AccessKey, s.SecretKey, sc)
	canon = appendCanonicalRequest(make([]byte, 0, 512), r.Method, canonicalURI(r.RawPath), query,
		names, hs, payloadHash)
	sts = appendStringToSign(make([]byte, 0, 160), amzDate, sc, canon)
	return signature(key, sts), canon, sts
}

// Presign returns r.RawQuery with the query-authentication parameters added
// (X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires,
// X-Amz-SignedHeaders, X-Amz-Security-Token when the signer has a session
// token, X-Amz-Signature last), for a URL valid for expires from now. The
// payload is UNSIGNED-PAYLOAD. It signs host and the x-amz-*, content-md5
// and content-type headers present in r.Header; the client must send those.
func (s *Signer) Presign(r *Request, expires time.Duration, now time.Time) string {
	names := s.defaultSignedHeaders(r, nil)
	q, _, _ := s.presignWith(r, expires, now, names, UnsignedPayload)
	return q
}

func (s *Signer) presignWith(r *Request, expires time.Duration, now time.Time, names []string, payloadHash string) (rawQuery string, canon, sts []byte) {
	amzDate := formatAmzDate(now)
	var q []byte
	q = append(q, r.RawQuery...)
	add := func(name, value string) {
		if len(q) > 0 {
			q = append(q, '&')
		}
		q = append(q, name...)
		q = append(q, '=')
		q = appendURIEncode(q, value)
	}
	add(queryAlgorithm, Algorithm)
	add(queryCredential, s.AccessKey+"/"+s.scope(amzDate).String())
	add(queryDate, amzDate)
	add(queryExpires, strconv.FormatInt(int64(expires/time.Second), 10))
	add(querySignedHeaders, strings.Join(names, ";"))
	if s.SessionToken != "" {
		add("X-Amz-Security-Token", s.SessionToken)
	}
	query := appendCanonicalQuery(nil, parseQuery(string(q)), "")
	sig, canon, sts := s.signWith(r, amzDate, names, requestHeaders{r}, query, payloadHash)
	add(querySignature, sig)
	return string(q), canon, sts
}
