package envelope

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Meta is the metadata blob sealed inside an object header (FORMAT.md
// "The sealed metadata blob"): everything about an object that must not be
// readable, or changeable, at the store. It is JSON; readers ignore fields
// they do not know.
type Meta struct {
	// Size is the plaintext size of a single-layout object, checked against
	// the size derived from the stored size; -1 for a multipart object.
	Size int64 `json:"s"`
	// User holds the client's x-amz-meta-* headers, names lowercased
	// without the prefix.
	User map[string]string `json:"u,omitempty"`
	// MD5 is the base64 plaintext MD5 when the client sent a Content-MD5
	// that was verified over the body.
	MD5 string `json:"m,omitempty"`
	// Checksum holds a full-object checksum of the plaintext the client
	// sent as a header: header name (x-amz-checksum-crc32c, ...) to value.
	Checksum map[string]string `json:"c,omitempty"`
	// Origin is the path the parts of a multipart object are sealed to,
	// when that is not the object's own (a copy reuses the source's parts).
	Origin *Path `json:"o,omitempty"`

	// Version 2 fields; EncodeFor(1) leaves them out.

	// Headers holds the content headers the client set (Content-Type,
	// Content-Encoding, ...), canonical names to values: served from here,
	// so the store cannot change how a browser treats the object.
	Headers map[string]string `json:"h,omitempty"`
	// Upload is the identity of the upload the parts were sent to
	// (UploadIDSize bytes; base64 in the JSON): every version 2 part key is
	// sealed to it.
	Upload []byte `json:"up,omitempty"`
	// Manifest binds the completed set of parts to the object. A version 2
	// multipart object without one is not finalized and is never read.
	Manifest *Manifest `json:"mf,omitempty"`
	// Create holds request headers of CreateMultipartUpload that the store
	// applies to the object it creates (ACL, storage class, tagging, ...),
	// so that the copy which finalizes the upload can ask for them again.
	// Only the pending header carries it.
	Create map[string]string `json:"w,omitempty"`
	// ETag is the ETag clients see for a multipart object whose every part
	// came with its plaintext MD5: S3's "<md5 of the part MD5s>-N" over the
	// plaintext parts, set when the upload is finalized. Without it, the
	// object's ETag is the store's.
	ETag string `json:"et,omitempty"`
	// Source marks an object written by s3seal migrate (or rewrap) with
	// the source object version it was made from, so that a re-run can
	// tell, from the sealed (authenticated) header alone, that this
	// destination is that source's copy and skip it.
	Source *Source `json:"mg,omitempty"`
	// ChecksumType is the S3 checksum type of Checksum, COMPOSITE or
	// FULL_OBJECT (the default: absent for single objects). In a pending
	// header, the type asked for at CreateMultipartUpload.
	ChecksumType string `json:"ct,omitempty"`
	// ChecksumAlgorithm is the x-amz-checksum-algorithm a multipart upload
	// named at CreateMultipartUpload (CRC32, ...): the completion computes
	// the object's checksum with it. Only the pending header carries it.
	ChecksumAlgorithm string `json:"ca,omitempty"`

	// Version 3 fields; EncodeFor(2) leaves them out.

	// Compression holds the parameters of a compressed body (FlagCompressed,
	// FORMAT.md 12.2): algorithm and block size. Size is then the only
	// source of the plaintext size.
	Compression *Compression `json:"z,omitempty"`
}

// Source names the stored object version a migrated object was made from,
// as the source store described it.
type Source struct {
	// ETag is the source store's ETag, quotes included as it sent them.
	ETag string `json:"e"`
	// Size is the source's stored size.
	Size int64 `json:"z"`
	// Version is the source's version id, if its bucket is versioned.
	Version string `json:"v,omitempty"`
}

// Path is a bucket and object key.
type Path struct {
	Bucket string `json:"b"`
	Key    string `json:"k"`
}

// Manifest is the sealed summary of a completed multipart object: its part
// count, plaintext size, and a digest over every part's number, size and
// header (ManifestDigest). It is written when the upload completes and
// checked by every reader.
type Manifest struct {
	Parts  int    `json:"n"`
	Size   int64  `json:"s"`
	Digest []byte `json:"d"`
}

// Encode returns the blob with every field set (what a version 2 or 3
// header carries: the version 3 fields are set only for version 3 objects).
func (m *Meta) Encode() []byte { return m.EncodeFor(MaxVersion) }

// EncodeFor returns the blob for a header of the given format version: a
// version 1 header (a copy of a version 1 object keeps its version, since
// its body keys are version 1 keys) carries only version 1 fields.
func (m *Meta) EncodeFor(version int) []byte {
	v := *m
	if version < 2 {
		v.Headers, v.Upload, v.Manifest, v.Create, v.Source, v.ETag = nil, nil, nil, nil, nil, ""
		v.ChecksumType, v.ChecksumAlgorithm = "", ""
	}
	if version < 3 {
		v.Compression = nil
	}
	b, _ := json.Marshal(&v) // cannot fail: strings, ints and bytes only
	return b
}

// DecodeMeta parses a sealed metadata blob.
func DecodeMeta(b []byte) (*Meta, error) {
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: sealed metadata: %v", ErrFormat, err)
	}
	return &m, nil
}

