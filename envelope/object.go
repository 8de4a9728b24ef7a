package envelope

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
)

// Object header, versions 1, 2 and 3 (FORMAT.md "Object header"; versions
// 2 and 3 have the same bytes, with their own key derivation and AADs):
//
//	off  size  field
//	0    4     magic "S3SL"
//	4    1     version (1, 2 or 3)
//	5    1     flags (0 before version 3; in version 3 the Flag bits, any
//	           other bit is rejected)
//	6    1     layout (1 single, 2 multipart)
//	7    2+K   KMS key id, uint16 length-prefixed
//	.    2+W   wrapped DEK, uint16 length-prefixed
//	.    12    OEK nonce
//	.    48    sealed OEK (32 + tag)
//	.    32    key commitment
//	.    12    metadata nonce
//	.    M+16  sealed metadata (the rest of the header)
//
// The header value is the whole header encoded with base64.RawURLEncoding.
const objectMagic = "S3SL"

// headerEncoding is the text encoding of the header value. Decoding is
// strict (non-zero trailing bits are rejected) so that every header has
// exactly one text form.
var headerEncoding = base64.RawURLEncoding.Strict()

// Header is a decoded object header. Parsing needs no key; Open unseals it.
type Header struct {
	version    byte
	flags      Flags
	layout     Layout
	keyID      string
	wrapped    []byte
	oekNonce   []byte
	sealedOEK  []byte
	commitment []byte
	metaAAD    []byte // header bytes before the sealed metadata
	sealedMeta []byte // ciphertext || tag, starting after the metadata nonce
	metaNonce  []byte
	raw        []byte
}

// KeyInfo returns the KMS key id and wrapped DEK to unwrap for Open.
func (h *Header) KeyInfo() KeyInfo {
	return KeyInfo{KeyID: h.keyID, Wrapped: append([]byte(nil), h.wrapped...), Flags: h.flags & FlagAsymmetricWrap}
}

// Flags returns the header's flags (always 0 before version 3). They are
// authenticated by Open (the metadata AAD covers them).
func (h *Header) Flags() Flags { return h.flags }

// Layout returns the object's layout.
func (h *Header) Layout() Layout { return h.layout }

// Version returns the header's format version.
func (h *Header) Version() int { return int(h.version) }

// Size returns the length of the binary header (before base64).
func (h *Header) Size() int { return len(h.raw) }

// MetaSize returns the length of the sealed metadata's plaintext.
func (h *Header) MetaSize() int { return len(h.sealedMeta) - TagSize }

// ParseHeader decodes a header value (the x-amz-meta-s3seal metadata value)
// without any key. It checks structure only; Open authenticates.
func ParseHeader(value string) (*Header, error) {
	if len(value) > 4*MaxHeaderValueLen {
		return nil, fmt.Errorf("%w: header value too long", ErrFormat)
	}
	if strings.ContainsAny(value, "\r\n") { // the decoder would skip them
		return nil, fmt.Errorf("%w: header value is not base64url", ErrFormat)
	}
	raw, err := headerEncoding.DecodeString(value)
	if err != nil {
		return nil, fmt.Errorf("%w: header value is not base64url: %v", ErrFormat, err)
	}
	return parseHeader(raw)
}

func parseHeader(raw []byte) (*Header, error) {
	r := &reader{b: raw}
	if string(r.take(4)) != objectMagic {
		return nil, fmt.Errorf("%w: bad object header magic", ErrFormat)
	}
	v := r.u8()
	if !validVersion(v) {
		if r.bad {
			return nil, fmt.Errorf("%w: header too short", ErrFormat)
		}
		return nil, fmt.Errorf("%w: object header version %d", ErrVersion, v)
	}
	f := r.u8()
	if err := checkFlags(v, f); err != nil {
		return nil, err
	}
	h := &Header{raw: raw, version: v, flags: Flags(f)}
	h.layout = Layout(r.u8())
	h.keyID = string(r.lv())
	h.wrapped = r.lv()
	h.oekNonce = r.take(NonceSize)
	h.sealedOEK = r.take(KeySize + TagSize)
	h.commitment = r.take(CommitmentSize)
	h.metaNonce = r.take(NonceSize)
	if r.bad || len(r.b) < TagSize {
		return nil, fmt.Errorf("%w: header too short", ErrFormat)
	}
	if !h.layout.valid() {
		return nil, fmt.Errorf("%w: unknown layout %d", ErrFormat, h.layout)
	}
	h.metaAAD = raw[: len(raw)-len(r.b) : len(raw)-len(r.b)]
	h.sealedMeta = r.b
	return h, nil
}

