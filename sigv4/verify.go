package sigv4

import (
	"crypto/fips140"
	"crypto/hmac"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Request is the HTTP-agnostic view of a request.
type Request struct {
	Method   string
	RawPath  string      // as on the wire, escaped, without query
	RawQuery string      // as on the wire
	Host     string      // Host header as sent, port included
	Header   http.Header // all request headers (canonical keys), Content-Length and Content-Type included

	// Bucket is the bucket of a virtual-hosted-style request (named by the
	// Host header, absent from RawPath); "" for path-style requests, whose
	// RawPath starts with it. Only Signature V2 signs it.
	Bucket string
}

// CredentialLookup returns the secret key of an access key, ok false when the
// key is unknown.
type CredentialLookup func(accessKey string) (secret string, ok bool)

// DefaultMaxSkew is the clock skew S3 tolerates between the request time and
// its own.
const DefaultMaxSkew = 15 * time.Minute

// Verifier verifies SigV4-signed S3 requests, by Authorization header or
// presigned query. It is safe for concurrent use; do not copy it after first
// use (it holds a cache of derived signing keys).
//
// Region: when set, a credential scope naming another region is refused with
// AuthorizationHeaderMalformed (AuthorizationQueryParametersError for a
// presigned URL), "the region 'x' is wrong; expecting 'y'", as AWS S3 does.
// When empty, any region the client scoped its signature to is accepted (as
// MinIO does with no region configured); Auth.Region tells which.
type Verifier struct {
	Lookup  CredentialLookup
	Region  string           // region clients must sign for; "" accepts any
	Service string           // service in the scope; "" means "s3"
	Now     func() time.Time // clock; nil means time.Now
	MaxSkew time.Duration    // 0 means DefaultMaxSkew

	// MinChunkSize, when positive, is the smallest size allowed for an
	// aws-chunked chunk other than the last; a smaller one fails the body
	// with InvalidChunkSizeError. AWS S3 enforces 8192 (S3ChunkMinimum);
	// MinIO enforces nothing, which is the default here.
	MinChunkSize int

	// AllowV2 accepts Signature V2 (HMAC-SHA1, sigv2.go): the "AWS
	// key:signature" Authorization header and AWSAccessKeyId/Signature/Expires
	// query authentication. When false such requests get
	// ErrUnsupportedAlgorithm, as S3 answers in regions without V2. It has
	// no effect in FIPS 140-3 mode (v2Allowed).
	AllowV2 bool

	keys keyCache
}

// Auth is a verified request's identity and what its body needs to be checked
// against.
type Auth struct {
	AccessKey   string
	PayloadHash string // x-amz-content-sha256 value: UNSIGNED-PAYLOAD, 64 hex, or STREAMING-*
	Presigned   bool

	Signature     string    // the request's signature (the seed of chunk signatures), hex
	Time          time.Time // signing time (X-Amz-Date or Date)
	Region        string    // region of the credential scope
	Service       string    // service of the credential scope
	SignedHeaders []string  // lower-case names, as the client listed them

	// Trailers are the trailing header names the client announced in
	// x-amz-trailer, lower case.
	Trailers []string
	// ChecksumAlgorithm and ChecksumValue are a x-amz-checksum-* request
	// header (e.g. "x-amz-checksum-crc32c", base64 value), if one was sent;
	// Body verifies the payload against it.
	ChecksumAlgorithm string
	ChecksumValue     string
	// ContentMD5 is the Content-MD5 header (base64), if sent; Body verifies
	// the payload against it (BadDigest, or InvalidDigest if malformed).
	ContentMD5 string

	key      [32]byte
	amzDate  string
	scope    scope
	minChunk int
}

// S3ChunkMinimum is the minimum aws-chunked chunk size AWS S3 enforces
// (every chunk but the last).
const S3ChunkMinimum = 8192

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) maxSkew() time.Duration {
	if v.MaxSkew > 0 {
		return v.MaxSkew
	}
	return DefaultMaxSkew
}

func (v *Verifier) service() string {
	if v.Service != "" {
		return v.Service
	}
	return "s3"
}

