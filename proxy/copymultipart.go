package proxy

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/s3seal/s3seal/proxy/upstream"
	"github.com/valyala/fasthttp"
	"golang.org/x/sync/errgroup"
)

// copyMultipart copies a multipart object part by part, so that the copy
// keeps the part count its size is computed from.
//
// When every part is sealed under the destination's KMS key, no data passes
// through the proxy: the destination gets the source's stored parts byte
// for byte (copyParts with UploadPartCopy). The parts stay sealed to the
// path and upload they were first written to, which the new object's sealed
// metadata records (Origin, Upload), together with the source's manifest:
// the parts are the same bytes. A version 1 source has no manifest; its copy
// gets one, made from the part headers read here, so the copy's set of parts
// is bound too.
//
// When a part is under another key (a bucket mapped to a key of another
// region or account, or a client naming one with SSE-KMS headers), such a
// copy would keep needing the source's key: it would stop reading when
// that key is disabled, deleted or out of reach. Then every part is
// re-wrapped (FORMAT.md 11.10, as s3seal migrate does): its part key sealed
// under a destination data key for the destination path, in a new part
// header, followed by the source part's segments unchanged.
func (s *Server) copyMultipart(r *request, src *readReq, head *fasthttp.Response, srcVersion int, meta *envelope.Meta, hdr http.Header) error {
	srcTag, srcHeader := string(head.Header.Peek("ETag")), string(head.Header.Peek(s3wire.SealHeader))
	stored := int64(head.Header.ContentLength())
	pm, err := s.partMap(src, srcTag, srcHeader, stored, srcVersion, meta)
	if err != nil {
		return err
	}
	dk, err := s.newDataKey(r, r.t.Bucket)
	if err != nil {
		return err
	}
	defer kms.Zero(dk.Plaintext)
	if err := dk.resealable(srcVersion); err != nil {
		return err
	}
	ki := dk.keyInfo()
	// A source whose parts may be compressed (FORMAT.md 12.2.3) gives a
	// copy whose header says so too: the parts are the same.
	sh, err := envelope.ParseHeader(srcHeader)
	if err != nil {
		return s3wire.Damaged(err)
	}
	cfg := dk.config()
	cfg.Flags |= sh.Flags() & envelope.FlagCompressed
	var resealed []*envelope.PartHeader
	if !partsUnder(pm, dk.KeyID) {
		if resealed, err = s.resealParts(r, src, srcTag, pm, meta, dk.Plaintext, ki); err != nil {
			return err
		}
		rpm, err := envelope.PartMapOf(resealed)
		if err != nil {
			return s3wire.Internal(err)
		}
		// The parts are now sealed to this path, with the source's upload
		// identity, and their headers changed: a new manifest over them.
		meta.Origin = nil
		if meta.Manifest, err = rpm.ManifestFlags(meta.Upload, cfg.Flags); err != nil {
			return s3wire.Internal(err)
		}
	} else {
		ob, ok := meta.PartsPath(src.bucket, src.key)
		meta.Origin = &envelope.Path{Bucket: ob, Key: ok}
		if meta.Manifest == nil {
			if meta.Manifest, err = pm.ManifestFlags(meta.Upload, cfg.Flags); err != nil {
				return s3wire.Damaged(err)
			}
		}
	}
	meta.Size = -1
	obj, err := cfg.NewObject(dk.Plaintext, ki, r.t.Bucket, r.t.Key, envelope.LayoutMultipart, meta.Encode())
	if errors.Is(err, envelope.ErrTooLarge) && meta.ETag != "" {
		// The copy's header may be longer than the source's (another
		// bucket's key): it keeps the store's ETag rather than fail.
		meta.ETag = ""
		obj, err = cfg.NewObject(dk.Plaintext, ki, r.t.Bucket, r.t.Key, envelope.LayoutMultipart, meta.Encode())
	}
	if err != nil {
		return sealError(err)
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
	// Every part is copied at the store, or streamed through the proxy
	// when re-wrapped: long for a large object (keepalive.go).
	return s.keepAlive(r, func() (*answer, error) {
		tag, version, err := s.copyParts(r.t.RawPath, create, src, srcTag, pm, resealed, "")
		if err != nil {
			return nil, err
		}
		a := &answer{}
		if version != "" {
			a.header = map[string]string{"X-Amz-Version-Id": version}
		}
		res := s3wire.CopyObjectResult{XMLNS: s3wire.NS, ETag: s3wire.ObjectETag(tag, meta.ETag),
			LastModified: s.cfg.Now().UTC().Format(s3wire.TimeFormat)}
		res.Set(meta.Checksum, checksumType(meta))
		a.doc = res
		return a, nil
	})
}

// partsUnder reports whether every part of pm is sealed under keyID.
func partsUnder(pm *envelope.PartMap, keyID string) bool {
	for i := range pm.Parts() {
		if !sameKey(pm.KeyID(i), keyID) {
			return false
		}
	}
	return true
}

// resealParts re-wraps every part of the source for the request's path
// under the destination data key dek (ki): it reads each part header (4 KiB
// each, in parallel), checks it against the verified part map, opens it
// with the source's KMS, and seals the same part key anew. It returns the
// new headers in stored order.
func (s *Server) resealParts(r *request, src *readReq, srcTag string, pm *envelope.PartMap, meta *envelope.Meta, dek []byte, ki envelope.KeyInfo) ([]*envelope.PartHeader, error) {
	open := s.partOpener(r, src.bucket, src.key, meta)
	out := make([]*envelope.PartHeader, pm.Parts())
	var g errgroup.Group
	g.SetLimit(copyParallel)
	for i := range pm.Parts() {
		g.Go(func() error {
			_, _, _, off := pm.Part(i)
			ph, err := s.readPartHeader(src, srcTag, off)
			if err != nil {
				return err
			}
			if err := pm.Check(i, ph); err != nil {
				return s3wire.Damaged(fmt.Errorf("copy source %s/%s: %w", src.bucket, src.key, err))
			}
			p, err := open(ph)
			if err != nil {
				return err
			}
			defer p.Close()
			if out[i], err = p.Reseal(dek, ki, r.t.Bucket, r.t.Key); err != nil {
				return s3wire.Internal(fmt.Errorf("re-wrap part %d: %w", ph.PartNumber(), err))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// uploadResealed uploads part pn of the store upload uploadID at dstPath:
// the re-wrapped header nh, then the source part's stored bytes after its
// header (segments and padding), which the proxy reads from the store and
// passes on unchanged: ciphertext, neither decrypted nor re-encrypted. S3
// cannot make one part of uploaded and store-copied bytes, and every part
// but the last must be at least 5 MiB, so the part streams through the
// proxy whole. from is the part's stored offset in the source version
// srcTag. It returns the part's store ETag.
func (s *Server) uploadResealed(dstPath, uploadID string, pn int, src *readReq, srcTag string, from int64, nh *envelope.PartHeader) (string, error) {
	size := nh.CiphertextSize()
	get := upstream.NewRequest(http.MethodGet, src.rawPath, src.query)
	get.Header.Set("If-Match", srcTag)
	get.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from+envelope.PartHeaderSize, from+size-1))
	gresp, err := s.up.Do(get)
	if err != nil {
		return "", s3wire.Internal(err)
	}
	defer func() { gresp.CloseBodyStream(); fasthttp.ReleaseResponse(gresp) }()
	if st := gresp.StatusCode(); st != http.StatusPartialContent {
		return "", s3wire.Internal(fmt.Errorf("reading part %d of the copy source: store answered %d", pn, st))
	}
	put := upstream.NewRequest(http.MethodPut, dstPath, "partNumber="+strconv.Itoa(pn)+"&uploadId="+uploadID)
	put.Body, put.BodyLen = io.MultiReader(bytes.NewReader(nh.Bytes()), upstream.Body(gresp)), size
	resp, err := s.up.Do(put)
	if err != nil {
		return "", s3wire.Internal(fmt.Errorf("upload part %d of the copy: %w", pn, err))
	}
	defer fasthttp.ReleaseResponse(resp)
	if st := resp.StatusCode(); st != http.StatusOK {
		body, _ := upstream.ReadBody(resp, s3wire.MaxSmallBody)
		var e struct {
			Code    string
			Message string
		}
		if xml.Unmarshal(body, &e) == nil && e.Code != "" {
			return "", &s3wire.Error{Status: st, Code: e.Code, Message: e.Message}
		}
		return "", s3wire.StatusError(st)
	}
	resp.CloseBodyStream()
	return string(resp.Header.Peek("ETag")), nil
}
