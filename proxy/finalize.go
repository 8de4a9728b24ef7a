package proxy

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/s3seal/s3seal/proxy/upstream"
	"github.com/valyala/fasthttp"
	"golang.org/x/sync/errgroup"
)

// Completing a multipart upload (FORMAT.md, version 2). The store assembles
// the object from the parts the client lists; then s3seal binds that set of
// parts to the object: it reads every part header of the completed object,
// checks that each part was sealed to this upload, and replaces the pending
// object header with one whose sealed metadata carries the manifest (part
// numbers, sizes, header digests). S3 cannot change an object's metadata in
// place, so the new header goes in with a server-side copy of the object
// onto itself: no object data passes through the proxy.
//
// What it costs: the store's Complete, one HEAD, one 4 KiB ranged GET per
// part (parallel for equal-sized parts), the KMS unwraps of the parts' data
// keys (cached: usually none), and the copy: CreateMultipartUpload, one
// UploadPartCopy per part, CompleteMultipartUpload. A single CopyObject
// would do for objects up to 5 GiB, but AWS S3 and MinIO give such a copy a
// whole-object ETag, and a multipart object's size is computed from the N
// of its "-N" ETag (listings carry nothing else): only a part-by-part copy
// keeps N and the part boundaries.

// errCompressedPart answers the completion of an upload whose object
// header does not allow compressed parts, with compressed parts.
var errCompressedPart = s3wire.NewError(http.StatusBadRequest, "InvalidPart",
	"One or more of the specified parts is compressed, and this upload was not created for compressed parts.")

// completeMultipart forwards CompleteMultipartUpload with the part ETags
// mapped back to the store's, then finalizes the object.
func (s *Server) completeMultipart(r *request) error {
	if r.upload.Upload == nil {
		return s3wire.ErrForeignUpload
	}
	want, err := takeCompleteChecksum(r)
	if err != nil {
		return err
	}
	body, err := s.readSmallBody(r)
	if err != nil {
		return err
	}
	var asked s3wire.CompleteMultipartUpload
	if err := xml.Unmarshal(body, &asked); err != nil || len(asked.Parts) == 0 {
		return s3wire.ErrMalformedXML
	}
	if err := s.precheck(r, want, asked.Parts); err != nil {
		return err
	}
	body = s3wire.StoreComplete(asked)
	out := r.outbound(http.MethodPost)
	s.resolveIfMatch(r, out)
	out.Body, out.BodyLen = bytes.NewReader(body), int64(len(body))
	if v := r.header.Get("X-Amz-Mp-Object-Size"); v != "" && r.upload.Compress == "" {
		// (A compressed upload's stored size follows from no plaintext
		// size: the header is not passed on, and the manifest checks the
		// size.)
		// The client's size is the plaintext's; the store checks the
		// stored size, every part PartOverhead bytes larger.
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			out.Header.Set("X-Amz-Mp-Object-Size", strconv.FormatInt(n+int64(len(asked.Parts))*envelope.PartOverhead, 10))
		}
	}
	// The Location the client is told: the object as it addresses it,
	// never the store's.
	loc := "http://" + string(r.ctx.Host()) + r.t.SignedPath
	return s.keepAlive(r, func() (*answer, error) {
		var done s3wire.CompleteMultipartUploadResult
		resp, err := s.up.DoXMLResp(out, &done)
		if err != nil {
			var e *s3wire.Error
			if errors.As(err, &e) && e.Code == "NoSuchUpload" {
				// A retry of a Complete whose finalizing failed: the store
				// completed the upload already. Finalize what is at the key
				// if it is this upload, made of exactly the parts the
				// client lists (the multipart ETag they give, S3's MD5 of
				// the part MD5s); a store whose ETags are not MD5s gets no
				// second try.
				if tag, ok := s3wire.MultipartETag(asked.Parts); ok {
					if shown, version, ferr := s.finalize(r, tag, "", asked.Parts, want); ferr == nil {
						return completed(r, loc, shown, version, want.kept), nil
					}
				}
			}
			return nil, err
		}
		version := string(resp.Header.Peek("X-Amz-Version-Id"))
		fasthttp.ReleaseResponse(resp)
		shown, finalVersion, err := s.finalize(r, done.ETag, version, asked.Parts, want)
		if err != nil {
			return nil, err
		}
		return completed(r, loc, shown, finalVersion, want.kept), nil
	})
}