// Verify checks the request's signature. It returns the verified identity and
// payload mode, or an *Error with the S3 code to send. A request with neither
// an Authorization header nor presigned query parameters gets ErrMissingAuth
// (AccessDenied); the caller decides whether anonymous access is allowed.
// Verify does not read the body: pass it through Auth.Body. Signature V2
// requests are verified when AllowV2 is set (sigv2.go); their Auth has an
// empty Region and, for query authentication, Time is the expiry.
func (v *Verifier) Verify(r *Request) (*Auth, error) {
	authz := lookupHeader(r.Header, "authorization")
	params := parseQuery(r.RawQuery)
	var presign, sigV2Query bool
	for _, p := range params {
		switch p.name {
		case queryAlgorithm, queryCredential, querySignature:
			presign = true
		case v2QueryAccessKey, v2QuerySignature:
			sigV2Query = true
		}
	}
	switch {
	case len(authz) > 0 && (presign || sigV2Query):
		return nil, clone(ErrMultipleAuth)
	case len(authz) > 1:
		return nil, malformedHeader("the Authorization header appears more than once.")
	case len(authz) == 1 && isV2Authorization(authz[0]):
		if !v.v2Allowed() {
			return nil, clone(ErrUnsupportedAlgorithm)
		}
		return v.verifyV2Header(r, authz[0], params)
	case len(authz) == 1:
		return v.verifyHeader(r, authz[0], params, "")
	case presign:
		return v.verifyPresigned(r, params, "")
	case sigV2Query:
		if !v.v2Allowed() {
			return nil, clone(ErrUnsupportedAlgorithm)
		}
		return v.verifyV2Query(r, params)
	}
	return nil, clone(ErrMissingAuth)
}

// v2Allowed reports whether Signature V2 is verified at all. Never in FIPS
// 140-3 mode (crypto/fips140.Enabled): V2's HMAC-SHA1 is no approved
// algorithm of Go's module (SHA-1 lies outside it), and a request's
// authentication is a security function, so such requests get
// ErrUnsupportedAlgorithm whatever AllowV2 says. The command refuses
// --allow-sigv2 in that mode; this is the backstop where the HMAC runs.
func (v *Verifier) v2Allowed() bool {
	return v.AllowV2 && !fips140.Enabled()
}

// requestTime reads X-Amz-Date, or Date when it is absent.
func requestTime(h http.Header) (time.Time, bool) {
	if v := lookupHeader(h, "x-amz-date"); len(v) > 0 {
		t, err := time.Parse(TimeFormat, strings.TrimSpace(v[0]))
		return t, err == nil
	}
	if v := lookupHeader(h, "date"); len(v) > 0 {
		t, err := http.ParseTime(strings.TrimSpace(v[0]))
		return t.UTC(), err == nil
	}
	return time.Time{}, false
}

// checkScope checks the credential scope against the request time and the
// verifier's region and service. query selects the presigned error form.
func (v *Verifier) checkScope(c credential, t time.Time, query bool) error {
	mk := func(reason string) *Error {
		if query {
			return malformedQuery("Error parsing the X-Amz-Credential parameter; " + reason)
		}
		return malformedHeader(reason)
	}
	if d := t.UTC().Format(dateFormat); c.scope.date != d {
		return mk("Invalid credential date \"" + c.scope.date + "\". This date is not the same as X-Amz-Date: \"" + d + "\".")
	}
	if v.Region != "" && c.scope.region != v.Region {
		e := mk("the region '" + c.scope.region + "' is wrong; expecting '" + v.Region + "'")
		e.Details = []Detail{{"Region", v.Region}}
		return e
	}
	if s := v.service(); c.scope.service != s {
		return mk("incorrect service \"" + c.scope.service + "\". This endpoint belongs to \"" + s + "\".")
	}
	return nil
}

