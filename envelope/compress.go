package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"strings"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Compressed bodies (format version 3, FlagCompressed; FORMAT.md 12.2).
//
// The plaintext is cut into blocks of BlockSize bytes (the last holds the
// rest), each compressed on its own so that a range read decompresses only
// the blocks it covers. A block that does not shrink is stored raw. The
// stored body is
//
//	block 0 || block 1 || ... || block nb-1 || index
//	block i = (h_i XOR m_i) || AES-GCM(body key, nonce(i, final 0), payload_i, AAD = h_i)
//	h_i     = payload length (bits 0..30) | 1<<31 if payload_i is the raw block
//	m_i     = the first 4 bytes of AES(block header key, uint64 i || 8 zero bytes)
//	index   = AES-GCM(body key, nonce(nb, final 1), h_0 || ... || h_nb-1, AAD = empty)
//
// with nb = ⌈s/BlockSize⌉ (0 for an empty object) from the sealed size s,
// so that the index (4·nb+16 bytes) is found at the end of the body from
// the stored size alone. The nonces are those of FORMAT.md section 4 (part
// number 0), so blocks cannot be reordered, dropped or truncated, and the
// index, the final segment, must be there.
//
// The block header key is HKDF(OEK, "s3seal/3 block header"): the masked
// headers let a reader walk the blocks in one pass while the store learns
// nothing of each block's compressed length (only the total).

// Algorithm names a compression algorithm, as sealed in Meta.Compression.
type Algorithm string

// Algorithms, both from github.com/klauspost/compress: S2 (the block
// format, Snappy's successor) is fast, zstd compresses more.
const (
	AlgS2   Algorithm = "s2"
	AlgZstd Algorithm = "zstd"
)

// Level is how hard a writer compresses. It is a writer's choice, written
// nowhere: every level of an algorithm yields a payload its one decoder
// reads (S2's Encode, EncodeBetter and EncodeBest all write the S2 block
// format; zstd's levels all write RFC 8878 frames), and FORMAT.md 12.2
// takes any payload that decompresses to its block. So readers need not
// know it, and objects written at different levels read alike.
type Level string

// Levels. "" is LevelDefault. S2 has default, better and best; zstd also
// fastest (klauspost's zstd.EncoderLevel: SpeedFastest, SpeedDefault,
// SpeedBetterCompression, SpeedBestCompression).
const (
	LevelFastest Level = "fastest"
	LevelDefault Level = "default"
	LevelBetter  Level = "better"
	LevelBest    Level = "best"
)

// Levels returns the levels alg has, fastest first.
func Levels(alg Algorithm) []Level {
	switch alg {
	case AlgS2:
		return []Level{LevelDefault, LevelBetter, LevelBest}
	case AlgZstd:
		return []Level{LevelFastest, LevelDefault, LevelBetter, LevelBest}
	}
	return nil
}

// CheckLevel reports whether alg has level l ("" is LevelDefault).
func CheckLevel(alg Algorithm, l Level) error {
	if l == "" {
		l = LevelDefault
	}
	levels := Levels(alg)
	for _, have := range levels {
		if l == have {
			return nil
		}
	}
	names := make([]string, len(levels))
	for i, have := range levels {
		names[i] = string(have)
	}
	if len(levels) == 0 {
		return fmt.Errorf("compression algorithm %q", alg)
	}
	return fmt.Errorf("compression level %q is not one of %s's (%s)", l, alg, strings.Join(names, ", "))
}

// Block sizes: powers of two in [MinBlockSize, MaxBlockSize].
const (
	DefaultBlockSize = 256 << 10
	MinBlockSize     = 64 << 10
	MaxBlockSize     = 4 << 20

	// MaxCompressedSize bounds the plaintext of a compressed object: S3's
	// single PUT limit, which also bounds the index (80 KiB at the
	// default block size).
	MaxCompressedSize int64 = 5 << 30

	blockHeaderSize = 4
	rawBit          = 1 << 31
)

// Compression is the sealed description of a compressed body (Meta field
// "z").
type Compression struct {
	Algorithm Algorithm `json:"a"`
	BlockSize int       `json:"b"`
}

