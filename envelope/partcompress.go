package envelope

import (
	"fmt"
	"io"
)

// Compressed parts (format version 3, FlagCompressed in the part header;
// FORMAT.md 12.2.3).
//
// A compressed part is
//
//	part header (4096 bytes) || body (B bytes) || zero padding
//
// where the body is exactly the compressed body of a single object
// (compress.go: masked block headers, blocks, sealed index) of the part's
// plaintext, under the part's body key and block header key, with the part
// number in every nonce. The header holds the block size (offset 6), the
// algorithm (offset 7) and B (right after the key commitment); the padding
// is CompressedPartPad(P, B): S3 refuses a part under 5 MiB that is not the
// last, and the writer of a part cannot tell whether it is.

// NewCompressedPart makes a fresh part key for part partNumber of the
// multipart upload `upload` to (bucket, key), as NewPart does, for a part
// whose plaintext of plainLen bytes is compressed with comp before
// encryption. The header holds the body's stored length, so it is built by
// EncryptCompressed once the body is sealed; until then Header() is nil.
// The part is version 3 with FlagCompressed (and c's wrap flag).
func (c Config) NewCompressedPart(dek []byte, ki KeyInfo, bucket, key string, upload []byte, partNumber int, plainLen int64, comp Compression) (*Part, error) {
	if err := comp.check(); err != nil {
		return nil, err
	}
	version := max(c.writeVersion(), FlagsVersion)
	p, aad, rnd, err := c.newPartKey(dek, ki, bucket, key, upload, partNumber, plainLen, version)
	if err != nil {
		return nil, err
	}
	flags, err := writeFlags(version, FlagCompressed, c, ki)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.comp = &comp
	p.level = c.Level
	if p.hdrMask, err = blockHeaderKey(p.pk, version); err != nil {
		p.Close()
		return nil, err
	}
	nonce, sealedKey, err := sealKey(rnd, dek, p.pk, aad)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.pending = &pendingPartHeader{ki: KeyInfo{KeyID: ki.KeyID, Wrapped: append([]byte(nil), ki.Wrapped...)},
		nonce: nonce, sealedKey: sealedKey, version: version, flags: flags, partNumber: partNumber, plainLen: plainLen}
	return p, nil
}

// Compression returns a compressed part's algorithm and block size, nil
// for a part of segments.
func (p *Part) Compression() *Compression {
	if p.comp == nil {
		return nil
	}
	c := *p.comp
	return &c
}

// EncryptCompressed compresses and seals the part's plaintext, read from
// src (exactly the declared length, then io.EOF), and writes the body
// (blocks and index, B bytes) to body. It then builds the part header,
// which holds B, and returns it: the stored part is the header's Bytes(),
// the body, and PadSize() zero bytes. Once per Part, and only on one from
// NewCompressedPart (ErrReused otherwise). The caller spools the body: the
// store needs the part's length before its first byte.
func (p *Part) EncryptCompressed(src io.Reader, body io.Writer) (*PartHeader, error) {
	r := p.EncryptCompressedReader(src)
	if _, err := io.Copy(body, r); err != nil {
		return nil, err
	}
	return p.CompressedHeader()
}

// EncryptCompressedReader is EncryptCompressed as a reader of the body;
// once it has returned io.EOF, CompressedHeader builds the header.
func (p *Part) EncryptCompressedReader(src io.Reader) io.Reader {
	switch {
	case p.closed.Load():
		return &errReader{ErrClosed}
	case p.comp == nil || p.pending == nil:
		return &errReader{fmt.Errorf("%w: not a new compressed part", ErrLayout)}
	case p.sealed.Swap(true):
		return &errReader{ErrReused}
	}
	pd := p.pending
	p.enc = newCompEncReader(p.body, p.hdrMask, *p.comp, p.level, uint32(pd.partNumber), src, pd.plainLen)
	return p.enc
}

// CompressedHeader returns the header of a compressed part whose body
// EncryptCompressedReader has yielded whole (to io.EOF): it holds the
// body's length.
func (p *Part) CompressedHeader() (*PartHeader, error) {
	if p.ph != nil && p.comp != nil {
		return p.ph, nil
	}
	if p.closed.Load() {
		return nil, ErrClosed
	}
	if p.enc == nil || !p.enc.done || len(p.enc.out) > 0 || p.enc.err != nil {
		return nil, fmt.Errorf("%w: the compressed part's body is not sealed whole", ErrTruncated)
	}
	pd := p.pending
	ph, err := p.buildHeader(pd.ki, pd.nonce, pd.sealedKey, pd.version, pd.flags, pd.partNumber, pd.plainLen, p.comp, p.enc.emitted)
	if err != nil {
		return nil, err
	}
	p.ph, p.pending, p.enc = ph, nil, nil
	return ph, nil
}

