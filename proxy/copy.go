package proxy

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/kms"
	"github.com/valyala/fasthttp"
)

// copySource is a parsed x-amz-copy-source header.
type copySource struct {
	Bucket, Key string
	RawPath     string // "/bucket/key" as the client encoded it
	VersionID   string
}

func parseCopySource(v string) (*copySource, error) {
	rawPath, rawQuery, _ := strings.Cut(v, "?")
	if !strings.HasPrefix(rawPath, "/") {
		rawPath = "/" + rawPath
	}
	t, err := parseTarget(rawPath)
	if err != nil || t.Bucket == "" || t.Key == "" {
		return nil, errInvalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
	}
	cs := &copySource{Bucket: t.Bucket, Key: t.Key, RawPath: rawPath}
	if rawQuery != "" {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return nil, errInvalidArgument("Invalid copy source version")
		}
		cs.VersionID = q.Get("versionId")
	}
	return cs, nil
}

// copyHeadersKept are the stored headers a COPY directive carries over.
// The store is always told REPLACE (the envelope header must change), so
// the proxy re-sends what S3 would have copied.
var copyHeadersKept = []string{
	"Content-Type", "Content-Disposition", "Content-Encoding", "Content-Language",
	"Cache-Control", "Expires", "X-Amz-Website-Redirect-Location",
}