func (c *Compression) check() error {
	if c == nil {
		return fmt.Errorf("%w: compressed object without its compression parameters", ErrFormat)
	}
	if c.Algorithm != AlgS2 && c.Algorithm != AlgZstd {
		return fmt.Errorf("%w: compression algorithm %q", ErrFormat, c.Algorithm)
	}
	if c.BlockSize < MinBlockSize || c.BlockSize > MaxBlockSize || bits.OnesCount(uint(c.BlockSize)) != 1 {
		return fmt.Errorf("%w: compression block size %d", ErrFormat, c.BlockSize)
	}
	return nil
}

// blocks is the number of blocks of a plaintext of plain bytes.
func (c *Compression) blocks(plain int64) int64 {
	return (plain + int64(c.BlockSize) - 1) / int64(c.BlockSize)
}

// blockLen is the plaintext length of block i of plain bytes.
func (c *Compression) blockLen(plain, i int64) int {
	return int(min(int64(c.BlockSize), plain-i*int64(c.BlockSize)))
}

// CompressedSizeBounds returns the smallest and largest stored size a
// compressed body of plain bytes can have: every block at least one byte,
// or every block stored raw.
func (c *Compression) CompressedSizeBounds(plain int64) (lo, hi int64) {
	nb := c.blocks(plain)
	over := nb*(blockHeaderSize+TagSize) + blockHeaderSize*nb + TagSize
	return over + nb, over + plain
}

var (
	zstdOnce sync.Once
	zstdDec  *zstd.Decoder
	zstdErr  error

	// zstdEncs holds one shared encoder per level, made when first used:
	// an encoder holds the state of its level, and the best level's is
	// large.
	zstdEncs = map[Level]*zstdEncoder{LevelFastest: {level: zstd.SpeedFastest}, LevelDefault: {level: zstd.SpeedDefault},
		LevelBetter: {level: zstd.SpeedBetterCompression}, LevelBest: {level: zstd.SpeedBestCompression}}
)

type zstdEncoder struct {
	level zstd.EncoderLevel
	once  sync.Once
	enc   *zstd.Encoder
	err   error
}

// zstdCodec returns the shared zstd encoder of level l and the shared
// decoder (both safe for concurrent EncodeAll/DecodeAll). The checksum is
// off: the AEAD tag authenticates every block already. The decoder's
// memory is bounded by the largest block.
func zstdCodec(l Level) (*zstd.Encoder, *zstd.Decoder, error) {
	zstdOnce.Do(func() {
		zstdDec, zstdErr = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(MaxBlockSize), zstd.WithDecoderConcurrency(0))
	})
	if zstdErr != nil {
		return nil, nil, zstdErr
	}
	if l == "" {
		l = LevelDefault
	}
	e, ok := zstdEncs[l]
	if !ok {
		return nil, nil, CheckLevel(AlgZstd, l)
	}
	e.once.Do(func() {
		e.enc, e.err = zstd.NewWriter(nil, zstd.WithEncoderCRC(false), zstd.WithEncoderLevel(e.level))
	})
	return e.enc, zstdDec, e.err
}

// compressBlock appends the compressed form of src, at level l, to dst[:0].
func compressBlock(alg Algorithm, l Level, dst, src []byte) ([]byte, error) {
	switch alg {
	case AlgS2:
		if n := s2.MaxEncodedLen(len(src)); cap(dst) < n {
			dst = make([]byte, n)
		}
		switch l {
		case "", LevelDefault:
			return s2.Encode(dst[:cap(dst)], src), nil
		case LevelBetter:
			return s2.EncodeBetter(dst[:cap(dst)], src), nil
		case LevelBest:
			return s2.EncodeBest(dst[:cap(dst)], src), nil
		}
		return nil, CheckLevel(alg, l)
	case AlgZstd:
		enc, _, err := zstdCodec(l)
		if err != nil {
			return nil, err
		}
		return enc.EncodeAll(src, dst[:0]), nil
	}
	return nil, fmt.Errorf("%w: compression algorithm %q", ErrFormat, alg)
}

