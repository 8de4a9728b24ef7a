package proxy

import (
	"net/http"
	"strings"
	"unicode"

	"github.com/valyala/fasthttp"

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

// refuseDotSegments answers a request whose key or copy source has a dot
// segment with MinIO's errors. A DeleteObjects request is read here to
// check its keys, and so also relayed from here (done is true): the
// objects with a dot segment get a per-object error, the others are
// deleted, as MinIO does.
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
	kept, remaining, refused, err := s3wire.SplitDeleteObjects(body, hasDotSegment)
	if err != nil || len(refused) == 0 {
		if err != nil {
			return true, err
		}
		return true, s.relayWith(r, body)
	}
	// Like MinIO, refuse only the objects with a dot segment, each with an
	// <Error> in the result, and delete the others.
	var doc []byte
	if remaining > 0 {
		out := r.outbound(string(r.ctx.Method()))
		setBodyMD5(out, kept)
		resp, stored, err := s.fetchDocument(r, out, s3wire.MaxListBody)
		if resp == nil {
			return true, err
		}
		defer fasthttp.ReleaseResponse(resp)
		relayHeaders(&r.ctx.Response.Header, &resp.Header, false)
		doc = stored
	}
	doc, err = s3wire.AppendDeleteErrors(doc, refused, "XMinioInvalidObjectName", "Object name contains unsupported characters.")
	if err != nil {
		return true, s3wire.Internal(err)
	}
	r.ctx.SetStatusCode(http.StatusOK)
	r.ctx.Response.Header.SetContentType("application/xml")
	r.ctx.SetBody(doc)
	return true, nil
}

var errInvalidObjectName = s3wire.NewError(http.StatusBadRequest, "XMinioInvalidObjectName", "Object name contains unsupported characters.")