// Object is an unsealed object key with its derived keys. It is safe for
// concurrent use by several DecryptReaders; Close it when done.
type Object struct {
	cfg     Config
	version byte
	flags   Flags // as written in the header this Object was made or opened with
	layout  Layout
	keyInfo KeyInfo
	oek     []byte
	keys    *derived
	body    cipher.AEAD // nil for multipart
	meta    []byte
	header  string
	sealed  atomic.Bool // EncryptReader may run once, and only on new objects

	// comp and plainSize: a compressed object's sealed parameters and size.
	comp      *Compression
	plainSize int64
	hdrMask   cipher.Block // masks the block headers of a compressed body
	closed    atomic.Bool
}

// NewObject makes a fresh OEK, seals it to (bucket, key) with dek, and seals
// meta; see Config.NewObject.
func NewObject(dek []byte, ki KeyInfo, bucket, key string, layout Layout, meta []byte) (*Object, error) {
	return Config{}.NewObject(dek, ki, bucket, key, layout, meta)
}

// NewObject makes a fresh OEK, seals it to (bucket, key) with dek, and seals
// meta. The Object's HeaderValue is the metadata value to store; for the
// single layout its EncryptReader encrypts the body (once).
func (c Config) NewObject(dek []byte, ki KeyInfo, bucket, key string, layout Layout, meta []byte) (*Object, error) {
	if !layout.valid() {
		return nil, fmt.Errorf("%w: unknown layout %d", ErrLayout, layout)
	}
	if len(dek) != KeySize {
		return nil, ErrKeySize
	}
	oek, err := randKey(c.rand())
	if err != nil {
		return nil, err
	}
	o, err := newObject(c, oek, c.writeVersion(), layout)
	if err != nil {
		clear(oek)
		return nil, err
	}
	o.flags = c.Flags & FlagCompressed
	if o.flags != 0 && layout == LayoutMultipart {
		// A multipart object whose parts may be compressed (FORMAT.md
		// 12.2.3): each part says how; the object has no parameters.
		if err := checkMultipartCompressedMeta(meta); err != nil {
			o.Close()
			return nil, err
		}
	} else if o.flags != 0 {
		if o.comp, o.plainSize, err = compressedParams(meta); err != nil {
			o.Close()
			return nil, err
		}
		if err := CheckLevel(o.comp.Algorithm, c.Level); err != nil {
			o.Close()
			return nil, err
		}
		if o.hdrMask, err = blockHeaderKey(o.oek, o.version); err != nil {
			o.Close()
			return nil, err
		}
	}
	o.header, o.flags, err = o.seal(dek, ki, bucket, key, meta)
	if err != nil {
		o.Close()
		return nil, err
	}
	o.keyInfo = KeyInfo{KeyID: ki.KeyID, Wrapped: append([]byte(nil), ki.Wrapped...), Flags: o.flags & FlagAsymmetricWrap}
	o.meta = append([]byte(nil), meta...)
	return o, nil
}

func newObject(c Config, oek []byte, version byte, layout Layout) (*Object, error) {
	keys, err := derive(oek, version, false)
	if err != nil {
		return nil, err
	}
	o := &Object{cfg: c, version: version, layout: layout, oek: oek, keys: keys}
	if layout == LayoutSingle {
		if o.body, err = newGCM(keys.body[:]); err != nil {
			keys.zero()
			return nil, err
		}
	}
	return o, nil
}

