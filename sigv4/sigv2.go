package sigv4

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AWS Signature Version 2 (HMAC-SHA1), S3 flavour, as in "Signing and
// authenticating REST requests (AWS signature version 2)" of the S3 API
// reference. Two forms:
//
//	Authorization: AWS <AccessKeyId>:<base64 HMAC-SHA1>
//	?AWSAccessKeyId=<id>&Expires=<unix seconds>&Signature=<url-encoded base64>
//
// The string to sign is
//
//	Method \n Content-MD5 \n Content-Type \n Date-or-Expires \n
//	(x-amz-name:value \n)* CanonicalizedResource
//
// with the choices below where S3's documentation leaves room:
//   - Content-MD5 and Content-Type are the header values trimmed; for query
//     authentication a content-md5 / content-type query parameter stands in
//     for an absent header (botocore puts the headers it signed there).
//   - x-amz-* headers: names lower-cased and sorted, the values of one name
//     trimmed and joined with ',', folded lines unfolded (CR/LF and the white
//     space around them become one space); inner spaces are kept. For query
//     authentication an x-amz-* query parameter stands in for an absent header
//     of that name (botocore signs x-amz-security-token and x-amz-meta-* as
//     headers, then moves them there, so S3 must read them from the query). A
//     header of the same name wins: whoever applies such parameters as
//     headers must let a sent header win too.
//   - Header authentication dates the request by x-amz-date when present and
//     then signs an empty Date line (x-amz-date is among the x-amz-* headers),
//     as the documentation's text, boto, s3cmd and the Java SDK do. The
//     documentation's own DELETE example signs the x-amz-date value in the Date
//     line instead and leaves it out of the x-amz-* headers: that form is
//     accepted too (it signs the same data).
//   - CanonicalizedResource is "/" + Request.Bucket (virtual-hosted requests)
//     then the path exactly as the client encoded it, then the sub-resources of
//     v2SubResources present in the query, decoded (S3 signs them unencoded),
//     sorted by name: "?acl&versionId=3". A sub-resource without a value, or
//     with an empty one, is signed as its bare name. A path-style request to a
//     bucket ("/bucket", no key) is signed as "/bucket/", as botocore and
//     boto do (and so S3 must); "/bucket" as sent is accepted too (MinIO's
//     choice).
//   - Signatures are compared as decoded bytes in constant time; a '+' that
//     arrived unencoded in the query (decoded as a space) is read back as '+'.
//   - The payload is not signed: Auth.PayloadHash is UNSIGNED-PAYLOAD unless
//     the client sent (and so signed) an x-amz-content-sha256 hash, which Body
//     then verifies, as it verifies Content-MD5 and x-amz-checksum-*.
//   - A query-authenticated URL may expire at most MaxV2Expiry (7 days, V4's
//     limit) plus MaxSkew after the request: S3 sets no bound for V2, so a
//     leaked URL would otherwise work for a century. Header authentication
//     is bounded by the Verifier's MaxSkew on its date.
//   - V2 signs only the sub-resources below, so a request carrying any other
//     query parameter that could change the operation (publicAccessBlock,
//     ownershipControls, intelligent-tiering, attributes, ...) is refused
//     (ErrV2UnsignedParameter): added to a signed PUT /bucket, such a
//     parameter would turn it into a configuration write nobody signed.
//     Only pagination and listing parameters, botocore's x-id, and header
//     stand-ins (x-amz-*, Content-Type, Content-MD5) pass.

// v2SubResources are the query parameters that are part of the
// CanonicalizedResource, sorted. It is the union of the lists in S3's
// documentation, botocore (HmacV1Auth.QSAOfInterest) and MinIO
// (cmd/signature-v2.go resourceList): a request signed with any of those
// signers verifies unless it carries a sub-resource that its signer leaves
// out and another includes (botocore omits encryption, legal-hold and
// retention; MinIO omits restore and others; s3cmd omits tagging), where the
// signers cannot all agree with one server anyway. Signing more rather than
// fewer parameters is the safe side: an unsigned sub-resource could be added
// to a presigned URL to turn it into another operation.
var v2SubResources = []string{
	"accelerate", "acl", "analytics", "cors", "defaultObjectAcl", "delete",
	"encryption", "inventory", "legal-hold", "lifecycle", "location", "logging",
	"metrics", "notification", "object-lock", "partNumber", "policy",
	"replication", "requestPayment",
	"response-cache-control", "response-content-disposition", "response-content-encoding",
	"response-content-language", "response-content-type", "response-expires",
	"restore", "retention", "select", "select-type", "storageClass", "tagging",
	"torrent", "uploadId", "uploads", "versionId", "versioning", "versions", "website",
}

