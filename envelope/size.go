package envelope

import (
	"fmt"
	"math/bits"
)

// Size and range arithmetic. All functions are pure.

// MaxObjectSize bounds the plaintext size of one object or segment stream
// (1 PiB, far above S3's limits); it keeps all size arithmetic clear of
// int64 overflow.
const MaxObjectSize int64 = 1 << 50

// segCount is the number of segments of a plain-byte stream cut into
// seg-byte segments: at least one (an empty stream is one empty final
// segment).
func segCount(plain int64, seg int) int64 {
	if plain <= 0 {
		return 1
	}
	return (plain + int64(seg) - 1) / int64(seg)
}

// streamSize is the sealed size of a segment stream.
func streamSize(plain int64, seg int) int64 {
	return plain + TagSize*segCount(plain, seg)
}

// CiphertextSize returns the stored body size of a single-layout object of
// plain bytes: plain + 16·max(1, ⌈plain/65536⌉). It is strictly increasing.
func CiphertextSize(plain int64) int64 {
	if plain < 0 || plain > MaxObjectSize {
		return -1
	}
	return streamSize(plain, SegmentSize)
}

// PlaintextSize inverts CiphertextSize exactly; it returns ErrSize for a
// size no single-layout body can have.
func PlaintextSize(cipher int64) (int64, error) {
	const full = SegmentSize + TagSize
	if cipher < TagSize || cipher > CiphertextSize(MaxObjectSize) {
		return 0, fmt.Errorf("%w: %d bytes", ErrSize, cipher)
	}
	n := (cipher + full - 1) / full
	plain := cipher - TagSize*n
	if plain < 0 || CiphertextSize(plain) != cipher {
		return 0, fmt.Errorf("%w: %d bytes", ErrSize, cipher)
	}
	return plain, nil
}

// streamRange maps plaintext [off, off+n) of a plain-byte stream of seg-byte
// segments to the covering segment-aligned range of its sealed form. For an
// empty stream, or an empty range at its end, the whole (one-segment) stream
// is returned so that reading it authenticates; other empty ranges map to
// (0, 0). ok is false for an invalid range.
func streamRange(plain int64, seg int, off, n int64) (cOff, cLen int64, ok bool) {
	if off < 0 || n < 0 || plain < 0 || plain > MaxObjectSize || off > plain || n > plain-off {
		return 0, 0, false
	}
	if plain == 0 {
		return 0, TagSize, true
	}
	if n == 0 {
		return 0, 0, true
	}
	full := int64(seg) + TagSize
	first := off / int64(seg)
	last := (off + n - 1) / int64(seg)
	cOff = first * full
	end := (last + 1) * full
	if total := streamSize(plain, seg); end > total {
		end = total
	}
	return cOff, end - cOff, true
}

// CipherRange maps the plaintext byte range [off, off+n) of a single-layout
// object of plainLen bytes to the segment-aligned stored range [cipherOff,
// cipherOff+cipherLen) that DecryptReader needs. For an empty object it
// returns the whole body (16 bytes) so the read authenticates; for n == 0 on
// a non-empty object it returns (0, 0). For an invalid range (off < 0, n < 0,
// off+n > plainLen) it returns (0, 0) and DecryptReader fails with ErrRange.
func CipherRange(plainLen, off, n int64) (cipherOff, cipherLen int64) {
	cipherOff, cipherLen, _ = streamRange(plainLen, SegmentSize, off, n)
	return cipherOff, cipherLen
}

// PartSegmentSize returns the segment size of a part of plain bytes: 64 KiB
// if that gives at most 1024 segments, else the smallest power of two that
// does. It returns 0 for a size outside [0, MaxPartSize].
func PartSegmentSize(plain int64) int {
	if plain < 0 || plain > MaxPartSize {
		return 0
	}
	if plain <= SegmentSize*MaxPartSegments {
		return SegmentSize
	}
	need := (plain + MaxPartSegments - 1) / MaxPartSegments // ceil
	return 1 << bits.Len64(uint64(need-1))                  // next power of two ≥ need
}

// PartCiphertextSize returns the stored size of a part of plain bytes:
// plain + PartOverhead, or -1 for a size outside [0, MaxPartSize].
func PartCiphertextSize(plain int64) int64 {
	if plain < 0 || plain > MaxPartSize {
		return -1
	}
	return plain + PartOverhead
}

// PartPlaintextSize inverts PartCiphertextSize.
func PartPlaintextSize(cipher int64) (int64, error) {
	p := cipher - PartOverhead
	if p < 0 || p > MaxPartSize {
		return 0, fmt.Errorf("%w: part of %d bytes", ErrSize, cipher)
	}
	return p, nil
}

// MultipartPlaintextSize returns the plaintext size of a multipart object
// stored as parts parts (the N of its "…-N" ETag) totalling stored bytes:
// stored − parts·PartOverhead.
func MultipartPlaintextSize(stored int64, parts int) (int64, error) {
	if parts < 1 || parts > MaxPartNumber {
		return 0, fmt.Errorf("%w: %d parts", ErrSize, parts)
	}
	p := stored - int64(parts)*PartOverhead
	if p < 0 || p > int64(parts)*MaxPartSize {
		return 0, fmt.Errorf("%w: %d bytes in %d parts", ErrSize, stored, parts)
	}
	return p, nil
}

// PartCipherRange maps plaintext [off, off+n) of the part described by ph to
// the stored range to fetch, relative to the START OF THE PART (so it
// includes the 4096-byte part header: cipherOff ≥ PartHeaderSize). If the
// range reaches the part's last segment, the stored range extends to the end
// of the part so that DecryptReader checks the zero padding. Invalid ranges
// give (0, 0) and DecryptReader fails with ErrRange.
func PartCipherRange(ph *PartHeader, off, n int64) (cipherOff, cipherLen int64) {
	cOff, cLen, ok := streamRange(ph.plainLen, ph.segSize, off, n)
	if !ok || cLen == 0 {
		return 0, 0
	}
	if cOff+cLen == streamSize(ph.plainLen, ph.segSize) {
		cLen += padSize(ph.plainLen, ph.segSize)
	}
	return PartHeaderSize + cOff, cLen
}

// padSize is the zero padding after a part's last segment.
func padSize(plain int64, seg int) int64 {
	return TagSize * (MaxPartSegments - segCount(plain, seg))
}