// seal builds a header value for o's OEK bound to (bucket, key) under dek.
// Its flags are o's body flags (FlagCompressed: a property of the body,
// which a reseal does not touch) and the wrap flag of ki or o's Config; it
// returns them with the value.
func (o *Object) seal(dek []byte, ki KeyInfo, bucket, key string, meta []byte) (string, Flags, error) {
	if o.closed.Load() {
		return "", 0, ErrClosed
	}
	if err := checkKeyInfo(ki); err != nil {
		return "", 0, err
	}
	flags, err := writeFlags(o.version, o.flags&FlagCompressed, o.cfg, ki)
	if err != nil {
		return "", 0, err
	}
	if o.flags&FlagCompressed != 0 && o.layout == LayoutMultipart {
		if err := checkMultipartCompressedMeta(meta); err != nil {
			return "", 0, err
		}
	}
	if o.comp != nil {
		// The body does not change: neither may what describes it.
		c, size, err := compressedParams(meta)
		if err != nil {
			return "", 0, err
		}
		if *c != *o.comp || size != o.plainSize {
			return "", 0, fmt.Errorf("%w: resealed metadata changes the compressed body's parameters", ErrFormat)
		}
	}
	aad, err := keyAAD(o.version, o.layout, bucket, key, 0, nil)
	if err != nil {
		return "", 0, err
	}
	rnd := o.cfg.rand()
	nonce, sealedOEK, err := sealKey(rnd, dek, o.oek, aad)
	if err != nil {
		return "", 0, err
	}
	raw := make([]byte, 0, 7+2+len(ki.KeyID)+2+len(ki.Wrapped)+NonceSize+len(sealedOEK)+CommitmentSize+NonceSize+len(meta)+TagSize)
	raw = append(raw, objectMagic...)
	raw = append(raw, o.version, byte(flags), byte(o.layout))
	raw = appendLV(raw, []byte(ki.KeyID))
	raw = appendLV(raw, ki.Wrapped)
	raw = append(raw, nonce[:]...)
	raw = append(raw, sealedOEK...)
	raw = append(raw, o.keys.commit[:]...)
	var metaNonce [NonceSize]byte
	if _, err := io.ReadFull(rnd, metaNonce[:]); err != nil {
		return "", 0, fmt.Errorf("envelope: random source: %w", err)
	}
	raw = append(raw, metaNonce[:]...)
	if n := HeaderValueLen(ki, len(meta)); n > MaxHeaderValueLen {
		return "", 0, fmt.Errorf("%w: header value would be %d bytes, limit %d (metadata blob %d bytes)", ErrTooLarge, n, MaxHeaderValueLen, len(meta))
	}
	g, err := newGCM(o.keys.meta[:])
	if err != nil {
		return "", 0, err
	}
	// The AAD is every header byte so far, the flags byte included: a flag
	// changed at the store fails to open.
	raw = g.Seal(raw, metaNonce[:], meta, raw)
	return headerEncoding.EncodeToString(raw), flags, nil
}

// HeaderValueLen is the length of the header value (base64 text) of a
// header sealed under ki with a metadata blob of metaLen bytes; a writer
// refuses one longer than MaxHeaderValueLen (ErrTooLarge).
func HeaderValueLen(ki KeyInfo, metaLen int) int {
	raw := 7 + 2 + len(ki.KeyID) + 2 + len(ki.Wrapped) + NonceSize + KeySize + TagSize + CommitmentSize + NonceSize + metaLen + TagSize
	return headerEncoding.EncodedLen(raw)
}

// Open unseals the header with dek for (bucket, key), checks the key
// commitment, and decrypts the metadata blob; see Config.Open.
func Open(h *Header, dek []byte, bucket, key string) (*Object, error) {
	return Config{}.Open(h, dek, bucket, key)
}

// Open unseals the header with dek for (bucket, key), checks the key
// commitment (before anything else is decrypted with the object key), and
// decrypts the metadata blob. The returned Object decrypts but cannot
// encrypt (its nonces may already be spent); Reseal uses c.Rand.
func (c Config) Open(h *Header, dek []byte, bucket, key string) (*Object, error) {
	if len(dek) != KeySize {
		return nil, ErrKeySize
	}
	aad, err := keyAAD(h.version, h.layout, bucket, key, 0, nil)
	if err != nil {
		return nil, err
	}
	oek, err := openKey(dek, h.oekNonce, h.sealedOEK, aad)
	if err != nil {
		return nil, err
	}
	o, err := c.openHeader(h, oek)
	if err != nil {
		return nil, err
	}
	if o.flags&FlagCompressed != 0 && o.layout == LayoutMultipart {
		if err := checkMultipartCompressedMeta(o.meta); err != nil {
			o.Close()
			return nil, err
		}
	} else if o.flags&FlagCompressed != 0 {
		if o.comp, o.plainSize, err = compressedParams(o.meta); err != nil {
			o.Close()
			return nil, err
		}
		if o.hdrMask, err = blockHeaderKey(o.oek, o.version); err != nil {
			o.Close()
			return nil, err
		}
	}
	return o, nil
}

// openHeader makes the Object of header h from its object key oek, which
// it takes over (and clears on failure): it checks the key commitment
// before anything else is decrypted with oek, then opens the metadata
// blob, whose AAD covers every header byte before it.
func (c Config) openHeader(h *Header, oek []byte) (*Object, error) {
	o, err := newObject(c, oek, h.version, h.layout)
	if err != nil {
		clear(oek)
		return nil, err
	}
	if subtle.ConstantTimeCompare(o.keys.commit[:], h.commitment) != 1 {
		o.Close()
		return nil, ErrCommitment
	}
	g, err := newGCM(o.keys.meta[:])
	if err != nil {
		o.Close()
		return nil, err
	}
	meta, err := g.Open(nil, h.metaNonce, h.sealedMeta, h.metaAAD)
	if err != nil {
		o.Close()
		return nil, fmt.Errorf("%w: metadata blob", ErrAuth)
	}
	o.meta = meta
	o.flags = h.flags
	o.keyInfo = h.KeyInfo()
	o.header = headerEncoding.EncodeToString(h.raw)
	o.sealed.Store(true)
	return o, nil
}