// checkSignedHeaders enforces what S3 requires of the signed header list:
// host is signed, and so is every x-amz-* header the request carries.
func checkSignedHeaders(r *Request, signed []string) error {
	var missing []string
	if !slices.Contains(signed, "host") {
		missing = append(missing, "host")
	}
	for k := range r.Header {
		if len(k) < 6 || !strings.EqualFold(k[:6], "x-amz-") {
			continue
		}
		if !slices.ContainsFunc(signed, func(s string) bool { return strings.EqualFold(s, k) }) {
			missing = append(missing, strings.ToLower(k))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	e := clone(ErrUnsignedHeaders)
	e.Details = []Detail{{"HeadersNotSigned", strings.Join(missing, ", ")}}
	return e
}

// payloadKind classifies an x-amz-content-sha256 value.
func checkPayloadHash(h string) error {
	switch h {
	case UnsignedPayload, StreamingPayload, StreamingPayloadTrailer, StreamingUnsignedTrailer:
		return nil
	case streamingECDSAPayload, streamingECDSAPayloadTailer:
		return clone(ErrUnsupportedPayload)
	}
	if len(h) == 64 {
		if _, err := hex.DecodeString(h); err == nil {
			return nil
		}
	}
	return clone(ErrInvalidContentSHA256)
}

// checksumHeaders are the x-amz-checksum-* algorithms S3 accepts.
var checksumHeaders = []string{
	"x-amz-checksum-crc32", "x-amz-checksum-crc32c", "x-amz-checksum-crc64nvme",
	"x-amz-checksum-sha1", "x-amz-checksum-sha256",
}

// fillBodyInfo records x-amz-trailer and x-amz-checksum-* for Body.
func fillBodyInfo(a *Auth, h http.Header) error {
	for _, v := range lookupHeader(h, "x-amz-trailer") {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.ToLower(strings.TrimSpace(name)); name != "" {
				a.Trailers = append(a.Trailers, name)
			}
		}
	}
	for _, name := range checksumHeaders {
		vals := lookupHeader(h, name)
		if len(vals) == 0 {
			continue
		}
		if a.ChecksumAlgorithm != "" || len(vals) > 1 {
			return &Error{Code: "InvalidRequest", Status: http.StatusBadRequest,
				Message: "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."}
		}
		a.ChecksumAlgorithm, a.ChecksumValue = name, strings.TrimSpace(vals[0])
	}
	if v := lookupHeader(h, "content-md5"); len(v) > 0 {
		a.ContentMD5 = strings.TrimSpace(v[0])
		if a.ContentMD5 == "" {
			// Sent empty: S3 answers InvalidDigest, never "no digest".
			return clone(ErrInvalidDigest)
		}
	}
	return nil
}

// verifyHeader verifies header authentication. bodyHash, when not empty,
// is the hex SHA-256 of a body the caller has read (VerifyPayload);
// otherwise x-amz-content-sha256 says what was signed, as S3 has it.
func (v *Verifier) verifyHeader(r *Request, authz string, params []queryParam, bodyHash string) (*Auth, error) {
	f, err := parseAuthorization(authz)
	if err != nil {
		return nil, err
	}
	t, ok := requestTime(r.Header)
	if !ok {
		return nil, clone(ErrMissingDate)
	}
	if err := v.checkScope(f.cred, t, false); err != nil {
		return nil, err
	}
	secret, ok := v.Lookup(f.cred.accessKey)
	if !ok {
		e := clone(ErrInvalidAccessKeyID)
		e.AccessKeyID = f.cred.accessKey
		return nil, e
	}
	now := v.now()
	if d := now.Sub(t); d > v.maxSkew() || -d > v.maxSkew() {
		return nil, errSkewed(t, now, v.maxSkew())
	}
	if err := checkSignedHeaders(r, f.signedHeaders); err != nil {
		return nil, err
	}
	payload := EmptySHA256 // no x-amz-content-sha256: an empty body (as MinIO)
	if h := lookupHeader(r.Header, "x-amz-content-sha256"); len(h) > 0 {
		payload = strings.TrimSpace(h[0])
		if err := checkPayloadHash(payload); err != nil {
			return nil, err
		}
		if bodyHash != "" && payload != bodyHash {
			return nil, clone(ErrContentSHA256Mismatch)
		}
	}
	if bodyHash != "" {
		payload = bodyHash
	}
	a := &Auth{
		AccessKey:     f.cred.accessKey,
		PayloadHash:   payload,
		Signature:     f.signature,
		Time:          t,
		Region:        f.cred.scope.region,
		Service:       f.cred.scope.service,
		SignedHeaders: f.signedHeaders,
		amzDate:       formatAmzDate(t),
		scope:         f.cred.scope,
	}
	a.key = v.keys.get(a.AccessKey, secret, a.scope)
	query := appendCanonicalQuery(nil, params, "")
	if err := a.check(r, query, a.PayloadHash, f.signature); err != nil {
		return nil, err
	}
	if err := fillBodyInfo(a, r.Header); err != nil {
		return nil, err
	}
	a.minChunk = v.MinChunkSize
	return a, nil
}

// verifyPresigned verifies query authentication. payloadOverride, when not
// empty, replaces S3's payload rule (tests use it for the generic SigV4
// suite, which signs the empty-body hash).
func (v *Verifier) verifyPresigned(r *Request, params []queryParam, payloadOverride string) (*Auth, error) {
	p, err := parsePresigned(params)
	if err != nil {
		return nil, err
	}
	if err := v.checkScope(p.cred, p.date, true); err != nil {
		return nil, err
	}
	secret, ok := v.Lookup(p.cred.accessKey)
	if !ok {
		e := clone(ErrInvalidAccessKeyID)
		e.AccessKeyID = p.cred.accessKey
		return nil, e
	}
	now := v.now()
	if p.date.Sub(now) > v.maxSkew() {
		return nil, clone(ErrNotYetValid)
	}
	if now.After(p.date.Add(p.expires)) {
		e := clone(ErrExpired)
		e.Details = []Detail{
			{"X-Amz-Expires", strconv.FormatInt(int64(p.expires/time.Second), 10)},
			{"Expires", p.date.Add(p.expires).UTC().Format(time.RFC3339)},
			{"ServerTime", now.UTC().Format(time.RFC3339)},
		}
		return nil, e
	}
	if err := checkSignedHeaders(r, p.signedHeaders); err != nil {
		return nil, err
	}
	// Payload: X-Amz-Content-Sha256 from the query, else the header, else
	// UNSIGNED-PAYLOAD.
	payload := UnsignedPayload
	if p.hasSHA256 {
		payload = p.contentSHA256
	} else if h := lookupHeader(r.Header, "x-amz-content-sha256"); len(h) > 0 {
		payload = strings.TrimSpace(h[0])
	}
	if err := checkPayloadHash(payload); err != nil {
		return nil, err
	}
	canonPayload := payload
	if payloadOverride != "" {
		canonPayload = payloadOverride
	}
	a := &Auth{
		AccessKey:     p.cred.accessKey,
		PayloadHash:   payload,
		Presigned:     true,
		Signature:     p.signature,
		Time:          p.date,
		Region:        p.cred.scope.region,
		Service:       p.cred.scope.service,
		SignedHeaders: p.signedHeaders,
		amzDate:       p.amzDate,
		scope:         p.cred.scope,
	}
	a.key = v.keys.get(a.AccessKey, secret, a.scope)
	query := appendCanonicalQuery(nil, params, querySignature)
	if err := a.check(r, query, canonPayload, p.signature); err != nil {
		return nil, err
	}
	if err := fillBodyInfo(a, r.Header); err != nil {
		return nil, err
	}
	a.minChunk = v.MinChunkSize
	return a, nil
}

// check computes the request's signature under a's key and compares it with
// the one provided, in constant time.
func (a *Auth) check(r *Request, query []byte, payloadHash, provided string) error {
	canon := appendCanonicalRequest(make([]byte, 0, 512), r.Method, canonicalURI(r.RawPath), query,
		a.SignedHeaders, requestHeaders{r}, payloadHash)
	sts := appendStringToSign(make([]byte, 0, 160), a.amzDate, a.scope, canon)
	want := signature(a.key, sts)
	if hmac.Equal([]byte(want), []byte(provided)) {
		return nil
	}
	e := clone(ErrSignatureDoesNotMatch)
	e.AccessKeyID = a.AccessKey
	e.SignatureProvided = provided
	e.StringToSign = string(sts)
	e.CanonicalRequest = string(canon)
	return e
}
