package proxy

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/s3seal/s3seal/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// copyObject re-seals the object key for the destination and lets the
// store copy the ciphertext: no object data passes through the proxy.
func (s *Server) copyObject(r *request) error {
	src, err := s3wire.ParseCopySource(r.header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	// Read the source's envelope header and pin that exact version, so a
	// concurrent overwrite cannot pair our header with other ciphertext.
	resp, err := s.up.Do(upstream.NewRequest(http.MethodHead, src.RawPath, src.Query()))
	if err != nil {
		return s3wire.Internal(err)
	}
	defer fasthttp.ReleaseResponse(resp)
	if st := resp.StatusCode(); st != http.StatusOK {
		return s3wire.CopySourceError(st)
	}
	srcTag := string(resp.Header.Peek("ETag"))
	srcHeader := string(resp.Header.Peek(s3wire.SealHeader))
	obj, meta, err := s.openSealed(r, srcHeader, src.Bucket, src.Key)
	if err != nil {
		return err
	}
	defer obj.Close()
	// The conditions may name the source's sealed ETag: they are checked
	// once its header is open.
	if err := s3wire.CheckCopyConditions(r.header, srcTag, meta.ETag, string(resp.Header.Peek("Last-Modified"))); err != nil {
		return err
	}
	stored := int64(resp.Header.ContentLength())
	if _, err := obj.PlainSize(meta, stored, srcTag); err != nil {
		return s3wire.Damaged(fmt.Errorf("copy source %s/%s: %w", src.Bucket, src.Key, err))
	}

	directive := strings.ToUpper(r.header.Get("X-Amz-Metadata-Directive"))
	if directive != "" && directive != "COPY" && directive != "REPLACE" {
		return s3wire.InvalidArgument("Unknown metadata directive.")
	}
	if directive == "COPY" || directive == "" {
		// Copying in place to add a checksum is allowed, as on S3.
		if src.Bucket == r.t.Bucket && src.Key == r.t.Key && src.VersionID == "" && r.header.Get("X-Amz-Checksum-Algorithm") == "" {
			return s3wire.InvalidRequest("This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
		}
	}
	out := r.outbound(http.MethodPut)
	if directive == "REPLACE" {
		user, err := s3wire.UserMetadata(r.header)
		if err != nil {
			return err
		}
		meta.User = user
		meta.Headers = s3wire.SealedContentHeaders(r.header)
	} else {
		for _, h := range s3wire.CopyHeadersKept {
			if v := resp.Header.Peek(h); len(v) > 0 {
				out.Header.Set(h, string(v))
			}
		}
		if obj.Version() < 2 {
			// A version 1 source keeps its content headers at the store;
			// a version 2 copy of it seals them.
			meta.Headers = s3wire.SealedContentHeaders(out.Header)
		}
	}
	if err := s.copyChecksum(r, src, srcTag, meta); err != nil {
		return err
	}
	multipart := envelope.PartsInETag(srcTag) > 0
	if multipart || obj.Version() >= 2 {
		// The destination's header is a version 2 one: content headers
		// are sealed, not stored in clear.
		s3wire.DropContentHeaders(out.Header)
	}
	if multipart {
		rq := &readReq{bucket: src.Bucket, key: src.Key, rawPath: src.RawPath, query: src.Query()}
		return s.copyMultipart(r, rq, resp, obj.Version(), meta, out.Header)
	}
	dk, err := s.newDataKey(r, r.t.Bucket)
	if err != nil {
		return err
	}
	if err := dk.resealable(obj.Version()); err != nil {
		kms.Zero(dk.Plaintext)
		return err
	}
	value, err := obj.Reseal(dk.Plaintext, dk.keyInfo(), r.t.Bucket, r.t.Key, meta.EncodeFor(obj.Version()))
	kms.Zero(dk.Plaintext)
	if err != nil {
		return sealError(err)
	}
	out.Header.Set(s3wire.SealHeader, value)
	out.Header.Set("X-Amz-Copy-Source", src.Header())
	out.Header.Set("X-Amz-Copy-Source-If-Match", srcTag)
	out.Header.Set("X-Amz-Metadata-Directive", "REPLACE")

	// A store copies up to 5 GiB here, which can take longer than
	// clients wait for a first byte (keepalive.go).
	return s.keepAlive(r, func() (*answer, error) {
		var res s3wire.CopyObjectResult
		cresp, err := s.up.DoXMLResp(out, &res)
		if err != nil {
			return nil, err
		}
		defer fasthttp.ReleaseResponse(cresp)
		res.ETag = s3wire.ClientETag(res.ETag)
		res.Clear() // the store's, of the ciphertext
		res.Set(meta.Checksum, checksumType(meta))
		res.XMLNS = s3wire.NS
		return &answer{header: relayedHeaders(&cresp.Header, true), doc: res}, nil
	})
}
