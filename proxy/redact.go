package proxy

import (
	"net/url"
	"strings"

	"github.com/s3seal/s3seal/proxy/s3wire"
)

// secretParams are the query parameters of a presigned URL whose values
// must not reach a log: a signature lets whoever reads it replay the
// request until it expires, and a session token is a credential.
// Compared case-insensitively.
var secretParams = []string{
	"X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", // V4
	"Signature", "AWSAccessKeyId", // V2
}

// redactURI returns a request URI for the log, with the values of
// secretParams replaced by REDACTED, and the object key a write-only
// upload id carries (s3wire.RedactUploadID) too. The rest stays as the
// client sent it.
func redactURI(uri string) string {
	path, query, ok := strings.Cut(uri, "?")
	if !ok {
		return uri
	}
	params := strings.Split(query, "&")
	changed := false
	for i, p := range params {
		name, _, _ := strings.Cut(p, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		if name == "uploadId" {
			raw, value, _ := strings.Cut(p, "=")
			if v, err := url.QueryUnescape(value); err == nil {
				if red, ok := s3wire.RedactUploadID(v); ok {
					params[i] = raw + "=" + url.QueryEscape(red)
					changed = true
				}
			}
			continue
		}
		for _, s := range secretParams {
			if strings.EqualFold(name, s) {
				params[i] = p[:strings.IndexByte(p+"=", '=')] + "=REDACTED"
				changed = true
				break
			}
		}
	}
	if !changed {
		return uri
	}
	return path + "?" + strings.Join(params, "&")
}