// decompressBlock decompresses src, which must yield exactly want bytes,
// into dst (cap ≥ want).
func decompressBlock(alg Algorithm, dst, src []byte, want int) ([]byte, error) {
	var out []byte
	var err error
	switch alg {
	case AlgS2:
		n, derr := s2.DecodedLen(src)
		if derr != nil || n != want {
			return nil, fmt.Errorf("%w: compressed block of %d bytes, want %d (%v)", ErrFormat, n, want, derr)
		}
		out, err = s2.Decode(dst[:want], src)
	case AlgZstd:
		_, dec, zerr := zstdCodec(LevelDefault)
		if zerr != nil {
			return nil, zerr
		}
		out, err = dec.DecodeAll(src, dst[:0])
	default:
		return nil, fmt.Errorf("%w: compression algorithm %q", ErrFormat, alg)
	}
	if err != nil || len(out) != want {
		return nil, fmt.Errorf("%w: compressed block does not decompress to %d bytes (%v)", ErrFormat, want, err)
	}
	return out, nil
}

// Saving returns the fraction of sample's size that compressing it as one
// block with alg saves (0 if it does not shrink): the adaptive check a
// writer runs on an object's first block before choosing to compress it.
// It compresses at the default level whatever level the writer uses: it
// tells compressible from incompressible data, which every level agrees
// on, at the cost of the cheap default rather than of, say, zstd's best.
func Saving(alg Algorithm, sample []byte) (float64, error) {
	if len(sample) == 0 {
		return 0, nil
	}
	c, err := compressBlock(alg, LevelDefault, nil, sample)
	if err != nil {
		return 0, err
	}
	if len(c) >= len(sample) {
		return 0, nil
	}
	return 1 - float64(len(c))/float64(len(sample)), nil
}

// blockHeaderKey is the AES block cipher that masks a compressed body's
// block headers, under a key of its own derived from the object key (the
// body key's AES must not be used outside GCM: AES(body key, 0) is GCM's
// hash key).
func blockHeaderKey(oek []byte, version byte) (cipher.Block, error) {
	k, err := hkdf.Key(sha256.New, oek, nil, versionPrefix(version)+" block header", KeySize)
	if err != nil {
		return nil, err
	}
	defer clear(k)
	return aes.NewCipher(k)
}

// headerMask is m_i: the first 4 bytes of AES(block header key, uint64 i
// || 8 zero bytes), a one-time pad for block i's header (one object key,
// one use of each i).
func headerMask(b cipher.Block, i int64) uint32 {
	var in, out [aes.BlockSize]byte
	binary.BigEndian.PutUint64(in[:8], uint64(i))
	b.Encrypt(out[:], in[:])
	return binary.BigEndian.Uint32(out[:4])
}

// compressedParams checks a compressed object's sealed metadata: its
// compression parameters and its plaintext size.
func compressedParams(meta []byte) (*Compression, int64, error) {
	m, err := DecodeMeta(meta)
	if err != nil {
		return nil, 0, err
	}
	if err := m.Compression.check(); err != nil {
		return nil, 0, err
	}
	if m.Size < 0 || m.Size > MaxCompressedSize {
		return nil, 0, fmt.Errorf("%w: compressed object of %d bytes", ErrFormat, m.Size)
	}
	c := *m.Compression
	return &c, m.Size, nil
}

// checkMultipartCompressedMeta checks the sealed metadata of a multipart
// object header with FlagCompressed (its parts may be compressed, FORMAT.md
// 12.2.3): it has no "z", since each compressed part names its own
// algorithm and block size, and one sealed description for all of them
// would be a second source of truth for a reader to get wrong.
func checkMultipartCompressedMeta(meta []byte) error {
	m, err := DecodeMeta(meta)
	if err != nil {
		return err
	}
	if m.Compression != nil {
		return fmt.Errorf("%w: compression parameters in a multipart object header", ErrFormat)
	}
	return nil
}

// Compression returns the compression parameters of a compressed object
// (FlagCompressed), nil for any other.
func (o *Object) Compression() *Compression {
	if o.comp == nil {
		return nil
	}
	c := *o.comp
	return &c
}

