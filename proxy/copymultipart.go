package proxy

import (
	"net/http"
	"strings"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/valyala/fasthttp"
)

// copyMultipart copies a multipart object without passing its data
// through the proxy: the destination gets the source's stored parts byte
// for byte (copyParts), so the copy keeps the part count its size is
// computed from. The parts stay sealed to the path and upload they were
// first written to, which the new object's sealed metadata records (Origin,
// Upload), together with the source's manifest: the parts are the same
// bytes. A version 1 source has no manifest; its copy gets one, made from
// the part headers read here, so the copy's set of parts is bound too.
func (s *Server) copyMultipart(r *request, src *readReq, head *fasthttp.Response, srcVersion int, meta *envelope.Meta, hdr http.Header) error {
	srcTag, srcHeader := string(head.Header.Peek("ETag")), string(head.Header.Peek(s3wire.SealHeader))
	stored := int64(head.Header.ContentLength())
	pm, err := s.partMap(src, srcTag, srcHeader, stored, srcVersion, meta)
	if err != nil {
		return err
	}
	ob, ok := meta.PartsPath(src.bucket, src.key)
	meta.Origin = &envelope.Path{Bucket: ob, Key: ok}
	meta.Size = -1
	if meta.Manifest == nil {
		if meta.Manifest, err = pm.Manifest(meta.Upload); err != nil {
			return s3wire.Damaged(err)
		}
	}
	obj, err := s.sealNew(r, envelope.LayoutMultipart, meta)
	if err != nil {
		return err
	}
	defer obj.Close()
	create := http.Header{}
	for k, v := range hdr {
		switch k {
		case "X-Amz-Metadata-Directive", "X-Amz-Tagging-Directive", "X-Amz-Copy-Source-If-Match":
			continue
		}
		create[k] = v
	}
	create.Set(s3wire.SealHeader, obj.HeaderValue())
	if !strings.EqualFold(hdr.Get("X-Amz-Tagging-Directive"), "REPLACE") {
		create.Del("X-Amz-Tagging")
		if err := s.copyTags(create, head, src); err != nil {
			return err
		}
	}
	tag, version, err := s.copyParts(r.t.RawPath, create, src, srcTag, pm, "")
	if err != nil {
		return err
	}
	if version != "" {
		r.ctx.Response.Header.Set("X-Amz-Version-Id", version)
	}
	res := s3wire.CopyObjectResult{XMLNS: s3wire.NS, ETag: s3wire.ClientETag(tag),
		LastModified: s.cfg.Now().UTC().Format(s3wire.TimeFormat)}
	res.Set(meta.Checksum, checksumType(meta))
	writeXML(r.ctx, http.StatusOK, res)
	r.echoSSE()
	return nil
}