// HeaderValue returns the metadata value to store under MetadataKey.
func (o *Object) HeaderValue() string { return o.header }

// Meta returns the decrypted metadata blob. The caller must not modify it.
func (o *Object) Meta() []byte { return o.meta }

// Layout returns the object's layout.
func (o *Object) Layout() Layout { return o.layout }

// Version returns the object's format version.
func (o *Object) Version() int { return int(o.version) }

// Flags returns the flags of the object's header.
func (o *Object) Flags() Flags { return o.flags }

// KeyInfo returns the key info the header was sealed with.
func (o *Object) KeyInfo() KeyInfo { return o.keyInfo }

// Reseal returns a new header value for the same OEK bound to another path
// (copy, rename) and/or another DEK, with a new metadata blob. The body is
// unchanged, and so are the header's version and FlagCompressed;
// FlagAsymmetricWrap is set if ki (or o's Config) has it. o itself (and its
// HeaderValue) is not modified.
func (o *Object) Reseal(dek []byte, ki KeyInfo, bucket, key string, meta []byte) (string, error) {
	if len(dek) != KeySize {
		return "", ErrKeySize
	}
	v, _, err := o.seal(dek, ki, bucket, key, meta)
	return v, err
}

// Close zeroes the object key, the derived keys and the metadata blob. The
// AES key schedules inside the cipher.AEAD values cannot be reached and are
// left to the garbage collector. Readers created from o must not be used
// after Close.
func (o *Object) Close() {
	if o.closed.Swap(true) {
		return
	}
	clear(o.oek)
	o.keys.zero()
	clear(o.meta)
	o.body, o.hdrMask = nil, nil
}

// EncryptReader returns the sealed body of a single-layout object whose
// plaintext is the plainLen bytes of src. The stream is exactly
// CiphertextSize(plainLen) bytes. If src yields fewer or more than plainLen
// bytes the stream fails with ErrSizeMismatch; if src fails, with src's error
// (unchanged). The final segment is emitted only after src has returned
// io.EOF, so a source that fails at its end (a checksum mismatch) never lets
// the stream complete. An Object encrypts one body only, once: a second call,
// or a call on an Object from Open, fails with ErrReused.
//
// The reader also implements io.WriterTo and io.Closer (Close zeroes and
// releases its buffer early).
func (o *Object) EncryptReader(src io.Reader, plainLen int64) io.Reader {
	switch {
	case o.closed.Load():
		return &errReader{ErrClosed}
	case o.layout != LayoutSingle:
		return &errReader{fmt.Errorf("%w: EncryptReader on a %v object (use NewPart)", ErrLayout, o.layout)}
	case o.comp != nil:
		return &errReader{fmt.Errorf("%w: EncryptReader on a compressed object (use EncryptCompressedReader)", ErrLayout)}
	case plainLen < 0 || plainLen > MaxObjectSize:
		return &errReader{fmt.Errorf("%w: plaintext length %d", ErrTooLarge, plainLen)}
	case o.sealed.Swap(true):
		return &errReader{ErrReused}
	}
	return newEncReader(o.body, 0, SegmentSize, src, plainLen, nil, 0)
}

// DecryptReader reads the stored body bytes starting at cipherOff, where
// (cipherOff, cipherLen) = CipherRange(plainLen, off, n), and yields exactly
// plaintext [off, off+n) of the object. It consumes exactly cipherLen bytes
// of src, never more. Authentication failures fail with ErrAuth, a short
// source with ErrTruncated; no plaintext of a segment that fails is ever
// returned. plainLen must be the object's true size (from the sealed
// metadata or PlaintextSize of the stored size): a wrong one fails with
// ErrAuth or ErrTruncated.
//
// The reader also implements io.WriterTo and io.Closer.
func (o *Object) DecryptReader(src io.Reader, plainLen, off, n int64) io.Reader {
	switch {
	case o.closed.Load():
		return &errReader{ErrClosed}
	case o.layout != LayoutSingle:
		return &errReader{fmt.Errorf("%w: DecryptReader on a %v object (use OpenPart)", ErrLayout, o.layout)}
	case o.comp != nil:
		return &errReader{fmt.Errorf("%w: DecryptReader on a compressed object (use DecryptCompressedReader)", ErrLayout)}
	}
	return newDecReader(o.body, 0, SegmentSize, src, plainLen, off, n, 0)
}
