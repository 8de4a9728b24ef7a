package envelope

import (
	"crypto/cipher"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"sync/atomic"
)

// Part header, versions 1, 2 and 3 (FORMAT.md "Multipart parts"),
// PartHeaderSize bytes; versions 2 and 3 have the same bytes, and their part
// key is sealed to the upload identity too:
//
//	off   size  field
//	0     4     magic "S3SP"
//	4     1     version (1, 2 or 3)
//	5     1     flags (0 before version 3; the Flag bits in version 3)
//	6     1     log2 of the part's segment size (16..23); of a compressed
//	            part's block size (16..22)
//	7     1     reserved (0); a compressed part's algorithm (1 s2, 2 zstd)
//	8     4     part number, uint32 (1..10000)
//	12    8     plaintext length of the part, uint64 (0..5 GiB)
//	20    2+K   KMS key id, uint16 length-prefixed
//	.     2+W   wrapped DEK, uint16 length-prefixed
//	.     12    part key nonce
//	.     48    sealed part key (32 + tag)
//	.     32    key commitment of the part key
//	.     8     compressed parts only (flag FlagCompressed): the stored
//	            length B of the part's compressed body, uint64
//	.     ...   zero bytes up to offset 4080
//	4080  16    header tag: AES-256-GCM under the part header key, nonce
//	            all-zero, empty plaintext, AAD = bytes [0, 4080)
const (
	partMagic     = "S3SP"
	partTagOffset = PartHeaderSize - TagSize
	partFixedHead = 20
)

// PartHeader is a decoded part header. Parsing needs no key; OpenPart
// authenticates it.
type PartHeader struct {
	raw        [PartHeaderSize]byte
	version    byte
	flags      Flags
	partNumber int
	plainLen   int64
	segSize    int
	keyID      string
	wrapped    []byte
	nonce      []byte
	sealedKey  []byte
	commitment []byte

	// comp and bodyLen: a compressed part's algorithm and block size, and
	// the stored length B of its body (FORMAT.md 12.2.3); comp is nil for
	// a part of segments.
	comp    *Compression
	bodyLen int64
}

// Compressed-part constants (FORMAT.md 12.2.3).
const (
	// MinStoredPartSize is S3's smallest part but the last (5 MiB): a
	// compressed part that would be at least this large uncompressed is
	// padded with zeros up to it, since the proxy cannot tell at
	// UploadPart whether the part is the last.
	MinStoredPartSize int64 = 5 << 20

	algByteS2   = 1
	algByteZstd = 2
	bodyLenSize = 8
)

// algByte and algFromByte map an algorithm to offset 7 of a compressed
// part header and back.
func algByte(a Algorithm) byte {
	switch a {
	case AlgS2:
		return algByteS2
	case AlgZstd:
		return algByteZstd
	}
	return 0
}

func algFromByte(b byte) (Algorithm, bool) {
	switch b {
	case algByteS2:
		return AlgS2, true
	case algByteZstd:
		return AlgZstd, true
	}
	return "", false
}

// CompressedPartPad is the zero padding after a compressed part's body of
// bodyLen stored bytes for a plaintext of plain bytes: up to a stored part
// of MinStoredPartSize when the part would be stored in at least that much
// uncompressed (plain + PartOverhead), none otherwise (a part that small
// can only be a last part, which S3 lets be small).
func CompressedPartPad(plain, bodyLen int64) int64 {
	if plain+PartOverhead < MinStoredPartSize {
		return 0
	}
	return max(0, MinStoredPartSize-PartHeaderSize-bodyLen)
}

// Version returns the part header's format version.
func (ph *PartHeader) Version() int { return int(ph.version) }

// Flags returns the part header's flags (always 0 before version 3). They
// are authenticated by OpenPart (the header tag covers them).
func (ph *PartHeader) Flags() Flags { return ph.flags }

// Digest returns the SHA-256 of the whole part header (PartHeaderSize
// bytes): what a manifest commits to for this part.
func (ph *PartHeader) Digest() [32]byte { return sha256.Sum256(ph.raw[:]) }

// Bytes returns a copy of the PartHeaderSize stored bytes of the header.
func (ph *PartHeader) Bytes() []byte { return append([]byte(nil), ph.raw[:]...) }

