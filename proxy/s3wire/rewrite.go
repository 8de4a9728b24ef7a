package s3wire

import (
	"bytes"
	"encoding/xml"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/envelope"
)

// Rewrites of the store's documents so that they describe plaintext
// objects: sizes, ETags and checksums.

// RewriteListing replaces <Size> and <ETag> inside every <Contents> and
// <Version> element of a ListObjects (V1, V2) or ListObjectVersions page.
func RewriteListing(doc []byte) []byte {
	return RewriteListingWith(doc, nil)
}

// ListedSizes looks up an entry's plaintext size (key and version id as
// the listing has them, XML-unescaped); ok false: the stored size says it.
type ListedSizes func(key, version, storeTag string, stored int64) (plain int64, ok bool)

// RewriteListingWith is RewriteListing with the sizes sizes knows (a
// compressed object's stored size does not give its plaintext size).
func RewriteListingWith(doc []byte, sizes ListedSizes) []byte {
	return rewriteElements(doc, []string{"Contents", "Version"}, func(e []byte) []byte { return rewriteEntry(e, sizes) })
}

// ListingEntries calls fn for every <Contents> and <Version> entry of a
// listing page that has an ETag and a size.
func ListingEntries(doc []byte, fn func(key, version, storeTag string, stored int64)) {
	rewriteElements(doc, []string{"Contents", "Version"}, func(e []byte) []byte {
		if key, version, storeTag, stored, ok := entryFields(e); ok {
			fn(key, version, storeTag, stored)
		}
		return e
	})
}

func entryFields(e []byte) (key, version, storeTag string, stored int64, ok bool) {
	etagRaw, _, _, hasTag := Element(e, "ETag")
	sizeRaw, _, _, hasSize := Element(e, "Size")
	keyRaw, _, _, hasKey := Element(e, "Key")
	if !hasTag || !hasSize || !hasKey {
		return "", "", "", 0, false
	}
	stored, err := strconv.ParseInt(string(sizeRaw), 10, 64)
	if err != nil {
		return "", "", "", 0, false
	}
	if v, _, _, ok := Element(e, "VersionId"); ok {
		version = html.UnescapeString(string(v))
	}
	return html.UnescapeString(string(keyRaw)), version, unescapeQuotes(string(etagRaw)), stored, true
}

// URLDecodeKey decodes a key of a listing asked for with encoding-type=url
// (a key that does not decode is returned as it is).
func URLDecodeKey(k string) string {
	if d, err := url.QueryUnescape(k); err == nil {
		return d
	}
	return k
}

func rewriteEntry(e []byte, sizes ListedSizes) []byte {
	etagRaw, ei, ej, hasTag := Element(e, "ETag")
	sizeRaw, si, sj, hasSize := Element(e, "Size")
	if !hasTag || !hasSize {
		return e
	}
	storeTag := unescapeQuotes(string(etagRaw))
	stored, err := strconv.ParseInt(string(sizeRaw), 10, 64)
	if err != nil {
		return e
	}
	plain, ok := int64(0), false
	if sizes != nil {
		if key, version, _, _, fok := entryFields(e); fok {
			plain, ok = sizes(key, version, storeTag, stored)
		}
	}
	if !ok {
		plain, ok = envelope.ListedSize(stored, storeTag)
	}
	if !ok {
		return e // not an s3seal object: leave it as the store described it
	}
	newTag := escapeQuotes(ClientETag(storeTag))
	newSize := strconv.FormatInt(plain, 10)
	// Replace the later element first so earlier offsets stay valid.
	type repl struct {
		i, j int
		v    string
	}
	a, b := repl{ei, ej, newTag}, repl{si, sj, newSize}
	if a.i > b.i {
		a, b = b, a
	}
	var out bytes.Buffer
	out.Grow(len(e) + 8)
	out.Write(e[:a.i])
	out.WriteString(a.v)
	out.Write(e[a.j:b.i])
	out.WriteString(b.v)
	out.Write(e[b.j:])
	return out.Bytes()
}

// partPlainSize rewrites the <Size> of a <Part> element from its stored to
// its plaintext size.
func partPlainSize(e []byte) []byte {
	return partSize(e, nil)
}

// partSize rewrites the <Size> of a <Part> element to the plaintext size
// sizes knows for it (nil, or not known: the stored size minus
// PartOverhead, exact for a part of segments).
func partSize(e []byte, sizes PartSizes) []byte {
	raw, i, j, ok := Element(e, "Size")
	if !ok {
		return e
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return e
	}
	if sizes != nil {
		if pnRaw, _, _, ok := Element(e, "PartNumber"); ok {
			tag, _, _, _ := Element(e, "ETag")
			if pn, err := strconv.Atoi(string(pnRaw)); err == nil {
				if plain, ok := sizes(pn, unescapeQuotes(string(tag)), n); ok {
					return splice(e, i, j, strconv.FormatInt(plain, 10))
				}
			}
		}
	}
	if n < envelope.PartOverhead {
		return e
	}
	return splice(e, i, j, strconv.FormatInt(n-envelope.PartOverhead, 10))
}