func isV2SubResource(name string) bool {
	_, ok := slices.BinarySearch(v2SubResources, name)
	return ok
}

// v2UnsignedParams are the query parameters V2 leaves unsigned that cannot
// change which operation a request is: they page or filter listings, or name
// the operation for logs (botocore's x-id).
var v2UnsignedParams = map[string]bool{
	"prefix": true, "delimiter": true, "marker": true, "max-keys": true, "encoding-type": true,
	"list-type": true, "continuation-token": true, "start-after": true, "fetch-owner": true,
	"allow-unordered": true, "max-parts": true, "part-number-marker": true, "max-uploads": true,
	"key-marker": true, "upload-id-marker": true, "version-id-marker": true, "x-id": true,
}

// MaxV2Expiry bounds how far in the future a Signature V2 presigned URL may
// expire: 7 days, as Signature V4 allows.
const MaxV2Expiry = 7 * 24 * time.Hour

// checkV2Params refuses a V2 request with a query parameter its signature
// does not cover and that could change the operation. x-amz-*, Content-Type
// and Content-MD5 parameters pass: with query authentication they stand in
// for headers and are signed as such, and they name no operation.
func checkV2Params(params []queryParam) error {
	for _, p := range params {
		n := strings.ToLower(p.name)
		switch {
		case isV2SubResource(p.name), v2UnsignedParams[p.name],
			p.name == v2QueryAccessKey, p.name == v2QuerySignature, p.name == v2QueryExpires:
		case strings.HasPrefix(n, "x-amz-") || n == "content-type" || n == "content-md5":
		default:
			e := clone(ErrV2UnsignedParameter)
			e.Details = []Detail{{"Parameter", p.name}}
			return e
		}
	}
	return nil
}

// Signature V2 query parameters.
const (
	v2QueryAccessKey = "AWSAccessKeyId"
	v2QuerySignature = "Signature"
	v2QueryExpires   = "Expires"

	v2Algorithm = "AWS"
)

// Signature V2 errors, as S3 words them.
var (
	ErrV2QueryParams = &Error{Code: "AccessDenied", Status: http.StatusForbidden,
		Message: "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters"}
	ErrV2MalformedHeader = &Error{Code: "InvalidArgument", Status: http.StatusBadRequest,
		Message: "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature"}
	// ErrV2UnsignedParameter: see checkV2Params.
	ErrV2UnsignedParameter = &Error{Code: "AccessDenied", Status: http.StatusForbidden,
		Message: "Signature V2 does not sign the query parameter named here, which could change the operation; sign the request with Signature Version 4."}
	// ErrV2ExpiryTooFar: see MaxV2Expiry.
	ErrV2ExpiryTooFar = &Error{Code: "AccessDenied", Status: http.StatusForbidden,
		Message: "Signature V2 presigned URLs may expire at most 7 days ahead (604800 seconds); sign a shorter expiry or use Signature Version 4."}
)

// isV2Authorization reports whether an Authorization header is of the
// Signature V2 form ("AWS " then anything).
func isV2Authorization(h string) bool {
	return len(h) >= 4 && h[:4] == v2Algorithm+" "
}

// ParseV2Authorization parses a Signature V2 Authorization header value,
// "AWS <AccessKeyId>:<Signature>". Errors are *Error values
// (InvalidArgument, or InvalidRequest for another scheme).
func ParseV2Authorization(h string) (accessKey, signature string, err error) {
	if !isV2Authorization(h) {
		return "", "", clone(ErrUnsupportedAlgorithm)
	}
	rest := strings.TrimSpace(h[len(v2Algorithm)+1:])
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 || i == len(rest)-1 || strings.ContainsAny(rest, " \t") {
		e := clone(ErrV2MalformedHeader)
		e.Details = []Detail{{"ArgumentName", "Authorization"}, {"ArgumentValue", h}}
		return "", "", e
	}
	return rest[:i], rest[i+1:], nil
}