// WholeReader yields the whole plaintext of a single-layout object, of
// plainLen bytes, from its whole stored body: DecryptReader for an
// uncompressed object, DecryptCompressedReader for a compressed one.
func (o *Object) WholeReader(src io.Reader, plainLen int64) io.Reader {
	if o.comp != nil {
		if plainLen != o.plainSize {
			return &errReader{fmt.Errorf("%w: %d bytes asked of a compressed object of %d", ErrRange, plainLen, o.plainSize)}
		}
		return o.DecryptCompressedReader(src, nil, 0, plainLen)
	}
	return o.DecryptReader(src, plainLen, 0, plainLen)
}

// EncryptCompressedReader returns the stored body of a compressed object
// (made by a Config with FlagCompressed; its sealed Meta has the
// compression parameters and the plaintext size s): src must yield exactly
// s bytes. The stream's length is known only at its end. The index, the
// final segment, is emitted only after src returned io.EOF cleanly, as for
// EncryptReader. Once per Object, and only on a new one (ErrReused).
func (o *Object) EncryptCompressedReader(src io.Reader) io.Reader {
	switch {
	case o.closed.Load():
		return &errReader{ErrClosed}
	case o.comp == nil:
		return &errReader{fmt.Errorf("%w: not a compressed object", ErrLayout)}
	case o.sealed.Swap(true):
		return &errReader{ErrReused}
	}
	return newCompEncReader(o.body, o.hdrMask, *o.comp, o.cfg.Level, 0, src, o.plainSize)
}

func newCompEncReader(aead cipher.AEAD, mask cipher.Block, comp Compression, level Level, part uint32, src io.Reader, plain int64) *compEncReader {
	return &compEncReader{
		enc:   &encReader{src: src, plainLen: plain},
		aead:  aead,
		mask:  mask,
		comp:  comp,
		level: level,
		part:  part,
		plain: plain,
		nb:    comp.blocks(plain),
	}
}

type compEncReader struct {
	enc      *encReader // for readFull and expectEOF
	aead     cipher.AEAD
	mask     cipher.Block
	comp     Compression
	level    Level
	part     uint32 // the part number in every nonce: 0 for a single object
	plain    int64
	nb, i    int64
	index    []byte
	in, cbuf []byte
	out      []byte // sealed bytes not yet returned
	emitted  int64  // sealed bytes returned so far
	done     bool
	err      error
	nonce    [NonceSize]byte
}

// next seals the next block, or the index after the last one.
func (e *compEncReader) next() error {
	if e.i == e.nb {
		if err := e.enc.expectEOF(); err != nil {
			return err
		}
		setNonce(&e.nonce, e.part, e.nb, true)
		e.out = e.aead.Seal(e.out[:0], e.nonce[:], e.index, nil)
		e.done = true
		return nil
	}
	bl := e.comp.blockLen(e.plain, e.i)
	if e.in == nil {
		e.in = make([]byte, min(int64(e.comp.BlockSize), e.plain)) // a small object's size, not a block's
	}
	in := e.in[:bl]
	if err := e.enc.readFull(in, e.i*int64(e.comp.BlockSize)+int64(bl)); err != nil {
		return err
	}
	c, err := compressBlock(e.comp.Algorithm, e.level, e.cbuf, in)
	if err != nil {
		return err
	}
	e.cbuf = c
	var h uint32
	payload := c
	if len(c) >= bl {
		payload, h = in, rawBit
	}
	h |= uint32(len(payload))
	e.index = binary.BigEndian.AppendUint32(e.index, h)
	setNonce(&e.nonce, e.part, e.i, false)
	var hb [blockHeaderSize]byte
	binary.BigEndian.PutUint32(hb[:], h)
	e.out = binary.BigEndian.AppendUint32(e.out[:0], h^headerMask(e.mask, e.i))
	e.out = e.aead.Seal(e.out, e.nonce[:], payload, hb[:])
	clear(in)
	e.i++
	return nil
}

func (e *compEncReader) Read(p []byte) (int, error) {
	for len(e.out) == 0 {
		if e.err != nil {
			return 0, e.err
		}
		if e.done {
			return 0, io.EOF
		}
		if err := e.next(); err != nil {
			e.err = err
			clear(e.in)
			return 0, err
		}
	}
	n := copy(p, e.out)
	e.out = e.out[n:]
	e.emitted += int64(n)
	return n, nil
}

