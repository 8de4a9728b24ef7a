package sigv4

import (
	"strconv"
	"strings"
	"time"
)

// credential is a parsed Credential / X-Amz-Credential value:
// <access-key>/<yyyymmdd>/<region>/<service>/aws4_request.
type credential struct {
	accessKey string
	scope     scope
}

// authFields are the fields every SigV4 variant carries, however it carries
// them (Authorization header or presigned query).
type authFields struct {
	cred          credential
	signedHeaders []string
	signature     string
}

// parseCredential splits a credential. The scope is taken from the right, so
// an access key containing '/' still parses (MinIO allows it). The returned
// error is a reason phrase, to be wrapped in the variant's error code.
func parseCredential(s string) (credential, string) {
	const malformed = "the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"."
	parts := strings.Split(s, "/")
	if len(parts) < 5 {
		return credential{}, malformed
	}
	n := len(parts)
	c := credential{
		accessKey: strings.Join(parts[:n-4], "/"),
		scope:     scope{date: parts[n-4], region: parts[n-3], service: parts[n-2]},
	}
	if c.accessKey == "" || c.scope.region == "" || c.scope.service == "" {
		return credential{}, malformed
	}
	if _, err := time.Parse(dateFormat, c.scope.date); err != nil || len(c.scope.date) != 8 {
		return credential{}, "incorrect date format \"" + c.scope.date + "\". This date in the credential must be in the format \"yyyyMMdd\"."
	}
	if parts[n-1] != terminator {
		return credential{}, "incorrect terminal \"" + parts[n-1] + "\". This endpoint uses \"aws4_request\"."
	}
	return c, ""
}

// parseSignedHeaders splits "a;b;c". Names must be non-empty, lower case
// tokens.
func parseSignedHeaders(s string) ([]string, bool) {
	if s == "" {
		return nil, false
	}
	names := strings.Split(s, ";")
	for _, n := range names {
		if n == "" {
			return nil, false
		}
		for i := 0; i < len(n); i++ {
			c := n[i]
			if 'A' <= c && c <= 'Z' || c <= ' ' || c >= 0x7f || c == ':' || c == ',' {
				return nil, false
			}
		}
	}
	return names, true
}

// ParseAuthorization parses a SigV4 Authorization header value:
//
//	AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=<64 hex>
//
// The three components may come in any order, separated by commas with
// optional spaces; each must appear exactly once. Errors are *Error values
// (AuthorizationHeaderMalformed, or InvalidRequest for other algorithms).
func ParseAuthorization(h string) (Credential, []string, string, error) {
	f, err := parseAuthorization(h)
	if err != nil {
		return Credential{}, nil, "", err
	}
	return f.cred.export(), f.signedHeaders, f.signature, nil
}

// Credential is the public view of a parsed credential.
type Credential struct {
	AccessKey, Date, Region, Service string
}

func (c credential) export() Credential {
	return Credential{c.accessKey, c.scope.date, c.scope.region, c.scope.service}
}

func parseAuthorization(h string) (authFields, error) {
	alg, rest, ok := strings.Cut(h, " ")
	if alg != Algorithm {
		return authFields{}, clone(ErrUnsupportedAlgorithm)
	}
	if !ok {
		return authFields{}, malformedHeader("the authorization header requires three components: Credential, SignedHeaders, and Signature.")
	}
	var f authFields
	var seen [3]bool
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.Trim(part, " ")
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return authFields{}, malformedHeader("the authorization component \"" + part + "\" is malformed.")
		}
		var idx int
		switch k {
		case "Credential":
			idx = 0
			c, reason := parseCredential(v)
			if reason != "" {
				return authFields{}, malformedHeader(reason)
			}
			f.cred = c
		case "SignedHeaders":
			idx = 1
			names, ok := parseSignedHeaders(v)
			if !ok {
				return authFields{}, malformedHeader("the authorization component \"" + part + "\" is malformed.")
			}
			f.signedHeaders = names
		case "Signature":
			idx = 2
			f.signature = v
		default:
			return authFields{}, malformedHeader("the authorization component \"" + part + "\" is malformed.")
		}
		if seen[idx] {
			return authFields{}, malformedHeader("the authorization component \"" + k + "\" appears more than once.")
		}
		seen[idx] = true
	}
	if !seen[0] || !seen[1] || !seen[2] {
		return authFields{}, malformedHeader("the authorization header requires three components: Credential, SignedHeaders, and Signature.")
	}
	return f, nil
}