// completed is a Complete's answer: the object's location (loc), its ETag
// as clients see it (shown) and version id; meta is the finalized header's
// sealed metadata, whose checksum the answer carries.
func completed(r *request, loc, shown, version string, meta *envelope.Meta) *answer {
	a := &answer{}
	if version != "" {
		a.header = map[string]string{"X-Amz-Version-Id": version}
	}
	res := s3wire.CompleteMultipartUploadResult{XMLNS: s3wire.NS, Location: loc,
		Bucket: r.t.Bucket, Key: r.t.Key, ETag: shown}
	if meta != nil {
		res.Set(meta.Checksum, checksumType(meta))
	}
	a.doc = res
	return a
}

// finalize replaces the pending header of the just-completed object
// (version `version`, store ETag storeTag; both empty: whatever is at the
// key now) with a finalized one, and returns the object's ETag as clients
// see it and its version id. parts is the client's part list, which the
// completed object must match. When every part ETag in it carries the
// part's plaintext MD5, the object's ETag is S3's over the plaintext parts
// (s3wire.PlainMultipartETag), sealed in the finalized header; otherwise
// it is the store's. want is what the Complete said of the object's
// checksum (keepChecksum), and finalize sets want.kept to the finalized
// header's sealed metadata. The response will say that the object's key
// protects it.
func (s *Server) finalize(r *request, storeTag, version string, parts []s3wire.CompletePart, want *completeWant) (string, string, error) {
	rq := &readReq{bucket: r.t.Bucket, key: r.t.Key, rawPath: r.t.RawPath}
	if version != "" {
		rq.query = "versionId=" + url.QueryEscape(version)
	}
	head := upstream.NewRequest(http.MethodHead, rq.rawPath, rq.query)
	if storeTag != "" {
		head.Header.Set("If-Match", storeTag)
	}
	resp, err := s.up.Do(head)
	if err != nil {
		return "", "", s3wire.Internal(err)
	}
	defer fasthttp.ReleaseResponse(resp)
	if st := resp.StatusCode(); st != http.StatusOK {
		return "", "", s3wire.Internal(fmt.Errorf("finalizing %s: the completed object answers %d (replaced before it could be finalized?)", rq.rawPath, st))
	}
	storeTag = string(resp.Header.Peek("ETag"))
	if version == "" {
		version = string(resp.Header.Peek("X-Amz-Version-Id"))
		if version != "" {
			rq.query = "versionId=" + url.QueryEscape(version)
		}
	}
	stored := int64(resp.Header.ContentLength())
	n := envelope.PartsInETag(storeTag)
	if n == 0 || n != len(parts) {
		return "", "", s3wire.Internal(fmt.Errorf("finalizing %s: store ETag %s for %d parts", rq.rawPath, storeTag, len(parts)))
	}

	h, err := envelope.ParseHeader(string(resp.Header.Peek(s3wire.SealHeader)))
	if err != nil {
		return "", "", s3wire.Damaged(err)
	}
	ki := h.KeyInfo()
	var (
		dek []byte
		obj *envelope.Object
	)
	if writeOnly := s.writeOnly(ki); writeOnly {
		// No DEK here: open the pending header with the object key the
		// upload id carries, and reseal it below under the data key this
		// instance holds for the same RSA key (wrapped locally, FORMAT.md
		// section 12.3). An upload created by an instance that could
		// decrypt has no such key in its id, and cannot complete here.
		if r.upload.PendingKey == nil {
			return "", "", errWriteOnly
		}
		if obj, err = (envelope.Config{}).OpenPending(h, r.upload.PendingKey); err != nil {
			return "", "", s3wire.Damaged(err)
		}
		defer obj.Close()
		dk, err := s.newDataKey(r, rq.bucket)
		if err != nil {
			return "", "", err
		}
		if dk.flags == 0 || !sameKey(dk.KeyID, ki.KeyID) {
			kms.Zero(dk.Plaintext)
			return "", "", s3wire.Internal(fmt.Errorf("finalizing %s: the bucket's write-only key is %s, the upload's %s", rq.rawPath, dk.KeyID, ki.KeyID))
		}
		dek, ki = dk.Plaintext, dk.keyInfo()
	} else {
		if dek, err = s.unwrap(kmsContext(r, rq.bucket, rq.key), ki, rq.bucket); err != nil {
			return "", "", err
		}
		if obj, err = envelope.Open(h, dek, rq.bucket, rq.key); err != nil {
			kms.Zero(dek)
			return "", "", s3wire.Damaged(err)
		}
		defer obj.Close()
	}
	defer kms.Zero(dek)
	r.sse = sse{alg: s3wire.SSEKMS, keyID: ki.KeyID}
	meta, err := envelope.DecodeMeta(obj.Meta())
	if err != nil {
		return "", "", s3wire.Damaged(err)
	}
	if !bytes.Equal(meta.Upload, r.upload.Upload) {
		return "", "", s3wire.Internal(fmt.Errorf("finalizing %s: the object there is not this upload's", rq.rawPath))
	}
	if meta.Manifest != nil {
		want.kept = meta
		return s3wire.ObjectETag(storeTag, meta.ETag), version, nil // finalized by an earlier attempt
	}

	// Read every part header of the completed object and check that each
	// part is one of this upload's, numbered as the client asked.
	var mu sync.Mutex
	read := map[int64]*envelope.PartHeader{}
	pm, err := envelope.ReadPartMap(n, stored, func(off int64) (*envelope.PartHeader, error) {
		ph, err := s.readPartHeader(rq, storeTag, off)
		if err == nil {
			mu.Lock()
			read[off] = ph
			mu.Unlock()
		}
		return ph, err
	})
	if err != nil {
		return "", "", s3wire.Damaged(err)
	}
	open := s.partOpener(r, rq.bucket, rq.key, meta)
	for i := range pm.Parts() {
		num, _, _, off := pm.Part(i)
		if num != parts[i].PartNumber {
			return "", "", s3wire.Internal(fmt.Errorf("finalizing %s: part %d of the completed object is number %d, client asked for %d", rq.rawPath, i+1, num, parts[i].PartNumber))
		}
		if s.writeOnly(read[off].KeyInfo()) {
			// A write-only instance cannot open the part: the manifest
			// binds its header bytes, and every reader opens it with this
			// upload's identity before returning plaintext (a part of
			// another upload makes the object unreadable, not misread).
			continue
		}
		p, err := open(read[off])
		if err != nil {
			return "", "", err
		}
		p.Close()
	}
	// Compressed parts belong only to an upload whose sealed header says
	// its parts may be compressed (FORMAT.md 12.2.3): a client that put
	// the compressed form into the upload id of another upload only breaks
	// its own upload, which is left unfinalized (unreadable).
	mf, err := pm.ManifestFlags(meta.Upload, h.Flags())
	if errors.Is(err, envelope.ErrManifest) && pm.Compressed() && h.Flags()&envelope.FlagCompressed == 0 {
		return "", "", errCompressedPart
	}
	if err != nil {
		return "", "", s3wire.Damaged(err)
	}
	applied := meta.Create
	reserved := meta.ChecksumAlgorithm != "" // room for the checksum was checked at Create
	dropped, err := keepChecksum(meta, *want, parts, pm)
	if err != nil {
		return "", "", err
	}
	if dropped != "" {
		s.log.Warn("multipart object finalized without a checksum", "id", r.id, "path", rq.rawPath, "why", dropped)
	}
	meta.Manifest, meta.Create = mf, nil
	// The part MD5s are the client's own list: each was verified against
	// its part's plaintext at UploadPart, but nothing binds the list sent
	// here to those parts (README, "ETags").
	if tag, ok := s3wire.PlainMultipartETag(parts); ok {
		meta.ETag = strings.Trim(tag, `"`)
	}
	value, err := obj.Reseal(dek, ki, rq.bucket, rq.key, meta.Encode())
	if errors.Is(err, envelope.ErrTooLarge) && meta.ETag != "" {
		// CreateMultipartUpload reserved room for the manifest, not for
		// the ETag (it cannot know whether the parts will come with their
		// MD5s): an object whose metadata fills the header keeps the
		// store's ETag rather than never becoming readable.
		meta.ETag = ""
		value, err = obj.Reseal(dek, ki, rq.bucket, rq.key, meta.Encode())
	}
	if errors.Is(err, envelope.ErrTooLarge) && !reserved && meta.Checksum != nil {
		// A checksum the Create did not announce may not fit beside the
		// client's metadata: the object is whole without it.
		s.log.Warn("multipart object finalized without a checksum", "id", r.id, "path", rq.rawPath, "why", "no room in the header")
		meta.Checksum, meta.ChecksumType = nil, ""
		value, err = obj.Reseal(dek, ki, rq.bucket, rq.key, meta.Encode())
	}
	if err != nil {
		return "", "", sealError(err)
	}
	want.kept = meta

	hdr := http.Header{}
	for k, v := range applied {
		hdr.Set(k, v)
	}
	hdr.Set(s3wire.SealHeader, value)
	if err := s.copyTags(hdr, resp, rq); err != nil {
		return "", "", err
	}
	// The copy replaces the object only if it is still the one completed:
	// a write that lands in between (after the client's Complete, as S3
	// orders them) is not overwritten by the copy. The client's Complete
	// then succeeded, and was replaced, as on S3; its conditions
	// (If-Match, If-None-Match) were the store's Complete's, evaluated
	// against what the client sees (ETags mapped), before any of this.
	finalTag, finalVersion, err := s.copyParts(r.t.RawPath, hdr, rq, storeTag, pm, nil, storeTag)
	if errors.Is(err, errReplaced) {
		return s3wire.ObjectETag(storeTag, meta.ETag), version, nil
	}
	if err != nil {
		return "", "", err
	}
	if version != "" && finalVersion != version {
		// A versioned bucket keeps the pending version, which no reader
		// accepts: remove it (best effort; object lock may keep it).
		s.deleteVersion(r.t.RawPath, version)
	}
	return s3wire.ObjectETag(finalTag, meta.ETag), finalVersion, nil
}