// PartsPath is the bucket and key the object's parts are sealed to.
func (m *Meta) PartsPath(bucket, key string) (string, string) {
	if m.Origin != nil {
		return m.Origin.Bucket, m.Origin.Key
	}
	return bucket, key
}

// PartsInETag returns N for a multipart ETag "<hex>-N" (quotes allowed),
// and 0 for any other ETag.
func PartsInETag(etag string) int {
	etag = strings.Trim(etag, `"`)
	i := strings.LastIndexByte(etag, '-')
	if i < 0 {
		return 0
	}
	n, err := strconv.Atoi(etag[i+1:])
	if err != nil || n < 1 || n > MaxPartNumber {
		return 0
	}
	return n
}

// ListedSize computes an object's plaintext size from what a listing
// carries, its stored size and the store's ETag: a multipart ETag's N gives
// stored − N·PartOverhead, any other ETag the single layout's inverse. ok is
// false for a size no s3seal object can have. It is what listings show; it
// authenticates nothing (a listing has no header to check it against).
// It is wrong for a compressed object (FlagCompressed), whose stored size
// says nothing exact and which a listing cannot tell apart: its size is in
// its header only.
func ListedSize(stored int64, storeETag string) (int64, bool) {
	if n := PartsInETag(storeETag); n > 0 {
		p, err := MultipartPlaintextSize(stored, n)
		return p, err == nil
	}
	p, err := PlaintextSize(stored)
	return p, err == nil
}

// PlainSize checks what the store says about an opened object (its stored
// size and ETag) against its header and sealed metadata, and returns the
// plaintext size. It fails closed: a layout that disagrees with the ETag, a
// single object whose stored size is not the sealed size, a version 2
// multipart object without a manifest (ErrIncomplete) or whose part count
// or size differ from it (ErrManifest).
func (o *Object) PlainSize(m *Meta, stored int64, storeETag string) (int64, error) {
	parts := PartsInETag(storeETag)
	switch {
	case o.comp != nil && parts == 0:
		// The stored size says nothing exact: the sealed size is the size,
		// and the stored one must be possible for it.
		if m.Size != o.plainSize {
			return 0, fmt.Errorf("%w: sealed size %d, object opened with %d", ErrSize, m.Size, o.plainSize)
		}
		if _, _, err := o.IndexRange(stored); err != nil {
			return 0, err
		}
		return o.plainSize, nil
	case o.layout == LayoutSingle && parts == 0:
		p, err := PlaintextSize(stored)
		if err != nil {
			return 0, err
		}
		if p != m.Size {
			return 0, fmt.Errorf("%w: stored size %d is %d plaintext bytes, sealed size is %d", ErrSize, stored, p, m.Size)
		}
		return p, nil
	case o.layout == LayoutMultipart && parts > 0 && o.flags&FlagCompressed != 0:
		// Parts may be compressed (FORMAT.md 12.2.3): the stored size no
		// longer gives the plaintext size; the manifest's does, and the
		// part map checks that the parts fill the stored size exactly.
		if m.Manifest == nil {
			return 0, ErrIncomplete
		}
		if m.Manifest.Parts != parts || m.Manifest.Size < 0 || m.Manifest.Size > int64(parts)*MaxPartSize ||
			stored < int64(parts)*(PartHeaderSize+TagSize) {
			return 0, fmt.Errorf("%w: store has %d parts, %d bytes; manifest says %d parts, %d bytes",
				ErrManifest, parts, stored, m.Manifest.Parts, m.Manifest.Size)
		}
		return m.Manifest.Size, nil
	case o.layout == LayoutMultipart && parts > 0:
		p, err := MultipartPlaintextSize(stored, parts)
		if err != nil {
			return 0, err
		}
		if o.version < 2 {
			return p, nil
		}
		if m.Manifest == nil {
			return 0, ErrIncomplete
		}
		if m.Manifest.Parts != parts || m.Manifest.Size != p {
			return 0, fmt.Errorf("%w: store has %d parts, %d bytes; manifest says %d parts, %d bytes",
				ErrManifest, parts, p, m.Manifest.Parts, m.Manifest.Size)
		}
		return p, nil
	}
	return 0, fmt.Errorf("%w: %v object with store ETag %s", ErrLayout, o.layout, storeETag)
}
