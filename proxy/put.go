package proxy

import (
	"fmt"
	"io"
	"net/http"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/s3seal/s3seal/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// putObject encrypts the client's body on its way to the store.
func (s *Server) putObject(r *request) error {
	plainLen, err := plainLength(r)
	if err != nil {
		return err
	}
	if plainLen > s.cfg.MaxObjectSize {
		return s3wire.ErrEntityTooLarge
	}
	user, err := s3wire.UserMetadata(r.header)
	if err != nil {
		return err
	}
	// A Content-MD5 is verified over the body before it can complete, so
	// it is the plaintext's once the upload succeeds.
	meta := &envelope.Meta{Size: plainLen, User: user, MD5: r.auth.ContentMD5, Headers: s3wire.SealedContentHeaders(r.header)}
	if alg := r.auth.ChecksumAlgorithm; alg != "" {
		meta.Checksum = map[string]string{alg: r.auth.ChecksumValue}
	}
	body, err := clientBody(r, plainLen)
	if err != nil {
		return err
	}
	obj, err := s.sealNew(r, envelope.LayoutSingle, meta)
	if err != nil {
		return err
	}
	defer obj.Close()

	out := r.outbound(http.MethodPut)
	s3wire.DropContentHeaders(out.Header)
	out.Header.Set(s3wire.SealHeader, obj.HeaderValue())
	s.resolveIfMatch(r, out)
	encrypt := func(src io.Reader) io.Reader { return obj.EncryptReader(src, plainLen) }
	resp, err := s.sendEncrypted(r, out, body, encrypt, envelope.CiphertextSize(plainLen))
	if err != nil {
		return err
	}
	if resp.StatusCode() != http.StatusOK {
		s.sendUpstream(r, resp, false)
		return nil
	}
	r.ctx.SetStatusCode(http.StatusOK)
	relayHeaders(&r.ctx.Response.Header, &resp.Header, true)
	r.ctx.Response.Header.Set("ETag", s3wire.ClientETag(string(resp.Header.Peek("ETag"))))
	echoChecksums(r, body)
	r.echoSSE()
	resp.CloseBodyStream()
	fasthttp.ReleaseResponse(resp)
	return nil
}

// sendEncrypted sends out with body src encrypted by encrypt into exactly n
// bytes. A failure of the client's body (a bad checksum, a short body, a
// vanished client) cuts the upstream request short, so the store keeps
// nothing, and is reported as the client's error; the errors are recorded
// at the source, so a failing store is not blamed on the client. The
// encrypting reader goes to the client unwrapped: fasthttp uses its
// WriteTo, which seals segments in place and writes them straight out.
func (s *Server) sendEncrypted(r *request, out *upstream.Request, src io.Reader, encrypt func(io.Reader) io.Reader, n int64) (*fasthttp.Response, error) {
	rec := &errRecorder{r: src}
	out.Body, out.BodyLen = encrypt(rec), n
	resp, err := s.up.Do(out)
	if bodyErr := rec.Err(); bodyErr != nil {
		if resp != nil {
			fasthttp.ReleaseResponse(resp)
		}
		r.ctx.SetConnectionClose()
		return nil, bodyError(bodyErr)
	}
	if err != nil {
		return nil, s3wire.Internal(fmt.Errorf("upstream %s: %w", r.op, err))
	}
	return resp, nil
}
