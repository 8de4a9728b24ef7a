package proxy

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"io"
	"net/http"
	"strings"

	"github.com/valyala/fasthttp"
)

// maxSmallBody bounds request bodies that are configuration rather than
// object data (DeleteObjects lists, bucket policies, tagging, ...); they are
// read whole so their integrity can be checked before anything is sent.
const maxSmallBody = 4 << 20

// dropRequestHeaders are client headers never forwarded as they are: they
// authenticate or describe the client's request, not the upstream one.
var dropRequestHeaders = map[string]bool{
	"Authorization": true, "Host": true, "Content-Length": true, "Content-Md5": true,
	"Connection": true, "Keep-Alive": true, "Transfer-Encoding": true, "Te": true, "Trailer": true,
	"Upgrade": true, "Expect": true, "Proxy-Authorization": true, "Proxy-Connection": true,
	"User-Agent": true, "Accept-Encoding": true, "Range": true,
	"X-Amz-Content-Sha256": true, "X-Amz-Date": true, "X-Amz-Decoded-Content-Length": true,
	"X-Amz-Trailer": true, "X-Amz-Sdk-Checksum-Algorithm": true, "X-Amz-Security-Token": true,
	"X-Amz-Checksum-Algorithm": true, "X-Amz-Checksum-Type": true, "X-Amz-Checksum-Mode": true,
	"X-Amz-User-Agent": true, "Amz-Sdk-Invocation-Id": true, "Amz-Sdk-Request": true,
	"X-Amz-Copy-Source": true,
}

// forwardable reports whether a client header may be copied upstream.
func forwardable(k string) bool {
	if dropRequestHeaders[k] {
		return false
	}
	switch {
	case strings.HasPrefix(k, "X-Amz-Checksum-"),
		strings.HasPrefix(k, "X-Amz-Server-Side-Encryption"),
		strings.HasPrefix(k, userMetaPrefix),
		strings.HasPrefix(k, "X-Amz-Copy-Source-"):
		return false
	case strings.HasPrefix(k, "X-Amz-"):
		return true
	}
	switch k {
	case "Content-Type", "Content-Disposition", "Content-Language", "Cache-Control", "Expires",
		"If-Modified-Since", "If-Unmodified-Since", "Accept":
		return true
	}
	return false
}

// copyRequestHeaders copies the forwardable client headers to out, mapping
// ETags in conditions and removing aws-chunked from Content-Encoding.
func copyRequestHeaders(out http.Header, in http.Header) {
	for k, vs := range in {
		switch k {
		case "If-Match", "If-None-Match":
			out[k] = []string{storeETagList(strings.Join(vs, ", "))}
			continue
		case "Content-Encoding":
			if enc := stripAWSChunked(strings.Join(vs, ",")); enc != "" {
				out[k] = []string{enc}
			}
			continue
		}
		if forwardable(k) {
			out[k] = append([]string(nil), vs...)
		}
	}
}

func stripAWSChunked(v string) string {
	var kept []string
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if p != "" && !strings.EqualFold(p, "aws-chunked") {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, ",")
}

// dropResponseHeaders are upstream response headers the client never sees
// as they are.
var dropResponseHeaders = map[string]bool{
	"Content-Length": true, "Connection": true, "Keep-Alive": true, "Transfer-Encoding": true,
	"Server": true, "X-Amz-Request-Id": true, "X-Amz-Id-2": true, "Strict-Transport-Security": true,
	"X-Content-Type-Options": true, "X-Xss-Protection": true, "Vary": true,
	"X-Ratelimit-Limit": true, "X-Ratelimit-Remaining": true, "Accept-Ranges": true,
}

// relayHeaders copies upstream response headers to the client, except
// hop-by-hop ones and (when sealed) anything describing the ciphertext.
func relayHeaders(dst *fasthttp.ResponseHeader, src *fasthttp.ResponseHeader, sealed bool) {
	for k, v := range src.All() {
		key := http.CanonicalHeaderKey(string(k))
		if dropResponseHeaders[key] {
			continue
		}
		if sealed {
			switch {
			case strings.HasPrefix(key, userMetaPrefix),
				strings.HasPrefix(key, "X-Amz-Checksum-"),
				strings.HasPrefix(key, "X-Amz-Server-Side-Encryption"),
				key == "Content-Range", key == "Etag", key == "Content-Md5":
				continue
			}
		} else if key == "Etag" {
			dst.Set("ETag", clientETag(string(v)))
			continue
		}
		dst.Add(key, string(v))
	}
}

// relay forwards a request with the given small body (or none) and streams
// the store's answer back unchanged apart from hop-by-hop headers.
func (s *Server) relay(r *request, body []byte) error {
	out := newOut(string(r.ctx.Method()), r.t.RawPath, forwardQuery(r.t.RawQuery))
	copyRequestHeaders(out.Header, r.header)
	if body != nil {
		out.Body = bytes.NewReader(body)
		out.BodyLen = int64(len(body))
		sum := md5.Sum(body)
		out.Header.Set("Content-Md5", base64.StdEncoding.EncodeToString(sum[:]))
	}
	resp, err := s.up.do(out)
	if err != nil {
		return errInternal(err)
	}
	s.sendUpstream(r, resp, false)
	return nil
}

// sendUpstream hands an upstream response to the client as it is. It
// takes ownership of resp.
func (s *Server) sendUpstream(r *request, resp *fasthttp.Response, sealed bool) {
	ctx := r.ctx
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
	ctx.SetBodyStream(&upstreamBody{resp: resp}, resp.Header.ContentLength())
}

// upstreamBody streams an upstream response body to the client and
// releases the upstream response once the client side is done with it.
type upstreamBody struct {
	resp *fasthttp.Response
	r    io.Reader
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	if b.r == nil {
		b.r = b.resp.BodyStream()
		if b.r == nil {
			b.r = bytes.NewReader(b.resp.Body())
		}
	}
	return b.r.Read(p)
}

func (b *upstreamBody) Close() error {
	if b.resp != nil {
		b.resp.CloseBodyStream()
		fasthttp.ReleaseResponse(b.resp)
		b.resp = nil
	}
	return nil
}

// relaySmallBody forwards a request whose body is configuration, after
// reading it whole (bounded) and checking its payload hash and Content-MD5.
func (s *Server) relaySmallBody(r *request) error {
	body, err := s.readSmallBody(r)
	if err != nil {
		return err
	}
	return s.relay(r, body)
}

func (s *Server) readSmallBody(r *request) ([]byte, error) {
	n := r.ctx.Request.Header.ContentLength()
	decoded, err := plainLength(r)
	if err != nil {
		if n <= 0 {
			return nil, nil
		}
		return nil, err
	}
	if decoded > maxSmallBody {
		return nil, errEntityTooLarge
	}
	if decoded <= 0 && n <= 0 {
		return nil, nil
	}
	body, err := clientBody(r, decoded)
	if err != nil {
		return nil, err
	}
	buf, err := io.ReadAll(io.LimitReader(body, maxSmallBody+1))
	if err != nil {
		return nil, bodyError(err)
	}
	return buf, nil
}