// errReplaced: the object a copy was to replace was replaced meanwhile.
var errReplaced = errors.New("the destination object was replaced during the copy")

// copyParallel bounds the UploadPartCopy requests one copy runs at once.
const copyParallel = 8

// copyParts makes the object at dstPath, with the given request headers
// (the envelope header among them), from the stored parts of the source
// version (store ETag srcTag, parts as in pm): one UploadPartCopy per part,
// so that it has the same part count and boundaries, and no data passes
// through the proxy. With resealed (the parts' re-wrapped headers, in
// stored order), each part is instead uploaded as its new header and the
// source part's bytes after its header (uploadResealed). Tags are the
// caller's (copyTags). It returns the new object's store ETag and version
// id.
//
// With dstIfMatch, the copy completes only over a destination object of
// that store ETag, and gives errReplaced if another is there.
func (s *Server) copyParts(dstPath string, hdr http.Header, src *readReq, srcTag string, pm *envelope.PartMap, resealed []*envelope.PartHeader, dstIfMatch string) (string, string, error) {
	source := src.rawPath
	if src.query != "" {
		source += "?" + src.query
	}
	create := upstream.NewRequest(http.MethodPost, dstPath, "uploads")
	for k, v := range hdr {
		create.Header[k] = v
	}
	var init struct {
		UploadID string `xml:"UploadId"`
	}
	if err := s.up.DoXML(create, &init); err != nil {
		return "", "", err
	}
	uploadID := url.QueryEscape(init.UploadID)
	abort := func() {
		if resp, err := s.up.Do(upstream.NewRequest(http.MethodDelete, dstPath, "uploadId="+uploadID)); err == nil {
			fasthttp.ReleaseResponse(resp)
		}
	}
	// The parts are copied in parallel: each UploadPartCopy is a store-side
	// copy of up to 5 GiB, and their latencies add up otherwise.
	done := s3wire.CompleteMultipartUpload{Parts: make([]s3wire.CompletePart, pm.Parts())}
	var g errgroup.Group
	g.SetLimit(copyParallel)
	for i := range pm.Parts() {
		g.Go(func() error {
			_, _, _, from := pm.Part(i)
			if resealed != nil {
				etag, err := s.uploadResealed(dstPath, uploadID, i+1, src, srcTag, from, resealed[i])
				done.Parts[i] = s3wire.CompletePart{PartNumber: i + 1, ETag: etag}
				return err
			}
			to := from + pm.StoredLen(i) - 1 // a compressed part's size is in its header
			pc := upstream.NewRequest(http.MethodPut, dstPath, "partNumber="+strconv.Itoa(i+1)+"&uploadId="+uploadID)
			pc.Header.Set("X-Amz-Copy-Source", source)
			pc.Header.Set("X-Amz-Copy-Source-Range", fmt.Sprintf("bytes=%d-%d", from, to))
			pc.Header.Set("X-Amz-Copy-Source-If-Match", srcTag)
			var res struct {
				ETag string `xml:"ETag"`
			}
			if err := s.up.DoXML(pc, &res); err != nil {
				return err
			}
			done.Parts[i] = s3wire.CompletePart{PartNumber: i + 1, ETag: res.ETag}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		abort()
		return "", "", err
	}
	body, _ := xml.Marshal(done)
	complete := upstream.NewRequest(http.MethodPost, dstPath, "uploadId="+uploadID)
	complete.Body, complete.BodyLen = bytes.NewReader(body), int64(len(body))
	if dstIfMatch != "" {
		complete.Header.Set("If-Match", dstIfMatch)
	}
	var result s3wire.CompleteMultipartUploadResult
	resp, err := s.up.DoXMLResp(complete, &result)
	if err != nil {
		abort()
		var e *s3wire.Error
		if dstIfMatch != "" && errors.As(err, &e) && e.Status == http.StatusPreconditionFailed {
			return "", "", errReplaced
		}
		return "", "", err
	}
	version := string(resp.Header.Peek("X-Amz-Version-Id"))
	fasthttp.ReleaseResponse(resp)
	return result.ETag, version, nil
}

// copyTags sets the x-amz-tagging of a copy made part by part to the
// source's tags, which a new upload does not inherit. head is the source's
// HEAD response: a store answers ?tagging only for objects that have tags
// (the embedded store would send the object itself).
func (s *Server) copyTags(hdr http.Header, head *fasthttp.Response, src *readReq) error {
	if n := string(head.Header.Peek("X-Amz-Tagging-Count")); n == "" || n == "0" {
		return nil
	}
	q := "tagging"
	if src.query != "" {
		q = src.query + "&tagging"
	}
	var tagging struct {
		Tags []struct {
			Key   string `xml:"Key"`
			Value string `xml:"Value"`
		} `xml:"TagSet>Tag"`
	}
	if err := s.up.DoXML(upstream.NewRequest(http.MethodGet, src.rawPath, q), &tagging); err != nil {
		return err
	}
	v := url.Values{}
	for _, t := range tagging.Tags {
		v.Add(t.Key, t.Value)
	}
	hdr.Set("X-Amz-Tagging", v.Encode())
	return nil
}

// deleteVersion removes one version of an object, best effort.
func (s *Server) deleteVersion(rawPath, version string) {
	resp, err := s.up.Do(upstream.NewRequest(http.MethodDelete, rawPath, "versionId="+url.QueryEscape(version)))
	if err != nil {
		s.log.Warn("could not remove a pending object version", "path", rawPath, "version", version, "err", err)
		return
	}
	if st := resp.StatusCode(); st != http.StatusNoContent && st != http.StatusOK {
		s.log.Warn("could not remove a pending object version", "path", rawPath, "version", version, "status", st)
	}
	fasthttp.ReleaseResponse(resp)
}