// IndexRange returns where the sealed index of a compressed object lies in
// its stored body of stored bytes: its last 4·nb+16 bytes.
func (o *Object) IndexRange(stored int64) (off, n int64, err error) {
	if o.comp == nil {
		return 0, 0, fmt.Errorf("%w: not a compressed object", ErrLayout)
	}
	if lo, hi := o.comp.CompressedSizeBounds(o.plainSize); stored < lo || stored > hi {
		return 0, 0, fmt.Errorf("%w: %d stored bytes for a compressed object of %d bytes", ErrSize, stored, o.plainSize)
	}
	n = blockHeaderSize*o.comp.blocks(o.plainSize) + TagSize
	return stored - n, n, nil
}

// BlockIndex is the authenticated index of a compressed object: where each
// block is stored and whether it is raw.
type BlockIndex struct {
	comp   Compression
	plain  int64
	hdrs   []uint32
	starts []int64  // stored offset of each block; starts[nb] = index offset
	header [32]byte // a part's index: the digest of the part header it belongs to
}

// OpenIndex authenticates the sealed index (the IndexRange bytes of the
// stored body of stored bytes) and checks that its blocks fill the body
// exactly. A caller may cache the result with the object version (store
// ETag).
func (o *Object) OpenIndex(sealed []byte, stored int64) (*BlockIndex, error) {
	off, _, err := o.IndexRange(stored)
	if err != nil {
		return nil, err
	}
	return openIndex(o.body, o.comp, o.plainSize, 0, sealed, off)
}

// openIndex opens the sealed index of a compressed body (an object's, part
// number 0, or a part's) of plain bytes, whose blocks must end at off.
func openIndex(aead cipher.AEAD, comp *Compression, plain int64, part uint32, sealed []byte, off int64) (*BlockIndex, error) {
	nb := comp.blocks(plain)
	if n := blockHeaderSize*nb + TagSize; int64(len(sealed)) != n {
		return nil, fmt.Errorf("%w: index of %d bytes, want %d", ErrTruncated, len(sealed), n)
	}
	var nonce [NonceSize]byte
	setNonce(&nonce, part, nb, true)
	hdrs, err := aead.Open(nil, nonce[:], sealed, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: compressed block index", ErrAuth)
	}
	idx := &BlockIndex{comp: *comp, plain: plain, hdrs: make([]uint32, nb), starts: make([]int64, nb+1)}
	var pos int64
	for i := range nb {
		h := binary.BigEndian.Uint32(hdrs[4*i:])
		if err := checkBlockHeader(&idx.comp, plain, i, h); err != nil {
			return nil, err
		}
		idx.hdrs[i], idx.starts[i] = h, pos
		pos += blockHeaderSize + int64(h&^rawBit) + TagSize
	}
	idx.starts[nb] = pos
	if pos != off {
		return nil, fmt.Errorf("%w: index blocks end at %d, index at %d", ErrSize, pos, off)
	}
	return idx, nil
}

// checkBlockHeader checks a block header against its block's plaintext
// length: a raw payload is the block, a compressed one is not longer.
func checkBlockHeader(c *Compression, plain, i int64, h uint32) error {
	l, bl := int(h&^rawBit), c.blockLen(plain, i)
	if h&rawBit != 0 && l != bl || h&rawBit == 0 && (l >= bl || l == 0) {
		return fmt.Errorf("%w: block %d header %#x for %d plaintext bytes", ErrFormat, i, h, bl)
	}
	return nil
}

// Blocks returns the number of blocks.
func (x *BlockIndex) Blocks() int { return len(x.hdrs) }

// RawBlocks returns how many blocks are stored raw (did not shrink).
func (x *BlockIndex) RawBlocks() int {
	n := 0
	for _, h := range x.hdrs {
		if h&rawBit != 0 {
			n++
		}
	}
	return n
}

// StoredSize returns the stored size of the body the index describes.
func (x *BlockIndex) StoredSize() int64 {
	return x.starts[len(x.hdrs)] + blockHeaderSize*int64(len(x.hdrs)) + TagSize
}