// PartNumber returns the S3 part number the part was sealed for.
func (ph *PartHeader) PartNumber() int { return ph.partNumber }

// PlainLen returns the part's plaintext length.
func (ph *PartHeader) PlainLen() int64 { return ph.plainLen }

// SegmentSize returns the part's segment size (0 for a compressed part,
// which has blocks instead: Compression).
func (ph *PartHeader) SegmentSize() int { return ph.segSize }

// Compression returns a compressed part's algorithm and block size, nil
// for a part of segments.
func (ph *PartHeader) Compression() *Compression {
	if ph.comp == nil {
		return nil
	}
	c := *ph.comp
	return &c
}

// BodyLen returns the stored length B of a compressed part's body (blocks
// and index, without header and padding); for a part of segments, its
// segments and padding (PlainLen() + PartOverhead − PartHeaderSize).
func (ph *PartHeader) BodyLen() int64 {
	if ph.comp == nil {
		return ph.plainLen + PartOverhead - PartHeaderSize
	}
	return ph.bodyLen
}

// PadSize returns the zero padding after a compressed part's body (0 for
// a part of segments, whose padding is part of BodyLen).
func (ph *PartHeader) PadSize() int64 {
	if ph.comp == nil {
		return 0
	}
	return CompressedPartPad(ph.plainLen, ph.bodyLen)
}

// CiphertextSize returns the part's stored size, header included:
// PlainLen() + PartOverhead for a part of segments, PartHeaderSize +
// BodyLen() + PadSize() for a compressed part.
func (ph *PartHeader) CiphertextSize() int64 {
	if ph.comp == nil {
		return PartCiphertextSize(ph.plainLen)
	}
	return PartHeaderSize + ph.bodyLen + ph.PadSize()
}

// KeyInfo returns the KMS key id and wrapped DEK to unwrap for OpenPart.
func (ph *PartHeader) KeyInfo() KeyInfo {
	return KeyInfo{KeyID: ph.keyID, Wrapped: append([]byte(nil), ph.wrapped...), Flags: ph.flags & FlagAsymmetricWrap}
}

// ParsePartHeader decodes the first PartHeaderSize bytes of a stored part
// (b may be longer; the rest is ignored). It checks structure only;
// OpenPart authenticates.
func ParsePartHeader(b []byte) (*PartHeader, error) {
	if len(b) < PartHeaderSize {
		return nil, fmt.Errorf("%w: part header is %d bytes, want %d", ErrFormat, len(b), PartHeaderSize)
	}
	ph := new(PartHeader)
	copy(ph.raw[:], b)
	raw := ph.raw[:partTagOffset]
	if string(raw[0:4]) != partMagic {
		return nil, fmt.Errorf("%w: bad part header magic", ErrFormat)
	}
	if !validVersion(raw[4]) {
		return nil, fmt.Errorf("%w: part header version %d", ErrVersion, raw[4])
	}
	ph.version = raw[4]
	if err := checkFlags(ph.version, raw[5]); err != nil {
		return nil, err
	}
	ph.flags = Flags(raw[5])
	compressed := ph.flags&FlagCompressed != 0
	if !compressed && raw[7] != 0 {
		return nil, fmt.Errorf("%w: unknown part header flags", ErrFormat)
	}
	ph.partNumber = int(binary.BigEndian.Uint32(raw[8:12]))
	if ph.partNumber < MinPartNumber || ph.partNumber > MaxPartNumber {
		return nil, fmt.Errorf("%w: part number %d", ErrFormat, ph.partNumber)
	}
	pl := binary.BigEndian.Uint64(raw[12:20])
	if pl > uint64(MaxPartSize) {
		return nil, fmt.Errorf("%w: part length %d", ErrFormat, pl)
	}
	ph.plainLen = int64(pl)
	if compressed {
		// Offset 6 is the block size, 7 the algorithm (FORMAT.md 12.2.3).
		alg, ok := algFromByte(raw[7])
		if !ok {
			return nil, fmt.Errorf("%w: compressed part algorithm %d", ErrFormat, raw[7])
		}
		ph.comp = &Compression{Algorithm: alg, BlockSize: 1 << min(raw[6], 31)}
		if err := ph.comp.check(); err != nil {
			return nil, err
		}
	} else {
		ph.segSize = PartSegmentSize(ph.plainLen)
		if raw[6] != byte(bits.Len(uint(ph.segSize))-1) {
			return nil, fmt.Errorf("%w: segment size 2^%d for a part of %d bytes", ErrFormat, raw[6], ph.plainLen)
		}
	}
	r := &reader{b: raw[partFixedHead:]}
	ph.keyID = string(r.lv())
	ph.wrapped = r.lv()
	ph.nonce = r.take(NonceSize)
	ph.sealedKey = r.take(KeySize + TagSize)
	ph.commitment = r.take(CommitmentSize)
	if compressed {
		if b := r.take(bodyLenSize); b != nil {
			bl := binary.BigEndian.Uint64(b)
			lo, hi := ph.comp.CompressedSizeBounds(ph.plainLen)
			if bl < uint64(lo) || bl > uint64(hi) {
				return nil, fmt.Errorf("%w: compressed part body of %d bytes for %d plaintext bytes", ErrFormat, bl, ph.plainLen)
			}
			ph.bodyLen = int64(bl)
		}
	}
	if r.bad {
		return nil, fmt.Errorf("%w: part header fields overflow", ErrFormat)
	}
	for _, x := range r.b {
		if x != 0 {
			return nil, fmt.Errorf("%w: non-zero part header padding", ErrFormat)
		}
	}
	return ph, nil
}