// IndexRange returns where a compressed part's sealed block index lies,
// relative to the start of the stored part (header included): the last
// 4·nb+16 bytes of its body, before the padding.
func (ph *PartHeader) IndexRange() (off, n int64, err error) {
	if ph.comp == nil {
		return 0, 0, fmt.Errorf("%w: not a compressed part", ErrLayout)
	}
	n = blockHeaderSize*ph.comp.blocks(ph.plainLen) + TagSize
	return PartHeaderSize + ph.bodyLen - n, n, nil
}

// OpenIndex authenticates a compressed part's sealed block index (the
// IndexRange bytes) and checks that its blocks fill the body exactly. The
// index is bound to the part's header: a caller may cache it with the
// object version (store ETag) and the part's position.
func (p *Part) OpenIndex(sealed []byte) (*BlockIndex, error) {
	if p.closed.Load() {
		return nil, ErrClosed
	}
	ph := p.ph
	if ph == nil || p.comp == nil {
		return nil, fmt.Errorf("%w: not a compressed part", ErrLayout)
	}
	off, _, err := ph.IndexRange()
	if err != nil {
		return nil, err
	}
	idx, err := openIndex(p.body, p.comp, ph.plainLen, uint32(ph.partNumber), sealed, off-PartHeaderSize)
	if err != nil {
		return nil, err
	}
	idx.header = ph.Digest()
	return idx, nil
}

// CompressedPartRange maps plaintext [off, off+n) (n ≥ 1) of the
// compressed part ph to the stored range to fetch, relative to the start of
// the part (header included), given its opened block index: the blocks
// that hold the range, and when that includes the last block, the index
// and the padding after it, which the reader checks. The whole part (off 0,
// n = PlainLen()) needs no index: idx may be nil, and the range is the
// part's stored bytes after its header.
func CompressedPartRange(ph *PartHeader, idx *BlockIndex, off, n int64) (cipherOff, cipherLen int64, err error) {
	if ph.comp == nil {
		return 0, 0, fmt.Errorf("%w: not a compressed part", ErrLayout)
	}
	if off < 0 || n < 0 || off > ph.plainLen || n > ph.plainLen-off {
		return 0, 0, fmt.Errorf("%w: [%d, +%d) of a part of %d bytes", ErrRange, off, n, ph.plainLen)
	}
	if off == 0 && n == ph.plainLen {
		return PartHeaderSize, ph.CiphertextSize() - PartHeaderSize, nil
	}
	if idx == nil || idx.header != ph.Digest() {
		return 0, 0, fmt.Errorf("%w: a range of a compressed part needs its block index", ErrRange)
	}
	if n == 0 {
		return 0, 0, nil
	}
	cOff, cLen, err := idx.CipherRange(off, n)
	if err != nil {
		return 0, 0, err
	}
	if cOff+cLen == idx.starts[len(idx.hdrs)] {
		cLen = ph.CiphertextSize() - PartHeaderSize - cOff // index and padding
	}
	return PartHeaderSize + cOff, cLen, nil
}

// DecryptCompressedReader yields plaintext [off, off+n) of a compressed
// part. With idx nil it reads the whole part after its header (off 0, n =
// PlainLen()): blocks, index, padding, and releases the last block's
// plaintext only once the index opened and matched and the padding was
// all zero. With idx (from OpenIndex) src must be positioned at cipherOff
// of CompressedPartRange(p.Header(), idx, off, n), and exactly cipherLen
// bytes are consumed (the index and padding too when the range reaches the
// last block).
func (p *Part) DecryptCompressedReader(src io.Reader, idx *BlockIndex, off, n int64) io.Reader {
	switch {
	case p.closed.Load():
		return &errReader{ErrClosed}
	case p.comp == nil || p.ph == nil:
		return &errReader{fmt.Errorf("%w: not a compressed part", ErrLayout)}
	case idx != nil && idx.header != p.ph.Digest():
		return &errReader{fmt.Errorf("%w: block index of another part", ErrRange)}
	}
	ph := p.ph
	return newCompDecReader(p.body, p.hdrMask, *p.comp, ph.plainLen, uint32(ph.partNumber), ph.PadSize(), src, idx, off, n)
}
