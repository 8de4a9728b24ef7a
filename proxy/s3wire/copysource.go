package s3wire

import (
	"net/http"
	"net/url"
	"strings"
)

// CopySource is a parsed x-amz-copy-source header.
type CopySource struct {
	Bucket, Key string
	// RawPath is "/bucket/key" encoded canonically (EscapePath): what the
	// proxy sends the store, in paths and in its own x-amz-copy-source, so
	// that the store reads the same key the proxy parsed whatever the
	// client's encoding.
	RawPath   string
	VersionID string
}

// ParseCopySource parses "bucket/key", "/bucket/key" and either with
// "?versionId=", as S3 does: the value is URL-decoded as a form value is
// ("%XX" and "+" for a space; AWS answers NoSuchKey for a raw "+" that
// stands for itself), after "?" is split off, so a key holding "?" must
// send it as "%3F"; any other character may come raw ("&", "=", ":",
// spaces, UTF-8), as rclone sends "&". A bad "%" escape is InvalidArgument.
func ParseCopySource(v string) (*CopySource, error) {
	rawPath, rawQuery, _ := strings.Cut(v, "?")
	path, err := url.QueryUnescape(strings.TrimPrefix(rawPath, "/"))
	if err != nil {
		return nil, InvalidArgument("Invalid copy source encoding")
	}
	bucket, key, _ := strings.Cut(path, "/")
	if bucket == "" || key == "" {
		return nil, InvalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
	}
	cs := &CopySource{Bucket: bucket, Key: key, RawPath: EscapePath(bucket, key)}
	if rawQuery != "" {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return nil, InvalidArgument("Invalid copy source version")
		}
		cs.VersionID = q.Get("versionId")
	}
	return cs, nil
}

// Header is the x-amz-copy-source to send the store.
func (cs *CopySource) Header() string {
	if cs.VersionID == "" {
		return cs.RawPath
	}
	return cs.RawPath + "?" + cs.Query()
}

// Query is the store query that reads the source version.
func (cs *CopySource) Query() string {
	if cs.VersionID == "" {
		return ""
	}
	return "versionId=" + url.QueryEscape(cs.VersionID)
}

// CopySourceError is the error for a copy source the store answered
// status for.
func CopySourceError(status int) *Error {
	if status == http.StatusNotFound {
		return ErrNoSuchKey
	}
	return StatusError(status)
}

// CheckCopyConditions evaluates x-amz-copy-source-if-* against the source
// version the proxy read, store ETag storeTag and sealed ETag sealed
// (envelope.Meta.ETag; the condition may name either ETag clients are
// shown for it). A copy fails on any of them, with 412.
func CheckCopyConditions(h http.Header, storeTag, sealed, lastModified string) error {
	if failed, notModified := evalConditions(h, copyConditions, versionTags(storeTag, sealed), lastModified); failed || notModified {
		return ErrPreconditionFailed
	}
	return nil
}
