package s3wire

import (
	"net/http"
	"net/url"
	"strings"
)

// CopySource is a parsed x-amz-copy-source header.
type CopySource struct {
	Bucket, Key string
	RawPath     string // "/bucket/key" as the client encoded it
	VersionID   string
}

// ParseCopySource parses "bucket/key", "/bucket/key" and either with
// "?versionId=".
func ParseCopySource(v string) (*CopySource, error) {
	rawPath, rawQuery, _ := strings.Cut(v, "?")
	if !strings.HasPrefix(rawPath, "/") {
		rawPath = "/" + rawPath
	}
	t, err := ParseTarget(rawPath)
	if err != nil || t.Bucket == "" || t.Key == "" {
		return nil, InvalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
	}
	cs := &CopySource{Bucket: t.Bucket, Key: t.Key, RawPath: rawPath}
	if rawQuery != "" {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return nil, InvalidArgument("Invalid copy source version")
		}
		cs.VersionID = q.Get("versionId")
	}
	return cs, nil
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
// version the proxy read (S3's order: if-match, if-unmodified-since, then
// if-none-match, if-modified-since).
func CheckCopyConditions(h http.Header, storeTag, lastModified string) error {
	tag := ClientETag(storeTag)
	if v := h.Get("X-Amz-Copy-Source-If-Match"); v != "" && !etagMatches(v, tag) {
		return ErrPreconditionFailed
	}
	lm, lmErr := http.ParseTime(lastModified)
	if v := h.Get("X-Amz-Copy-Source-If-Unmodified-Since"); v != "" && h.Get("X-Amz-Copy-Source-If-Match") == "" {
		if t, err := http.ParseTime(v); err == nil && lmErr == nil && lm.After(t) {
			return ErrPreconditionFailed
		}
	}
	if v := h.Get("X-Amz-Copy-Source-If-None-Match"); v != "" && etagMatches(v, tag) {
		return ErrPreconditionFailed
	}
	if v := h.Get("X-Amz-Copy-Source-If-Modified-Since"); v != "" && h.Get("X-Amz-Copy-Source-If-None-Match") == "" {
		if t, err := http.ParseTime(v); err == nil && lmErr == nil && !lm.After(t) {
			return ErrPreconditionFailed
		}
	}
	return nil
}