// v2Times are the date formats accepted in Date and x-amz-date (RFC 2616's
// three, RFC 1123 with a numeric zone as in S3's examples, and ISO 8601
// basic, which some clients put in x-amz-date).
var v2Times = []string{
	http.TimeFormat, time.RFC1123Z, time.RFC1123,
	"Mon, 2 Jan 2006 15:04:05 MST", "Mon, 2 Jan 2006 15:04:05 -0700",
	time.RFC850, time.ANSIC, TimeFormat,
}

func parseV2Time(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, f := range v2Times {
		if t, err := time.Parse(f, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// v2Request is what a Signature V2 string to sign is made of.
type v2Request struct {
	method, contentMD5, contentType string
	date                            string // Date line; "" when x-amz-date is present (header auth)
	amzDate                         string // the x-amz-date value, for the documentation's variant
	amz                             []v2Header
	resource                        string
	// altResource, when not "", is the resource of a path-style bucket
	// request as sent ("/bucket"), where resource has the slash S3's SDKs
	// sign ("/bucket/").
	altResource string
}

type v2Header struct {
	name  string // lower case
	value string // canonical value
}

// newV2Request gathers the signed parts of r. query selects query
// authentication: date is then the Expires value, and query parameters fill
// in for absent headers.
func newV2Request(r *Request, params []queryParam, query bool, expires string) *v2Request {
	c := &v2Request{method: r.Method}
	c.contentMD5 = firstHeader(r.Header, "content-md5")
	c.contentType = firstHeader(r.Header, "content-type")

	byName := map[string][]string{}
	for k, vs := range r.Header {
		if len(k) >= 6 && strings.EqualFold(k[:6], "x-amz-") {
			n := strings.ToLower(k)
			byName[n] = append(byName[n], vs...)
		}
	}
	if query {
		fromQuery := map[string][]string{}
		for _, p := range params {
			n := strings.ToLower(p.name)
			switch {
			case len(n) >= 6 && n[:6] == "x-amz-":
				if _, sent := byName[n]; !sent {
					fromQuery[n] = append(fromQuery[n], p.value)
				}
			case n == "content-md5" && c.contentMD5 == "" && lookupHeader(r.Header, n) == nil:
				c.contentMD5 = strings.TrimSpace(p.value)
			case n == "content-type" && c.contentType == "" && lookupHeader(r.Header, n) == nil:
				c.contentType = strings.TrimSpace(p.value)
			}
		}
		for n, vs := range fromQuery {
			byName[n] = vs
		}
		c.date = expires
	} else if d := lookupHeader(r.Header, "x-amz-date"); len(d) > 0 {
		c.amzDate = canonicalV2Value(d)
	} else {
		c.date = firstHeader(r.Header, "date")
	}
	c.amz = make([]v2Header, 0, len(byName))
	for n, vs := range byName {
		c.amz = append(c.amz, v2Header{n, canonicalV2Value(vs)})
	}
	slices.SortFunc(c.amz, func(a, b v2Header) int { return strings.Compare(a.name, b.name) })

	res := make([]byte, 0, len(r.Bucket)+len(r.RawPath)+16)
	if r.Bucket != "" {
		res = append(res, '/')
		res = append(res, r.Bucket...)
	}
	res = append(res, canonicalURI(r.RawPath)...)
	bucketOnly := r.Bucket == "" && len(res) > 1 && bytes.IndexByte(res[1:], '/') < 0
	if bucketOnly {
		res = append(res, '/')
	}
	var subs []queryParam
	for _, p := range params {
		if isV2SubResource(p.name) {
			subs = append(subs, p)
		}
	}
	slices.SortStableFunc(subs, func(a, b queryParam) int { return strings.Compare(a.name, b.name) })
	for i, p := range subs {
		if i == 0 {
			res = append(res, '?')
		} else {
			res = append(res, '&')
		}
		res = append(res, p.name...)
		if p.value != "" {
			res = append(res, '=')
			res = append(res, p.value...)
		}
	}
	c.resource = string(res)
	if bucketOnly {
		c.altResource = c.resource[:len(r.RawPath)] + c.resource[len(r.RawPath)+1:]
	}
	return c
}

func firstHeader(h http.Header, name string) string {
	if v := lookupHeader(h, name); len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

// canonicalV2Value joins the values of one header with ',', each trimmed,
// with folded lines unfolded (a CR or LF and the white space around it
// become one space).
func canonicalV2Value(vs []string) string {
	b := make([]byte, 0, 64)
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		v = strings.TrimSpace(v)
		for j := 0; j < len(v); j++ {
			c := v[j]
			if c != '\r' && c != '\n' {
				b = append(b, c)
				continue
			}
			b = bytes.TrimRight(b, " \t")
			for j+1 < len(v) && strings.IndexByte(" \t\r\n", v[j+1]) >= 0 {
				j++
			}
			b = append(b, ' ')
		}
	}
	return string(b)
}

// stringToSign appends the string to sign. docDate selects the variant of
// S3's DELETE example: the x-amz-date value in the Date line and x-amz-date
// left out of the x-amz-* headers. asSent selects altResource.
func (c *v2Request) stringToSign(dst []byte, docDate, asSent bool) []byte {
	dst = append(dst, c.method...)
	dst = append(dst, '\n')
	dst = append(dst, c.contentMD5...)
	dst = append(dst, '\n')
	dst = append(dst, c.contentType...)
	dst = append(dst, '\n')
	if docDate {
		dst = append(dst, c.amzDate...)
	} else {
		dst = append(dst, c.date...)
	}
	dst = append(dst, '\n')
	for _, h := range c.amz {
		if docDate && h.name == "x-amz-date" {
			continue
		}
		dst = append(dst, h.name...)
		dst = append(dst, ':')
		dst = append(dst, h.value...)
		dst = append(dst, '\n')
	}
	if asSent {
		return append(dst, c.altResource...)
	}
	return append(dst, c.resource...)
}

// SignV2 returns the base64 HMAC-SHA1 of a Signature V2 string to sign.
func SignV2(secret string, stringToSign []byte) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write(stringToSign)
	var sum [sha1.Size]byte
	return base64.StdEncoding.EncodeToString(m.Sum(sum[:0]))
}

// StringToSignV2 returns the Signature V2 string to sign of r: for header
// authentication when expires is "", else for query authentication with that
// Expires value.
func StringToSignV2(r *Request, expires string) string {
	params := parseQuery(r.RawQuery)
	return string(newV2Request(r, params, expires != "", expires).stringToSign(nil, false, false))
}

// checkV2 compares the provided signature with the request's, in constant
// time, and returns the SignatureDoesNotMatch error S3 gives otherwise.
func checkV2(c *v2Request, accessKey, secret, provided string) error {
	got, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(provided, " ", "+"))
	if err != nil || len(got) != sha1.Size {
		got = nil
	}
	sts := c.stringToSign(make([]byte, 0, 256), false, false)
	match := func(sts []byte) bool {
		m := hmac.New(sha1.New, []byte(secret))
		m.Write(sts)
		var sum [sha1.Size]byte
		// A malformed signature (got nil) is still compared, and fails.
		return hmac.Equal(m.Sum(sum[:0]), got)
	}
	if match(sts) {
		return nil
	}
	// The variants (see the top of this file) sign the same data.
	for _, docDate := range []bool{false, true} {
		for _, asSent := range []bool{false, true} {
			if (docDate || asSent) && (!docDate || c.amzDate != "") && (!asSent || c.altResource != "") &&
				match(c.stringToSign(nil, docDate, asSent)) {
				return nil
			}
		}
	}
	e := clone(ErrSignatureDoesNotMatch)
	e.AccessKeyID = accessKey
	e.SignatureProvided = provided
	e.StringToSign = string(sts)
	return e
}

// v2Auth builds the Auth of a verified V2 request: the payload is unsigned
// unless the client signed an x-amz-content-sha256 hash.
func (v *Verifier) v2Auth(r *Request, c *v2Request, accessKey, sig string, presigned bool, t time.Time) (*Auth, error) {
	a := &Auth{
		AccessKey:   accessKey,
		PayloadHash: UnsignedPayload,
		Presigned:   presigned,
		Signature:   sig,
		Time:        t,
		Service:     v.service(),
	}
	for _, h := range c.amz {
		a.SignedHeaders = append(a.SignedHeaders, h.name)
		if h.name == "x-amz-content-sha256" {
			if err := checkPayloadHash(h.value); err != nil {
				return nil, err
			}
			if len(h.value) != 64 && h.value != UnsignedPayload {
				// Streaming payloads chain V4 signatures: not with V2.
				return nil, clone(ErrUnsupportedPayload)
			}
			a.PayloadHash = h.value
		}
	}
	if err := fillBodyInfo(a, r.Header); err != nil {
		return nil, err
	}
	a.ContentMD5 = c.contentMD5
	if len(a.Trailers) > 0 {
		// Trailers come with aws-chunked bodies only, which V2 cannot sign.
		return nil, clone(ErrUnsupportedPayload)
	}
	return a, nil
}

// verifyV2Header verifies "Authorization: AWS key:signature".
func (v *Verifier) verifyV2Header(r *Request, authz string, params []queryParam) (*Auth, error) {
	accessKey, sig, err := ParseV2Authorization(authz)
	if err != nil {
		return nil, err
	}
	dateHeader := "date"
	if lookupHeader(r.Header, "x-amz-date") != nil {
		dateHeader = "x-amz-date"
	}
	raw := firstHeader(r.Header, dateHeader)
	t, ok := parseV2Time(raw)
	if !ok {
		return nil, clone(ErrMissingDate)
	}
	secret, ok := v.Lookup(accessKey)
	if !ok {
		e := clone(ErrInvalidAccessKeyID)
		e.AccessKeyID = accessKey
		return nil, e
	}
	now := v.now()
	if d := now.Sub(t); d > v.maxSkew() || -d > v.maxSkew() {
		e := errSkewed(t, now, v.maxSkew())
		e.Details[0].Value = raw // S3 echoes the date as sent
		return nil, e
	}
	c := newV2Request(r, params, false, "")
	if err := checkV2(c, accessKey, secret, sig); err != nil {
		return nil, err
	}
	if err := checkV2Params(params); err != nil {
		return nil, err
	}
	return v.v2Auth(r, c, accessKey, sig, false, t)
}

// verifyV2Query verifies query authentication (AWSAccessKeyId, Expires,
// Signature).
func (v *Verifier) verifyV2Query(r *Request, params []queryParam) (*Auth, error) {
	var accessKey, sig, expires string
	var seen [3]bool
	for _, p := range params {
		var i int
		switch p.name {
		case v2QueryAccessKey:
			i, accessKey = 0, p.value
		case v2QuerySignature:
			i, sig = 1, p.value
		case v2QueryExpires:
			i, expires = 2, p.value
		default:
			continue
		}
		if seen[i] {
			return nil, malformedQuery("Query-string authentication requires exactly one " + p.name + " parameter; it appears more than once.")
		}
		seen[i] = true
	}
	if accessKey == "" || sig == "" || expires == "" {
		return nil, clone(ErrV2QueryParams)
	}
	secs, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || secs < 0 || expires[0] == '+' {
		return nil, &Error{Code: "AccessDenied", Status: http.StatusForbidden,
			Message: "Invalid date (should be seconds since epoch): " + expires}
	}
	secret, ok := v.Lookup(accessKey)
	if !ok {
		e := clone(ErrInvalidAccessKeyID)
		e.AccessKeyID = accessKey
		return nil, e
	}
	exp := time.Unix(secs, 0).UTC()
	now := v.now()
	if now.After(exp) {
		e := clone(ErrExpired)
		e.Details = []Detail{
			{"Expires", exp.Format(time.RFC3339)},
			{"ServerTime", now.UTC().Format(time.RFC3339)},
		}
		return nil, e
	}
	if exp.Sub(now) > MaxV2Expiry+v.maxSkew() {
		e := clone(ErrV2ExpiryTooFar)
		e.Details = []Detail{{"Expires", exp.Format(time.RFC3339)}, {"ServerTime", now.UTC().Format(time.RFC3339)}}
		return nil, e
	}
	c := newV2Request(r, params, true, expires)
	if err := checkV2(c, accessKey, secret, sig); err != nil {
		return nil, err
	}
	// Only a request signed as it is learns that V2 leaves one of its
	// parameters unsigned; a tampered one is a signature mismatch.
	if err := checkV2Params(params); err != nil {
		return nil, err
	}
	return v.v2Auth(r, c, accessKey, sig, true, exp)
}
