package proxy

import (
	"bytes"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/valyala/fasthttp"
)

// The operations answered with a store document that the proxy rewrites
// to describe plaintext objects (s3wire's rewrites).

// listObjects forwards ListObjects (V1, V2) and ListObjectVersions and
// rewrites each entry's size and ETag to the plaintext object's.
func (s *Server) listObjects(r *request) error {
	return s.serveDocument(r, func(doc []byte) []byte {
		return s3wire.RewriteListingWith(doc, s.listedSizes(r, doc))
	})
}

// listParts rewrites each part's stored size to its plaintext size: the
// one this instance remembers for a compressed part (compress.go: exact
// only where the part was stored through it), the stored size minus
// PartOverhead otherwise.
func (s *Server) listParts(r *request) error {
	sizes := s.partSizes(r)
	return s.serveDocument(r, func(doc []byte) []byte { return s3wire.RewritePartsWith(doc, r.upload, sizes) })
}

// serveDocument forwards the request and answers with the store's
// document rewritten by rewrite.
func (s *Server) serveDocument(r *request, rewrite func([]byte) []byte) error {
	resp, body, err := s.fetchDocument(r, r.outbound(http.MethodGet), s3wire.MaxListBody)
	if resp == nil {
		return err
	}
	defer fasthttp.ReleaseResponse(resp)
	r.ctx.SetStatusCode(http.StatusOK)
	relayHeaders(&r.ctx.Response.Header, &resp.Header, false)
	r.ctx.SetBody(rewrite(body))
	return nil
}

// getObjectAttributes answers GetObjectAttributes with plaintext sizes.
// The store is always asked for the ETag and size (the part count in the
// ETag is what turns a stored size into a plaintext size); what the client
// did not ask for is removed again.
func (s *Server) getObjectAttributes(r *request) error {
	asked := s3wire.AttributesAsked(r.header)
	if len(asked) == 0 {
		return s3wire.InvalidArgument("Invalid attribute name specified.")
	}
	out := r.outbound(http.MethodGet)
	out.Header.Set("X-Amz-Object-Attributes", s3wire.AttributesFetched)
	resp, body, err := s.fetchDocument(r, out, s3wire.MaxListBody)
	if resp == nil {
		return err
	}
	defer fasthttp.ReleaseResponse(resp)
	wants := func(name string) bool {
		return slices.ContainsFunc(asked, func(a string) bool { return strings.EqualFold(a, name) })
	}
	// Checksum and ObjectParts come from the sealed header and the part
	// map, never from the store (its checksums are of the ciphertext).
	var extra []byte
	var sealed *envelope.Meta // the header's metadata, once read
	storeTag := ""
	if tag, _, _, ok := s3wire.Element(body, "ETag"); ok {
		storeTag = `"` + strings.Trim(string(tag), `"`) + `"`
	}
	if wants("Checksum") || wants("ObjectParts") {
		meta, pm, err := s.sealedAttributes(r, storeTag)
		if err != nil {
			return err
		}
		sealed = meta
		if wants("Checksum") {
			extra = append(extra, checksumElement(meta)...)
		}
		if wants("ObjectParts") && pm != nil {
			el, err := objectPartsElement(pm, r.header)
			if err != nil {
				return err
			}
			extra = append(extra, el...)
			body = objectPartsElementRE.ReplaceAll(body, nil)
		}
	}
	// A multipart object's ETag may be sealed in its header, which this
	// answer does not carry: from the header read above, or one HEAD more.
	shown := ""
	if strings.IndexByte(storeTag, '-') >= 0 {
		if sealed != nil {
			shown = s3wire.ObjectETag(storeTag, sealed.ETag)
		} else {
			_, shown = s.headETag(r, r.t.RawPath, versionQuery(r.t.Query.Get("versionId")))
		}
	}
	plain := int64(-1)
	if s.comp != nil && s.comp.mayHold(r.t.Bucket) && wants("ObjectSize") {
		// Perhaps a compressed object, or a multipart one with compressed
		// parts: its size is in its header only.
		stored := int64(-1)
		if raw, _, _, ok := s3wire.Element(body, "ObjectSize"); ok {
			stored, _ = strconv.ParseInt(string(raw), 10, 64)
		}
		if size, ok := s.comp.sizes.Get(sizeKey(storeTag, stored)); ok {
			plain = size
		} else if size, err := s.headSize(r, r.t.Key, r.t.Query.Get("versionId"), storeTag); err == nil {
			plain = size
			s.rememberSize(storeTag, stored, size)
		} else {
			return s3wire.Internal(fmt.Errorf("GetObjectAttributes: plaintext size: %w", err))
		}
	}
	body = s3wire.RewriteAttributesSize(body, asked, shown, plain)
	if len(extra) > 0 {
		if i := bytes.LastIndex(body, []byte("</")); i >= 0 {
			body = slices.Concat(body[:i], extra, body[i:])
		}
	}
	r.ctx.SetStatusCode(http.StatusOK)
	relayHeaders(&r.ctx.Response.Header, &resp.Header, true)
	r.ctx.Response.Header.SetContentType("application/xml")
	r.ctx.SetBody(bytes.Clone(body))
	return nil
}

// objectPartsElementRE matches the store's <ObjectParts>, replaced by the
// proxy's own for a multipart object.
var objectPartsElementRE = regexp.MustCompile(`(?s)<ObjectParts>.*?</ObjectParts>`)
