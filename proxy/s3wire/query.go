package s3wire

import (
	"maps"
	"net/http"
	"net/url"
	"strings"
)

// isHeaderParam reports query parameters that stand in for request headers
// in a presigned URL (botocore's Signature V2 URLs carry Content-Type and
// x-amz-meta-* this way); the verifier signs them, and the proxy treats
// them as the headers they name.
func isHeaderParam(name string) bool {
	n := strings.ToLower(name)
	return n == "content-type" || n == "content-md5" || strings.HasPrefix(n, "x-amz-") && !isAuthParam(name)
}

// isAuthParam reports query parameters that carry the client's presigned
// signature; they are never forwarded upstream.
func isAuthParam(name string) bool {
	switch name {
	case "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
		"X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token",
		"X-Amz-Content-Sha256", "AWSAccessKeyId", "Signature", "Expires":
		return true
	}
	return false
}

// WithHeaderParams is the headers a presigned request means: h, and for
// each header stand-in of its query that h lacks, the header it names (a
// header actually sent wins, as in the verifier). h itself is not changed.
func WithHeaderParams(h http.Header, q url.Values) http.Header {
	var out http.Header // a copy of h, once a stand-in is added
	for k, vs := range q {
		if !isHeaderParam(k) || len(vs) == 0 {
			continue
		}
		name := http.CanonicalHeaderKey(k)
		if h.Get(name) != "" || out.Get(name) != "" {
			continue
		}
		if out == nil {
			out = make(http.Header, len(h)+1)
			maps.Copy(out, h)
		}
		out.Set(name, vs[0])
	}
	if out == nil {
		return h
	}
	return out
}

// ForwardQuery is the client's query without its presigned auth parameters
// and header stand-ins, kept byte for byte otherwise.
func ForwardQuery(rawQuery string) string {
	if rawQuery == "" {
		return ""
	}
	parts := strings.Split(rawQuery, "&")
	kept := parts[:0]
	for _, p := range parts {
		name, _, _ := strings.Cut(p, "=")
		if n, err := url.QueryUnescape(name); err == nil && (isAuthParam(n) || isHeaderParam(n)) {
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "&")
}

// DropParam removes one parameter from a raw query, leaving the rest byte
// for byte.
func DropParam(rawQuery, name string) string {
	parts := strings.Split(rawQuery, "&")
	kept := parts[:0]
	for _, p := range parts {
		if k, _, _ := strings.Cut(p, "="); k != name {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, "&")
}

// SetParam gives every occurrence of parameter name in a raw query the
// value value, leaving the rest byte for byte.
func SetParam(rawQuery, name, value string) string {
	parts := strings.Split(rawQuery, "&")
	for i, p := range parts {
		if k, _, _ := strings.Cut(p, "="); k == name {
			parts[i] = name + "=" + url.QueryEscape(value)
		}
	}
	return strings.Join(parts, "&")
}
