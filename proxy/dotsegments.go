package proxy

import (
	"encoding/xml"
	"net/http"
	"strings"
	"unicode"

	"github.com/s3seal/s3seal/proxy/s3wire"
)

// A store that maps keys to file paths may normalize "a/../b" to "b" or
// "x/../../other/k" to a path in another bucket, which would let a client
// allowed one bucket write, read or delete objects of another. Like MinIO
// (hasBadPathComponent in cmd/generic-handlers.go), the proxy refuses "."
// and ".." segments, split at "/" or "\" and trimmed of white space, in
// object keys, copy sources and DeleteObjects lists, whatever the store,
// unless Config.AllowDotSegments says the store keeps keys literally.

// hasDotSegment reports whether a key or path has a "." or ".." segment.
func hasDotSegment(p string) bool {
	for _, seg := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		seg = strings.TrimFunc(seg, unicode.IsSpace)
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// refuseDotSegments answers a request whose key, copy source or
// DeleteObjects list has a dot segment with MinIO's errors. A DeleteObjects
// request is read here to check its keys, and so also relayed from here
// (done is true).
func (s *Server) refuseDotSegments(r *request) (done bool, err error) {
	if s.cfg.AllowDotSegments {
		return false, nil
	}
	if hasDotSegment(r.t.Key) {
		return false, s3wire.NewError(http.StatusBadRequest, "XMinioInvalidResourceName", `Resource name contains bad components such as ".." or ".".`)
	}
	if src := r.header.Get("X-Amz-Copy-Source"); src != "" && (r.op == s3wire.CopyObject || r.op == s3wire.UploadPartCopy) {
		cs, err := s3wire.ParseCopySource(src)
		if err != nil {
			return false, err
		}
		if hasDotSegment(cs.Key) {
			return false, errInvalidObjectName
		}
	}
	if r.op != s3wire.DeleteObjects {
		return false, nil
	}
	body, err := s.readSmallBody(r)
	if err != nil {
		return true, err
	}
	var list struct {
		Objects []struct{ Key string } `xml:"Object"`
	}
	if xml.Unmarshal(body, &list) == nil {
		for _, o := range list.Objects {
			if hasDotSegment(o.Key) {
				return true, errInvalidObjectName
			}
		}
	}
	return true, s.relayWith(r, body)
}

var errInvalidObjectName = s3wire.NewError(http.StatusBadRequest, "XMinioInvalidObjectName", "Object name contains unsupported characters.")