// Part is an unsealed part key: it encrypts (once, if new) or decrypts one
// part of a multipart object.
type Part struct {
	ph     *PartHeader
	pk     []byte
	upload []byte // the upload identity the part key is sealed to (nil: version 1)
	keys   *derived
	body   cipher.AEAD
	sealed atomic.Bool
	closed atomic.Bool

	// A compressed part's (FORMAT.md 12.2.3): its parameters and the block
	// header mask. For a new compressed part, ph is nil until
	// EncryptCompressed has sealed the body, whose length the header holds;
	// pending keeps the header fields sealed at NewCompressedPart.
	comp    *Compression
	level   Level // how hard a new compressed part is compressed (written nowhere)
	hdrMask cipher.Block
	pending *pendingPartHeader
	enc     *compEncReader // the body being sealed, for its length
}

// pendingPartHeader is what NewCompressedPart seals before the body: all
// of the header but its body length and tag.
type pendingPartHeader struct {
	ki         KeyInfo
	nonce      [NonceSize]byte
	sealedKey  []byte
	version    byte
	flags      Flags
	partNumber int
	plainLen   int64
}

// NewPart makes a fresh part key for part partNumber (1..10000) of the
// multipart upload `upload` to (bucket, key), seals it with dek and builds
// the part header; see Config.NewPart.
func NewPart(dek []byte, ki KeyInfo, bucket, key string, upload []byte, partNumber int, plainLen int64) (*Part, error) {
	return Config{}.NewPart(dek, ki, bucket, key, upload, partNumber, plainLen)
}

// NewPart makes a fresh part key for part partNumber (1..10000) of the
// multipart upload `upload` (its UploadIDSize-byte identity, from
// NewUploadID) to (bucket, key), whose plaintext is plainLen bytes
// (0..5 GiB), seals it with dek and builds the part header. Its
// EncryptReader emits the whole stored part (header, segments, padding)
// once.
func (c Config) NewPart(dek []byte, ki KeyInfo, bucket, key string, upload []byte, partNumber int, plainLen int64) (*Part, error) {
	version := c.writeVersion()
	p, aad, rnd, err := c.newPartKey(dek, ki, bucket, key, upload, partNumber, plainLen, version)
	if err != nil {
		return nil, err
	}
	flags, err := writeFlags(version, c.Flags&FlagCompressed, c, ki)
	if err != nil {
		p.Close()
		return nil, err
	}
	if flags&FlagCompressed != 0 {
		p.Close()
		return nil, fmt.Errorf("%w: a compressed part is made by NewCompressedPart", ErrFormat)
	}
	ph, err := p.sealHeader(rnd, dek, ki, aad, version, flags, partNumber, plainLen, nil, 0)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.ph = ph
	return p, nil
}

