package proxy

import (
	"net/http"
	"net/url"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/s3seal/s3seal/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// The sealed multipart ETag (envelope.Meta.ETag, s3wire.ObjectETag) lives
// in the object's header, which the store does not read: where the proxy
// answers without opening the header anyway, or forwards a condition that
// may name it, it reads the header here.

// shownETag is the ETag clients see for the object whose store response
// headers are h: a multipart object's header is opened for its sealed
// ETag. Anything that fails shows the store's ETag (ClientETag), as an
// object without a sealed ETag has: this only names the object, and every
// read of its data checks the header in full.
func (s *Server) shownETag(r *request, h *fasthttp.ResponseHeader, bucket, key string) string {
	storeTag := string(h.Peek("ETag"))
	headerValue := string(h.Peek(s3wire.SealHeader))
	if envelope.PartsInETag(storeTag) == 0 || headerValue == "" {
		return s3wire.ClientETag(storeTag)
	}
	obj, meta, err := s.openSealed(r, headerValue, bucket, key)
	if err != nil {
		return s3wire.ClientETag(storeTag)
	}
	obj.Close()
	return s3wire.ObjectETag(storeTag, meta.ETag)
}

// headETag HEADs an object version (query: "" or versionId=...) at the
// store and returns its store ETag and the ETag clients see; both "" if
// the store does not answer 200.
func (s *Server) headETag(r *request, rawPath, query string) (string, string) {
	resp, err := s.up.Do(upstream.NewRequest(http.MethodHead, rawPath, query))
	if err != nil {
		return "", ""
	}
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != http.StatusOK {
		return "", ""
	}
	return string(resp.Header.Peek("ETag")), s.shownETag(r, &resp.Header, r.t.Bucket, r.t.Key)
}

// resolveIfMatch maps an If-Match on a write (PutObject,
// CompleteMultipartUpload) that names the sealed ETag of the object now at
// the key to that object's store ETag, so that the store evaluates the
// condition against the very version the client named, atomically with
// the write: a write that lands between this HEAD and the request makes
// the store answer 412, as S3 would have. Any other If-Match is left to the
// store as it is.
func (s *Server) resolveIfMatch(r *request, out *upstream.Request) {
	v := r.header.Get("If-Match")
	if !s3wire.NamesMultipartETag(v) {
		return
	}
	storeTag, shown := s.headETag(r, r.t.RawPath, "")
	if storeTag == "" || shown == s3wire.ClientETag(storeTag) {
		return
	}
	if s3wire.ETagListNames(v, shown) {
		out.Header.Set("If-Match", storeTag)
	}
}

// versionQuery is the store query naming one version of an object.
func versionQuery(version string) string {
	if version == "" {
		return ""
	}
	return "versionId=" + url.QueryEscape(version)
}
