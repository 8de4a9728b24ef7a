package proxy

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/s3seal/s3seal/proxy/upstream"
	"github.com/s3seal/s3seal/sigv4"
	"github.com/valyala/fasthttp"
)

// What the client gets back: the store's answer relayed, or a document of
// the proxy's own, and the headers that say what the proxy verified and
// what protects the object.

// relay serves an operation whose request and answer need no rewriting: it
// forwards the request, with its body only if the operation's Spec says
// the body is configuration (read whole, bounded and verified first), and
// streams the store's answer back unchanged apart from hop-by-hop headers.
func (s *Server) relay(r *request) error {
	var body []byte
	if r.spec.Body == s3wire.BodyConfig {
		var err error
		if body, err = s.readSmallBody(r); err != nil {
			return err
		}
	}
	return s.relayWith(r, body)
}

// relayWith is relay with the request's configuration body already read
// (nil: none).
func (s *Server) relayWith(r *request, body []byte) error {
	out := r.outbound(string(r.ctx.Method()))
	if body != nil {
		setBodyMD5(out, body)
	}
	resp, err := s.up.Do(out)
	if err != nil {
		return s3wire.Internal(err)
	}
	s.sendUpstream(r, resp, false)
	return nil
}

// setBodyMD5 makes body the outbound request's body, with its
// Content-MD5: a body the proxy read (and may have changed) is sent with
// the digest of what it sends.
func setBodyMD5(out *upstream.Request, body []byte) {
	out.Body = bytes.NewReader(body)
	out.BodyLen = int64(len(body))
	sum := md5.Sum(body)
	out.Header.Set("Content-Md5", base64.StdEncoding.EncodeToString(sum[:]))
}

// sendUpstream hands an upstream response to the client as it is. It
// takes ownership of resp.
func (s *Server) sendUpstream(r *request, resp *fasthttp.Response, sealed bool) {
	ctx := r.ctx
	if resp.StatusCode() >= 500 {
		body := s.logStoreError(r, resp)
		defer fasthttp.ReleaseResponse(resp)
		ctx.SetStatusCode(resp.StatusCode())
		relayHeaders(&ctx.Response.Header, &resp.Header, sealed)
		if ctx.IsHead() {
			ctx.Response.SkipBody = true
			return
		}
		ctx.SetBody(body)
		return
	}
	ctx.SetStatusCode(resp.StatusCode())
	relayHeaders(&ctx.Response.Header, &resp.Header, sealed)
	if r.ctx.IsHead() {
		if n := resp.Header.ContentLength(); n >= 0 {
			ctx.Response.Header.SetContentLength(n)
		}
		ctx.Response.SkipBody = true
		resp.CloseBodyStream()
		fasthttp.ReleaseResponse(resp)
		return
	}
	if resp.StatusCode() >= 300 && relayStoreError(r, resp) {
		return
	}
	r.streamBody(upstream.NewReleasingBody(resp), resp.Header.ContentLength())
}

// relayStoreError sends a store's error document as the client's
// (s3wire.StoreErrorDoc: the RequestId of the client's request), and
// reports whether it did; a body that is not one is left to stream.
func relayStoreError(r *request, resp *fasthttp.Response) bool {
	if n := resp.Header.ContentLength(); n > s3wire.MaxSmallBody || n == 0 {
		return false
	}
	body, err := upstream.ReadBody(resp, s3wire.MaxSmallBody)
	doc, ok := s3wire.StoreErrorDoc(body, r.id)
	if err != nil || !ok {
		// Read already: send what was read.
		doc = append([]byte(nil), body...)
	}
	resp.CloseBodyStream()
	fasthttp.ReleaseResponse(resp)
	r.ctx.Response.Header.Del("Content-Length")
	r.ctx.SetBody(doc)
	return true
}

// relayHeaders copies upstream response headers to the client, except
// those s3wire.DropResponseHeader names, with ETags as clients see them.
func relayHeaders(dst *fasthttp.ResponseHeader, src *fasthttp.ResponseHeader, sealed bool) {
	for k, v := range src.All() {
		key := http.CanonicalHeaderKey(string(k))
		switch {
		case s3wire.DropResponseHeader(key, sealed):
		case key == "Etag":
			dst.Set("ETag", s3wire.ClientETag(string(v)))
		default:
			dst.Add(key, string(v))
		}
	}
}

// relayedHeaders is relayHeaders into a map, for an answer built apart
// from the response (keepalive.go).
func relayedHeaders(src *fasthttp.ResponseHeader, sealed bool) map[string]string {
	var h fasthttp.ResponseHeader
	relayHeaders(&h, src, sealed)
	m := map[string]string{}
	for k, v := range h.All() {
		switch string(k) {
		case "Content-Length", "Content-Type", "Date", "Server":
			// the answer's own
		default:
			m[string(k)] = string(v)
		}
	}
	return m
}

// fetchDocument sends a request whose successful answer is an XML document
// the proxy rewrites (listings, copy results, upload ids). It returns the
// response (which the caller releases) and its body, at most limit bytes;
// a store error goes to the client as it is and nil is returned.
func (s *Server) fetchDocument(r *request, out *upstream.Request, limit int64) (*fasthttp.Response, []byte, error) {
	resp, err := s.up.Do(out)
	if err != nil {
		return nil, nil, s3wire.Internal(err)
	}
	if resp.StatusCode() != http.StatusOK {
		s.sendUpstream(r, resp, false)
		return nil, nil, nil
	}
	body, err := upstream.ReadBody(resp, limit)
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		return nil, nil, s3wire.Internal(err)
	}
	return resp, body, nil
}

// writeXML answers with a document of the proxy's own.
func writeXML(ctx *fasthttp.RequestCtx, status int, v any) {
	body, err := xml.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err)) // our own types only
	}
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentType("application/xml")
	ctx.SetBody(append([]byte(xml.Header), body...))
}

// echoChecksums repeats the client's verified checksum (header or trailer)
// in the write response, as S3 does.
func echoChecksums(r *request, body io.Reader) {
	if alg := r.auth.ChecksumAlgorithm; alg != "" {
		r.ctx.Response.Header.Set(alg, r.auth.ChecksumValue)
	}
	if tr, ok := body.(sigv4.TrailerReader); ok {
		for name, vs := range tr.Trailer() {
			if strings.HasPrefix(name, "X-Amz-Checksum-") && len(vs) > 0 {
				r.ctx.Response.Header.Set(strings.ToLower(name), vs[0])
			}
		}
	}
}

// echoSSE adds the SSE headers S3 sends for an SSE-KMS object to a
// successful response; the handler that sealed or opened the object calls
// it once its status is set.
func (r *request) echoSSE() {
	ctx := r.ctx
	if st := ctx.Response.StatusCode(); st < 200 || st > 299 || r.sse.keyID == "" {
		return
	}
	ctx.Response.Header.Set(s3wire.HeaderSSE, r.sse.alg)
	if r.sse.alg == s3wire.SSEKMS {
		ctx.Response.Header.Set(s3wire.HeaderSSEKeyID, r.sse.keyID)
	}
}