// CipherRange maps plaintext [off, off+n) (n ≥ 1) to the stored range of
// the blocks that hold it, for DecryptCompressedReader.
func (x *BlockIndex) CipherRange(off, n int64) (cipherOff, cipherLen int64, err error) {
	if off < 0 || n < 1 || off > x.plain || n > x.plain-off {
		return 0, 0, fmt.Errorf("%w: [%d, +%d) of %d bytes", ErrRange, off, n, x.plain)
	}
	first := off / int64(x.comp.BlockSize)
	last := (off + n - 1) / int64(x.comp.BlockSize)
	return x.starts[first], x.starts[last+1] - x.starts[first], nil
}

// DecryptCompressedReader yields plaintext [off, off+n) of a compressed
// object. With idx nil it reads the whole stored body from its start (off
// 0, n the object's size; one request, no index fetched first), checks the
// index at its end against the blocks read and holds the last block's
// plaintext until it has. With idx (from OpenIndex) src must be positioned
// at cipherOff of idx.CipherRange(off, n), and exactly cipherLen bytes are
// consumed. No plaintext of a block that fails authentication is returned.
func (o *Object) DecryptCompressedReader(src io.Reader, idx *BlockIndex, off, n int64) io.Reader {
	switch {
	case o.closed.Load():
		return &errReader{ErrClosed}
	case o.comp == nil:
		return &errReader{fmt.Errorf("%w: not a compressed object", ErrLayout)}
	}
	return newCompDecReader(o.body, o.hdrMask, *o.comp, o.plainSize, 0, -1, src, idx, off, n)
}

// newCompDecReader reads plaintext [off, off+n) of a compressed body of
// plain bytes sealed with part number part (0 for a single object). pad is
// the zero padding that follows the body of a part, which a reader that
// reaches the part's last block reads after the index, and checks, before
// it releases that block's plaintext; pad < 0 (a single object) means the
// body ends with its index, and a ranged read (idx set) then stops after
// its last block.
func newCompDecReader(aead cipher.AEAD, mask cipher.Block, comp Compression, plain int64, part uint32, pad int64, src io.Reader, idx *BlockIndex, off, n int64) io.Reader {
	switch {
	case off < 0 || n < 0 || off > plain || n > plain-off:
		return &errReader{fmt.Errorf("%w: [%d, +%d) of %d bytes", ErrRange, off, n, plain)}
	case idx == nil && (off != 0 || n != plain):
		return &errReader{fmt.Errorf("%w: a range needs the block index", ErrRange)}
	case idx != nil && (idx.comp != comp || idx.plain != plain):
		return &errReader{fmt.Errorf("%w: block index of another body", ErrRange)}
	}
	d := &compDecReader{aead: aead, mask: mask, comp: comp, plain: plain, part: part, pad: max(pad, 0), tail: idx == nil || pad >= 0,
		idx: idx, src: src, nb: comp.blocks(plain)}
	if n == 0 && idx != nil {
		d.end = 0
		return d
	}
	d.skip = int(off % int64(comp.BlockSize))
	d.i = off / int64(comp.BlockSize)
	d.left = n
	if idx == nil {
		d.end = d.nb
	} else {
		d.end = (off+n-1)/int64(comp.BlockSize) + 1
	}
	return d
}

type compDecReader struct {
	aead      cipher.AEAD
	mask      cipher.Block
	comp      Compression
	plain     int64
	part      uint32 // the part number in every nonce: 0 for a single object
	pad       int64  // zero bytes after the index (parts)
	tail      bool   // reading the last block also reads the index and the padding
	idx       *BlockIndex
	src       io.Reader
	nb        int64
	i, end    int64 // next block, one past the last block to read
	skip      int   // bytes to drop at the start of the next block
	left      int64 // plaintext bytes still to return
	seen      []byte
	sealed    []byte
	plainBuf  []byte
	out       []byte
	indexRead bool
	err       error
	nonce     [NonceSize]byte
}

func (d *compDecReader) readFull(b []byte) error {
	if _, err := io.ReadFull(d.src, b); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return fmt.Errorf("%w: compressed body", ErrTruncated)
		}
		return err
	}
	return nil
}

