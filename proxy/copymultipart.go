package proxy

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"

	"github.com/s3seal/s3seal/envelope"
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
	srcTag, srcHeader := string(head.Header.Peek("ETag")), string(head.Header.Peek(sealHeader))
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
			return errDecrypt(err)
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
	create.Set(sealHeader, obj.HeaderValue())
	if !strings.EqualFold(hdr.Get("X-Amz-Tagging-Directive"), "REPLACE") {
		create.Del("X-Amz-Tagging")
		if err := s.copyTags(create, head, src); err != nil {
			return err
		}
	}
	tag, version, err := s.copyParts(r.t.RawPath, create, src, srcTag, pm)
	if err != nil {
		return err
	}
	if version != "" {
		r.ctx.Response.Header.Set("X-Amz-Version-Id", version)
	}
	writeXML(r.ctx, http.StatusOK, copyResult{XMLNS: s3NS, ETag: clientETag(tag),
		LastModified: s.cfg.Now().UTC().Format("2006-01-02T15:04:05.000Z")})
	return nil
}

type completeUpload struct {
	XMLName xml.Name       `xml:"CompleteMultipartUpload"`
	Parts   []completePart `xml:"Part"`
}

type completePart struct {
	PartNumber int    `xml:"PartNumber"`
	ETag       string `xml:"ETag"`
}

// doXML sends an upstream request whose answer is a small XML document and
// decodes it into v. Store errors come back as S3 errors for the client.
func (s *Server) doXML(out *outRequest, v any) error {
	resp, err := s.doXMLResp(out, v)
	if err == nil {
		fasthttp.ReleaseResponse(resp)
	}
	return err
}

// doXMLResp is doXML that also returns the response, for its headers; the
// caller releases it. On error there is no response to release.
func (s *Server) doXMLResp(out *outRequest, v any) (*fasthttp.Response, error) {
	resp, err := s.up.do(out)
	if err != nil {
		return nil, errInternal(err)
	}
	body := resp.Body()
	if bs := resp.BodyStream(); bs != nil {
		if body, err = readAllLimit(bs, maxSmallBody); err != nil {
			fasthttp.ReleaseResponse(resp)
			return nil, errInternal(err)
		}
	}
	fail := func(err error) (*fasthttp.Response, error) {
		fasthttp.ReleaseResponse(resp)
		return nil, err
	}
	var e struct {
		XMLName xml.Name
		Code    string
		Message string
	}
	if xml.Unmarshal(body, &e) == nil && e.XMLName.Local == "Error" {
		st := resp.StatusCode()
		if st < 400 {
			st = http.StatusInternalServerError // S3 can answer 200 with an error document
		}
		return fail(&Error{Status: st, Code: e.Code, Message: e.Message})
	}
	if st := resp.StatusCode(); st != http.StatusOK {
		return fail(&Error{Status: st, Code: statusCode(st), Message: http.StatusText(st)})
	}
	if err := xml.Unmarshal(body, v); err != nil {
		return fail(errInternal(fmt.Errorf("store answer to %s %s: %w", out.Method, out.RawPath, err)))
	}
	return resp, nil
}