// PartSizes looks up the plaintext size of a listed part of an upload (its
// number, the store's ETag and its stored size as the store lists them); ok
// false: the stored size says it.
type PartSizes func(partNumber int, storeTag string, stored int64) (plain int64, ok bool)

// RewriteParts rewrites a ListParts page: each part's ETag as clients see
// it and its plaintext size, and the upload id as the client knows it.
func RewriteParts(doc []byte, upload UploadRef) []byte {
	return RewritePartsWith(doc, upload, nil)
}

// RewritePartsWith is RewriteParts with the sizes sizes knows (a
// compressed part's stored size does not give its plaintext size).
func RewritePartsWith(doc []byte, upload UploadRef, sizes PartSizes) []byte {
	if upload.Mapped() {
		doc = SetUploadID(doc, upload.Client)
	}
	return rewriteElements(doc, []string{"Part"}, func(e []byte) []byte {
		// The size first: it looks the part up by the store's ETag.
		e = partSize(e, sizes)
		if tag, i, j, ok := Element(e, "ETag"); ok {
			e = splice(e, i, j, mapETagText(tag, ClientETag))
		}
		return e
	})
}

// StoreComplete is the CompleteMultipartUpload body the store gets for the
// client's: the part list alone, part ETags mapped back to the store's. The
// client's part checksums are of the plaintext, and a strict store (AWS,
// versitygw) refuses parts whose checksums it does not have (InvalidPart).
func StoreComplete(client CompleteMultipartUpload) []byte {
	forward := CompleteMultipartUpload{Parts: make([]CompletePart, len(client.Parts))}
	for i, p := range client.Parts {
		forward.Parts[i] = CompletePart{PartNumber: p.PartNumber, ETag: StoreETag(strings.TrimSpace(p.ETag))}
	}
	body, _ := xml.Marshal(forward) // cannot fail: ints and strings
	return body
}

// AttributesAsked are the attributes an x-amz-object-attributes header
// asks GetObjectAttributes for.
func AttributesAsked(h http.Header) []string {
	var asked []string
	for _, v := range h.Values("X-Amz-Object-Attributes") {
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				asked = append(asked, a)
			}
		}
	}
	return asked
}

// AttributesFetched are the attributes the proxy always asks the store
// for: the part count in the ETag is what turns a stored size into a
// plaintext size.
const AttributesFetched = "ETag,ObjectSize,ObjectParts,StorageClass"

// checksumElements match the object's <Checksum> element, then any
// checksum left in a <Part>. The object's goes whole first: its children
// are checksum elements too, and a pattern for both would end the
// <Checksum> at its first child's closing tag.
var checksumElements = []*regexp.Regexp{
	regexp.MustCompile(`(?s)<Checksum>.*?</Checksum>`),
	regexp.MustCompile(`(?s)<Checksum(CRC32|CRC32C|CRC64NVME|SHA1|SHA256|Type)>.*?</Checksum(CRC32|CRC32C|CRC64NVME|SHA1|SHA256|Type)>`),
}

// RewriteAttributes rewrites a GetObjectAttributes answer to AttributesFetched
// into the plaintext object's answer to asked. Checksums are the store's, of
// the ciphertext, and are never shown as the object's. shown is the
// object's ETag as clients see it, if the caller read it from the object's
// header ("": the store's, mapped).
func RewriteAttributes(body []byte, asked []string, shown string) []byte {
	return RewriteAttributesSize(body, asked, shown, -1)
}

// RewriteAttributesSize is RewriteAttributes with the object's plaintext
// size when the caller knows it (plain ≥ 0: a compressed object, whose
// stored size does not give it).
func RewriteAttributesSize(body []byte, asked []string, shown string, plain int64) []byte {
	tag, _, _, _ := Element(body, "ETag")
	storeTag := `"` + strings.Trim(unescapeQuotes(string(tag)), `"`) + `"`
	sizeRaw, si, sj, ok := Element(body, "ObjectSize")
	if ok {
		stored, err := strconv.ParseInt(string(sizeRaw), 10, 64)
		if plain < 0 {
			var valid bool
			if plain, valid = envelope.ListedSize(stored, storeTag); err != nil || !valid {
				plain = -1
			}
		}
		if plain >= 0 {
			body = splice(body, si, sj, strconv.FormatInt(plain, 10))
		}
	}
	if _, ei, ej, ok := Element(body, "ETag"); ok {
		if shown == "" {
			shown = ClientETag(storeTag)
		}
		body = splice(body, ei, ej, strings.Trim(shown, `"`))
	}
	body = rewriteElements(body, []string{"Part"}, partPlainSize)
	for _, re := range checksumElements {
		body = re.ReplaceAll(body, nil)
	}
	for _, name := range strings.Split(AttributesFetched, ",") {
		if !slices.ContainsFunc(asked, func(a string) bool { return strings.EqualFold(a, name) }) {
			body = regexp.MustCompile(`(?s)<`+name+`>.*?</`+name+`>`).ReplaceAll(body, nil)
		}
	}
	return body
}