// Presigned query parameter names.
const (
	queryAlgorithm     = "X-Amz-Algorithm"
	queryCredential    = "X-Amz-Credential"
	queryDate          = "X-Amz-Date"
	queryExpires       = "X-Amz-Expires"
	querySignedHeaders = "X-Amz-SignedHeaders"
	querySignature     = "X-Amz-Signature"
	queryContentSHA256 = "X-Amz-Content-Sha256"

	// MaxExpires is the longest validity of a presigned URL: 7 days.
	MaxExpires = 7 * 24 * time.Hour
)

// presigned is a parsed presigned query.
type presigned struct {
	authFields
	date          time.Time
	amzDate       string
	expires       time.Duration
	contentSHA256 string // X-Amz-Content-Sha256 from the query, if any
	hasSHA256     bool
}

// isPresignParam reports whether a query parameter name is one of the
// presigned-auth parameters that must appear at most once.
func isPresignParam(name string) bool {
	switch name {
	case queryAlgorithm, queryCredential, queryDate, queryExpires, querySignedHeaders, querySignature, queryContentSHA256,
		"X-Amz-Security-Token":
		return true
	}
	return false
}

// parsePresigned parses the auth parameters of a presigned query. Errors
// are *Error values with S3's codes and messages
// (AuthorizationQueryParametersError mostly).
func parsePresigned(params []queryParam) (presigned, error) {
	var p presigned
	vals := map[string]string{}
	for _, q := range params {
		if !isPresignParam(q.name) {
			continue
		}
		if _, dup := vals[q.name]; dup {
			return presigned{}, malformedQuery("Query-string authentication requires exactly one " + q.name + " parameter; it appears more than once.")
		}
		vals[q.name] = q.value
	}
	for _, name := range []string{queryAlgorithm, queryCredential, querySignature, queryDate, querySignedHeaders, queryExpires} {
		if _, ok := vals[name]; !ok {
			return presigned{}, malformedQuery("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
		}
	}
	if vals[queryAlgorithm] != Algorithm {
		return presigned{}, malformedQuery("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
	}
	c, reason := parseCredential(vals[queryCredential])
	if reason != "" {
		return presigned{}, malformedQuery("Error parsing the X-Amz-Credential parameter; " + reason)
	}
	p.cred = c
	p.amzDate = vals[queryDate]
	t, err := time.Parse(TimeFormat, p.amzDate)
	if err != nil {
		return presigned{}, malformedQuery("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
	}
	p.date = t
	exp := vals[queryExpires]
	secs, err := strconv.ParseInt(exp, 10, 64)
	switch {
	case err != nil && strings.HasPrefix(exp, "-"):
		return presigned{}, malformedQuery("X-Amz-Expires must be non-negative")
	case err != nil:
		return presigned{}, malformedQuery("X-Amz-Expires should be a number")
	case secs < 0:
		return presigned{}, malformedQuery("X-Amz-Expires must be non-negative")
	case secs > int64(MaxExpires/time.Second):
		return presigned{}, malformedQuery("X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds")
	}
	p.expires = time.Duration(secs) * time.Second
	names, ok := parseSignedHeaders(vals[querySignedHeaders])
	if !ok {
		return presigned{}, malformedQuery("X-Amz-SignedHeaders is malformed.")
	}
	p.signedHeaders = names
	p.signature = vals[querySignature]
	p.contentSHA256, p.hasSHA256 = vals[queryContentSHA256]
	return p, nil
}
