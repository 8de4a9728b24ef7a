package proxy

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/envelope"
	"github.com/valyala/fasthttp"
)

// copyMultipart copies a multipart object without passing its data
// through the proxy: a new upload at the destination gets the source's
// stored parts byte for byte (UploadPartCopy at the store), so the copy
// keeps the part count its size is computed from. The parts stay sealed
// to the path they were first written to, which the new object's sealed
// metadata records as its origin.
func (s *Server) copyMultipart(r *request, src *readReq, srcTag string, stored int64, parts int, meta *sealedMeta, hdr http.Header) error {
	layout, err := s.exactLayout(src, srcTag, stored, parts)
	if err != nil {
		return err
	}
	ob, ok := meta.partsPath(src.bucket, src.key)
	meta.Origin = &objectPath{Bucket: ob, Key: ok}
	meta.Size = -1
	obj, err := s.sealNew(r, envelope.LayoutMultipart, meta)
	if err != nil {
		return err
	}
	defer obj.Close()

	create := newOut(http.MethodPost, r.t.RawPath, "uploads")
	for k, v := range hdr {
		switch k {
		case "X-Amz-Metadata-Directive", "X-Amz-Tagging-Directive", "X-Amz-Copy-Source-If-Match":
			continue
		}
		create.Header[k] = v
	}
	create.Header.Set(sealHeader, obj.HeaderValue())
	var init struct {
		UploadID string `xml:"UploadId"`
	}
	if err := s.doXML(create, &init); err != nil {
		return err
	}
	uploadID := url.QueryEscape(init.UploadID)
	abort := func() {
		if resp, err := s.up.do(newOut(http.MethodDelete, r.t.RawPath, "uploadId="+uploadID)); err == nil {
			fasthttp.ReleaseResponse(resp)
		}
	}
	source := src.rawPath
	if src.query != "" {
		source += "?" + src.query
	}
	var done completeUpload
	for i := range layout.lens {
		from := layout.storedStart[i]
		to := from + envelope.PartCiphertextSize(layout.lens[i]) - 1
		pc := newOut(http.MethodPut, r.t.RawPath, "partNumber="+strconv.Itoa(i+1)+"&uploadId="+uploadID)
		pc.Header.Set("X-Amz-Copy-Source", source)
		pc.Header.Set("X-Amz-Copy-Source-Range", fmt.Sprintf("bytes=%d-%d", from, to))
		pc.Header.Set("X-Amz-Copy-Source-If-Match", srcTag)
		var res struct {
			ETag string `xml:"ETag"`
		}
		if err := s.doXML(pc, &res); err != nil {
			abort()
			return err
		}
		done.Parts = append(done.Parts, completePart{PartNumber: i + 1, ETag: res.ETag})
	}
	body, _ := xml.Marshal(done)
	complete := newOut(http.MethodPost, r.t.RawPath, "uploadId="+uploadID)
	complete.Body, complete.BodyLen = strings.NewReader(string(body)), int64(len(body))
	var result struct {
		ETag string `xml:"ETag"`
	}
	if err := s.doXML(complete, &result); err != nil {
		abort()
		return err
	}
	writeXML(r.ctx, http.StatusOK, copyResult{XMLNS: s3NS, ETag: clientETag(result.ETag),
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
	resp, err := s.up.do(out)
	if err != nil {
		return errInternal(err)
	}
	defer fasthttp.ReleaseResponse(resp)
	body := resp.Body()
	if bs := resp.BodyStream(); bs != nil {
		if body, err = readAllLimit(bs, maxSmallBody); err != nil {
			return errInternal(err)
		}
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
		return &Error{Status: st, Code: e.Code, Message: e.Message}
	}
	if resp.StatusCode() != http.StatusOK {
		return &Error{Status: resp.StatusCode(), Code: statusCode(resp.StatusCode()), Message: http.StatusText(resp.StatusCode())}
	}
	if err := xml.Unmarshal(body, v); err != nil {
		return errInternal(fmt.Errorf("store answer to %s %s: %w", out.Method, out.RawPath, err))
	}
	return nil
}