// newPartKey checks a new part's parameters (the data key, the upload
// identity a version 2 or later part is sealed to, part number, length, a
// key id and wrapped key that fit the header) and makes its fresh part
// key; aad binds it to (bucket, key, partNumber, upload), and rnd is the
// randomness to seal it with.
func (c Config) newPartKey(dek []byte, ki KeyInfo, bucket, key string, upload []byte, partNumber int, plainLen int64, version byte) (p *Part, aad []byte, rnd io.Reader, err error) {
	if len(dek) != KeySize {
		return nil, nil, nil, ErrKeySize
	}
	if version >= 2 && len(upload) != UploadIDSize {
		return nil, nil, nil, fmt.Errorf("%w: upload identity of %d bytes, want %d", ErrFormat, len(upload), UploadIDSize)
	}
	if partNumber < MinPartNumber || partNumber > MaxPartNumber {
		return nil, nil, nil, fmt.Errorf("%w: part number %d", ErrRange, partNumber)
	}
	if plainLen < 0 || plainLen > MaxPartSize {
		return nil, nil, nil, fmt.Errorf("%w: part of %d bytes (limit %d)", ErrTooLarge, plainLen, MaxPartSize)
	}
	if err := partKeyFits(ki); err != nil {
		return nil, nil, nil, err
	}
	if aad, err = keyAAD(version, LayoutMultipart, bucket, key, uint32(partNumber), upload); err != nil {
		return nil, nil, nil, err
	}
	rnd = c.rand()
	pk, err := randKey(rnd)
	if err != nil {
		return nil, nil, nil, err
	}
	if p, err = newPart(pk, version); err != nil {
		clear(pk)
		return nil, nil, nil, err
	}
	p.upload = append([]byte(nil), upload...)
	return p, aad, rnd, nil
}

// partKeyFits reports whether a key id and wrapped key leave room for the
// rest of a part header (the body length of a compressed part included).
func partKeyFits(ki KeyInfo) error {
	if err := checkKeyInfo(ki); err != nil {
		return err
	}
	if partFixedHead+2+len(ki.KeyID)+2+len(ki.Wrapped)+NonceSize+KeySize+TagSize+CommitmentSize+bodyLenSize > partTagOffset {
		return fmt.Errorf("%w: key id and wrapped key do not fit the part header", ErrTooLarge)
	}
	return nil
}

// sealHeader seals p's part key with dek under aad (a fresh nonce from
// rnd) and builds the part header around it, header tag included. comp and
// bodyLen are a compressed part's (nil, 0 otherwise).
func (p *Part) sealHeader(rnd io.Reader, dek []byte, ki KeyInfo, aad []byte, version byte, flags Flags, partNumber int, plainLen int64, comp *Compression, bodyLen int64) (*PartHeader, error) {
	nonce, sealedKey, err := sealKey(rnd, dek, p.pk, aad)
	if err != nil {
		return nil, err
	}
	return p.buildHeader(ki, nonce, sealedKey, version, flags, partNumber, plainLen, comp, bodyLen)
}

// buildHeader lays out a part header around a sealed part key and tags it.
func (p *Part) buildHeader(ki KeyInfo, nonce [NonceSize]byte, sealedKey []byte, version byte, flags Flags, partNumber int, plainLen int64, comp *Compression, bodyLen int64) (*PartHeader, error) {
	ph := &PartHeader{version: version, flags: flags, partNumber: partNumber, plainLen: plainLen}
	b := ph.raw[:0]
	b = append(b, partMagic...)
	if comp != nil {
		// Offset 6: log2 of the block size; offset 7: the algorithm.
		c := *comp
		ph.comp, ph.bodyLen = &c, bodyLen
		b = append(b, version, byte(flags), byte(bits.Len(uint(c.BlockSize))-1), algByte(c.Algorithm))
	} else {
		ph.segSize = PartSegmentSize(plainLen)
		b = append(b, version, byte(flags), byte(bits.Len(uint(ph.segSize))-1), 0)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(partNumber))
	b = binary.BigEndian.AppendUint64(b, uint64(plainLen))
	b = appendLV(b, []byte(ki.KeyID))
	b = appendLV(b, ki.Wrapped)
	b = append(b, nonce[:]...)
	b = append(b, sealedKey...)
	b = append(b, p.keys.commit[:]...)
	if comp != nil {
		b = binary.BigEndian.AppendUint64(b, uint64(bodyLen))
	}
	if &b[0] != &ph.raw[0] {
		panic("envelope: part header outgrew its array") // guarded by partKeyFits
	}
	ph.keyID = ki.KeyID
	ph.wrapped = append([]byte(nil), ki.Wrapped...)
	off := partFixedHead + 2 + len(ki.KeyID) + 2 + len(ki.Wrapped)
	ph.nonce = ph.raw[off : off+NonceSize : off+NonceSize]
	off += NonceSize
	ph.sealedKey = ph.raw[off : off+KeySize+TagSize : off+KeySize+TagSize]
	off += KeySize + TagSize
	ph.commitment = ph.raw[off : off+CommitmentSize : off+CommitmentSize]
	if err := p.headerTag(ph.raw[partTagOffset:partTagOffset], ph.raw[:partTagOffset]); err != nil {
		return nil, err
	}
	return ph, nil
}