// copyObject re-seals the object key for the destination and lets the
// store copy the ciphertext: no object data passes through the proxy.
func (s *Server) copyObject(r *request) error {
	src, err := parseCopySource(r.header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	// Read the source's envelope header and pin that exact version, so a
	// concurrent overwrite cannot pair our header with other ciphertext.
	srcQuery := ""
	if src.VersionID != "" {
		srcQuery = "versionId=" + url.QueryEscape(src.VersionID)
	}
	head := newOut(http.MethodHead, src.RawPath, srcQuery)
	resp, err := s.up.do(head)
	if err != nil {
		return errInternal(err)
	}
	defer fasthttp.ReleaseResponse(resp)
	if st := resp.StatusCode(); st != http.StatusOK {
		if st == http.StatusNotFound {
			return s3err(http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		}
		return &Error{Status: st, Code: statusCode(st), Message: http.StatusText(st)}
	}
	srcTag := string(resp.Header.Peek("ETag"))
	if err := checkCopyConditions(r.header, srcTag, string(resp.Header.Peek("Last-Modified"))); err != nil {
		return err
	}
	srcHeader := string(resp.Header.Peek(sealHeader))
	obj, meta, err := s.openSealed(r, srcHeader, src.Bucket, src.Key)
	if err != nil {
		return err
	}
	defer obj.Close()
	stored := int64(resp.Header.ContentLength())
	if _, err := obj.PlainSize(meta, stored, srcTag); err != nil {
		return errDecrypt(fmt.Errorf("copy source %s/%s: %w", src.Bucket, src.Key, err))
	}

	directive := strings.ToUpper(r.header.Get("X-Amz-Metadata-Directive"))
	if directive != "" && directive != "COPY" && directive != "REPLACE" {
		return errInvalidArgument("Unknown metadata directive.")
	}
	if directive == "COPY" || directive == "" {
		if src.Bucket == r.t.Bucket && src.Key == r.t.Key && src.VersionID == "" {
			return errInvalidRequest("This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
		}
	}
	out := newOut(http.MethodPut, r.t.RawPath, forwardQuery(r.t.RawQuery))
	copyRequestHeaders(out.Header, r.header)
	if directive == "REPLACE" {
		user, err := userMetadata(r.header)
		if err != nil {
			return err
		}
		meta.User = user
		meta.Headers = sealedContentHeaders(r.header)
	} else {
		for _, h := range copyHeadersKept {
			if v := resp.Header.Peek(h); len(v) > 0 {
				out.Header.Set(h, string(v))
			}
		}
		if obj.Version() < 2 {
			// A version 1 source keeps its content headers at the store;
			// a version 2 copy of it seals them.
			meta.Headers = sealedContentHeaders(out.Header)
		}
	}
	multipart := envelope.PartsInETag(srcTag) > 0
	if multipart || obj.Version() >= 2 {
		// The destination's header is a version 2 one: content headers
		// are sealed, not stored in clear.
		dropContentHeaders(out.Header)
	}
	if multipart {
		rq := &readReq{bucket: src.Bucket, key: src.Key, rawPath: src.RawPath, query: srcQuery}
		return s.copyMultipart(r, rq, resp, obj.Version(), meta, out.Header)
	}
	dk, err := s.newDataKey(r, r.t.Bucket)
	if err != nil {
		return err
	}
	value, err := obj.Reseal(dk.Plaintext, envelope.KeyInfo{KeyID: dk.KeyID, Wrapped: dk.Ciphertext},
		r.t.Bucket, r.t.Key, meta.EncodeFor(obj.Version()))
	kms.Zero(dk.Plaintext)
	if err != nil {
		return sealError(err)
	}
	out.Header.Set(sealHeader, value)
	out.Header.Set("X-Amz-Copy-Source", r.header.Get("X-Amz-Copy-Source"))
	out.Header.Set("X-Amz-Copy-Source-If-Match", srcTag)
	out.Header.Set("X-Amz-Metadata-Directive", "REPLACE")

	cresp, err := s.up.do(out)
	if err != nil {
		return errInternal(fmt.Errorf("upstream copy: %w", err))
	}
	if cresp.StatusCode() != http.StatusOK {
		s.sendUpstream(r, cresp, false)
		return nil
	}
	defer fasthttp.ReleaseResponse(cresp)
	var res copyResult
	body := cresp.Body()
	if bs := cresp.BodyStream(); bs != nil {
		body, err = readAllLimit(bs, maxSmallBody)
		if err != nil {
			return errInternal(err)
		}
	}
	if err := xml.Unmarshal(body, &res); err != nil {
		// S3 can answer 200 with an error document in the body.
		s.relayBody(r, cresp, body)
		return nil
	}
	res.ETag = clientETag(res.ETag)
	res.XMLNS = s3NS
	relayHeaders(&r.ctx.Response.Header, &cresp.Header, true)
	writeXML(r.ctx, http.StatusOK, res)
	return nil
}

const s3NS = "http://s3.amazonaws.com/doc/2006-03-01/"

type copyResult struct {
	XMLName      xml.Name `xml:"CopyObjectResult"`
	XMLNS        string   `xml:"xmlns,attr,omitempty"`
	LastModified string   `xml:"LastModified"`
	ETag         string   `xml:"ETag"`
}

// checkCopyConditions evaluates x-amz-copy-source-if-* against the source
// version the proxy read (S3's order: if-match, if-unmodified-since, then
// if-none-match, if-modified-since).
func checkCopyConditions(h http.Header, storeTag, lastModified string) error {
	tag := clientETag(storeTag)
	if v := h.Get("X-Amz-Copy-Source-If-Match"); v != "" && !etagMatches(v, tag) {
		return errPreconditionFailed
	}
	lm, lmErr := http.ParseTime(lastModified)
	if v := h.Get("X-Amz-Copy-Source-If-Unmodified-Since"); v != "" && h.Get("X-Amz-Copy-Source-If-Match") == "" {
		if t, err := http.ParseTime(v); err == nil && lmErr == nil && lm.After(t) {
			return errPreconditionFailed
		}
	}
	if v := h.Get("X-Amz-Copy-Source-If-None-Match"); v != "" && etagMatches(v, tag) {
		return errPreconditionFailed
	}
	if v := h.Get("X-Amz-Copy-Source-If-Modified-Since"); v != "" && h.Get("X-Amz-Copy-Source-If-None-Match") == "" {
		if t, err := http.ParseTime(v); err == nil && lmErr == nil && !lm.After(t) {
			return errPreconditionFailed
		}
	}
	return nil
}

func etagMatches(cond, tag string) bool {
	tag = strings.Trim(tag, `"`)
	for _, c := range strings.Split(cond, ",") {
		c = strings.Trim(strings.TrimPrefix(strings.TrimSpace(c), "W/"), `"`)
		if c == "*" || c == tag {
			return true
		}
	}
	return false
}