// readTail reads and authenticates the index after the last block (or of
// an empty body), compares it with the block headers seen (or the opened
// index's), then reads and checks a part's zero padding.
func (d *compDecReader) readTail() error {
	b := make([]byte, blockHeaderSize*d.nb+TagSize)
	if err := d.readFull(b); err != nil {
		return err
	}
	setNonce(&d.nonce, d.part, d.nb, true)
	plain, err := d.aead.Open(b[:0], d.nonce[:], b, nil)
	if err != nil {
		return fmt.Errorf("%w: compressed block index", ErrAuth)
	}
	want := d.seen
	if d.idx != nil {
		want = make([]byte, 0, len(plain))
		for _, h := range d.idx.hdrs {
			want = binary.BigEndian.AppendUint32(want, h)
		}
	}
	if string(plain) != string(want) {
		return fmt.Errorf("%w: block index differs from the blocks", ErrAuth)
	}
	d.indexRead = true
	if d.pad > 0 {
		if err := checkZeros(d.src, d.pad); err != nil {
			return err
		}
	}
	return nil
}

// checkZeros reads n bytes from src and checks that they are all zero.
func checkZeros(src io.Reader, n int64) error {
	buf := make([]byte, min(n, 64<<10))
	for n > 0 {
		b := buf[:min(n, int64(len(buf)))]
		if _, err := io.ReadFull(src, b); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return fmt.Errorf("%w: part padding", ErrTruncated)
			}
			return err
		}
		for _, x := range b {
			if x != 0 {
				return fmt.Errorf("%w: non-zero part padding", ErrAuth)
			}
		}
		n -= int64(len(b))
	}
	return nil
}

// next opens block d.i into d.out.
func (d *compDecReader) next() error {
	var hb [blockHeaderSize]byte
	if err := d.readFull(hb[:]); err != nil {
		return err
	}
	h := binary.BigEndian.Uint32(hb[:]) ^ headerMask(d.mask, d.i)
	binary.BigEndian.PutUint32(hb[:], h)
	if d.idx != nil && h != d.idx.hdrs[d.i] {
		return fmt.Errorf("%w: block %d header differs from the index", ErrAuth, d.i)
	}
	if err := checkBlockHeader(&d.comp, d.plain, d.i, h); err != nil {
		return err
	}
	l := int(h &^ rawBit)
	if cap(d.sealed) < l+TagSize {
		d.sealed = make([]byte, l+TagSize, min(int64(d.comp.BlockSize), d.plain)+TagSize)
	}
	sealed := d.sealed[:l+TagSize]
	if err := d.readFull(sealed); err != nil {
		return err
	}
	setNonce(&d.nonce, d.part, d.i, false)
	payload, err := d.aead.Open(sealed[:0], d.nonce[:], sealed, hb[:])
	if err != nil {
		return fmt.Errorf("%w: compressed block %d", ErrAuth, d.i)
	}
	bl := d.comp.blockLen(d.plain, d.i)
	var out []byte
	if h&rawBit != 0 {
		out = payload
	} else {
		if d.plainBuf == nil {
			d.plainBuf = make([]byte, min(int64(d.comp.BlockSize), d.plain))
		}
		if out, err = decompressBlock(d.comp.Algorithm, d.plainBuf, payload, bl); err != nil {
			return err
		}
	}
	if d.idx == nil {
		d.seen = binary.BigEndian.AppendUint32(d.seen, h)
	}
	if d.tail && d.i == d.nb-1 {
		if err := d.readTail(); err != nil {
			clear(out)
			return err
		}
	}
	d.i++
	out = out[d.skip:]
	d.skip = 0
	if int64(len(out)) > d.left {
		out = out[:d.left]
	}
	d.out = out
	return nil
}

func (d *compDecReader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		if d.i >= d.end || d.left == 0 {
			// A whole read of an empty body still reads (and so
			// authenticates) the index.
			if d.idx == nil && !d.indexRead && d.nb == 0 {
				if err := d.readTail(); err != nil {
					d.err = err
					return 0, err
				}
			}
			return 0, io.EOF
		}
		if err := d.next(); err != nil {
			d.err = err
			return 0, err
		}
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	d.left -= int64(n)
	return n, nil
}