// Reseal returns a new header for the same part (same part key, part
// number, plaintext length and upload identity, so the same segments),
// its part key sealed with dek for another path (bucket, key) and data key
// (ki): the re-wrap of FORMAT.md 11.10, which moves a part to another
// bucket, key or KMS key without re-encrypting a segment. The stored part
// at the new path is the new header followed by the old part's bytes after
// its header, unchanged. p must come from OpenPart (or NewPart); p itself
// and its header are not modified. Randomness from crypto/rand; see
// Config.ResealPart.
func (p *Part) Reseal(dek []byte, ki KeyInfo, bucket, key string) (*PartHeader, error) {
	return Config{}.ResealPart(p, dek, ki, bucket, key)
}

// ResealPart is Part.Reseal with c's randomness (for the nonce).
func (c Config) ResealPart(p *Part, dek []byte, ki KeyInfo, bucket, key string) (*PartHeader, error) {
	if p.closed.Load() {
		return nil, ErrClosed
	}
	if len(dek) != KeySize {
		return nil, ErrKeySize
	}
	if err := partKeyFits(ki); err != nil {
		return nil, err
	}
	ph := p.ph
	if ph == nil {
		return nil, fmt.Errorf("%w: compressed part not sealed yet", ErrFormat)
	}
	aad, err := keyAAD(ph.version, LayoutMultipart, bucket, key, uint32(ph.partNumber), p.upload)
	if err != nil {
		return nil, err
	}
	// The body flags stay (they describe the segments or blocks, which
	// are kept), and so do a compressed part's block size, algorithm and
	// body length; the wrap flag is the new key info's.
	flags, err := writeFlags(ph.version, ph.flags&FlagCompressed, c, ki)
	if err != nil {
		return nil, err
	}
	return p.sealHeader(c.rand(), dek, ki, aad, ph.version, flags, ph.partNumber, ph.plainLen, ph.comp, ph.bodyLen)
}

func newPart(pk []byte, version byte) (*Part, error) {
	keys, err := derive(pk, version, true)
	if err != nil {
		return nil, err
	}
	body, err := newGCM(keys.body[:])
	if err != nil {
		keys.zero()
		return nil, err
	}
	return &Part{pk: pk, keys: keys, body: body}, nil
}

// headerTag appends the part header tag over aad to dst.
func (p *Part) headerTag(dst, aad []byte) error {
	g, err := newGCM(p.keys.partHeader[:])
	if err != nil {
		return err
	}
	var zeroNonce [NonceSize]byte
	g.Seal(dst, zeroNonce[:], nil, aad)
	return nil
}

// OpenPart unseals a part header with dek for (bucket, key), the upload
// identity (nil for a version 1 part) and the part number recorded in the
// header, checks the key commitment, then the header tag. A version 2 part
// opens only with the identity of the upload it was sent to; a version 1
// part has none and does not open with one (PartMap.Verify also refuses a
// map that mixes them up). The caller checks that
// ph.PartNumber() is the part it expects. The returned Part decrypts only.
func OpenPart(ph *PartHeader, dek []byte, bucket, key string, upload []byte) (*Part, error) {
	if len(dek) != KeySize {
		return nil, ErrKeySize
	}
	if ph.version >= 2 && len(upload) != UploadIDSize {
		return nil, fmt.Errorf("%w: version %d part without its upload identity", ErrAuth, ph.version)
	}
	aad, err := keyAAD(ph.version, LayoutMultipart, bucket, key, uint32(ph.partNumber), upload)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAuth, err)
	}
	pk, err := openKey(dek, ph.nonce, ph.sealedKey, aad)
	if err != nil {
		return nil, err
	}
	p, err := newPart(pk, ph.version)
	if err != nil {
		clear(pk)
		return nil, err
	}
	if subtle.ConstantTimeCompare(p.keys.commit[:], ph.commitment) != 1 {
		p.Close()
		return nil, ErrCommitment
	}
	var tag [TagSize]byte
	if err := p.headerTag(tag[:0], ph.raw[:partTagOffset]); err != nil {
		p.Close()
		return nil, err
	}
	if subtle.ConstantTimeCompare(tag[:], ph.raw[partTagOffset:]) != 1 {
		p.Close()
		return nil, fmt.Errorf("%w: part header tag", ErrAuth)
	}
	if ph.comp != nil {
		c := *ph.comp
		p.comp = &c
		if p.hdrMask, err = blockHeaderKey(p.pk, ph.version); err != nil {
			p.Close()
			return nil, err
		}
	}
	p.ph = ph
	p.upload = append([]byte(nil), upload...)
	p.sealed.Store(true)
	return p, nil
}

// Header returns the part's header.
func (p *Part) Header() *PartHeader { return p.ph }

// PartNumber returns the part number.
func (p *Part) PartNumber() int {
	if p.ph == nil { // a new compressed part, not sealed yet
		return p.pending.partNumber
	}
	return p.ph.partNumber
}

// PlainLen returns the part's plaintext length.
func (p *Part) PlainLen() int64 {
	if p.ph == nil { // a new compressed part, not sealed yet
		return p.pending.plainLen
	}
	return p.ph.plainLen
}

// CiphertextSize returns the stored size of the part (PartHeader.CiphertextSize);
// -1 for a new compressed part whose body is not sealed yet (its size is
// known only then).
func (p *Part) CiphertextSize() int64 {
	if p.ph == nil {
		return -1
	}
	return p.ph.CiphertextSize()
}

// EncryptReader returns the whole stored part: the PartHeaderSize-byte
// header, the segments, and the zero padding, exactly
// PartCiphertextSize(PlainLen()) bytes. src must yield exactly PlainLen()
// bytes; the EOF rule of Object.EncryptReader applies (the final segment
// is emitted only after src returned io.EOF cleanly). Once per Part, and
// only on a Part from NewPart (ErrReused otherwise).
//
// The reader also implements io.WriterTo and io.Closer.
func (p *Part) EncryptReader(src io.Reader) io.Reader {
	switch {
	case p.closed.Load():
		return &errReader{ErrClosed}
	case p.comp != nil:
		return &errReader{fmt.Errorf("%w: a compressed part is sealed by EncryptCompressed", ErrLayout)}
	case p.sealed.Swap(true):
		return &errReader{ErrReused}
	}
	ph := p.ph
	return newEncReader(p.body, uint32(ph.partNumber), ph.segSize, src, ph.plainLen, ph.raw[:], padSize(ph.plainLen, ph.segSize))
}

// DecryptReader yields plaintext [off, off+n) of the part (offsets within
// the part's plaintext). src must be positioned at the part's start plus
// cipherOff, where (cipherOff, cipherLen) = PartCipherRange(p.Header(), off, n)
// (offsets relative to the start of the stored part, header included). It
// consumes exactly cipherLen bytes and checks the padding when the range
// reaches the last segment. Errors as for Object.DecryptReader.
//
// To decrypt a whole part read from its start: parse the first
// PartHeaderSize bytes, OpenPart, then DecryptReader(src, 0, PlainLen()).
func (p *Part) DecryptReader(src io.Reader, off, n int64) io.Reader {
	if p.closed.Load() {
		return &errReader{ErrClosed}
	}
	ph := p.ph
	if ph.comp != nil {
		return p.DecryptCompressedReader(src, nil, off, n)
	}
	return newDecReader(p.body, uint32(ph.partNumber), ph.segSize, src, ph.plainLen, off, n, padSize(ph.plainLen, ph.segSize))
}

// Close zeroes the part key and its derived keys.
func (p *Part) Close() {
	if p.closed.Swap(true) {
		return
	}
	clear(p.pk)
	p.keys.zero()
}
