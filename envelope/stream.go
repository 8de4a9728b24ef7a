package envelope

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"
)

// Segment buffers are pooled per segment size (powers of two from 64 KiB)
// and zeroed before they go back, since they hold plaintext.
var bufPools [24]sync.Pool // index: log2(segment size)

func getBuf(seg int) *[]byte {
	i := bits.Len(uint(seg)) - 1
	if p, ok := bufPools[i].Get().(*[]byte); ok {
		return p
	}
	b := make([]byte, seg+TagSize)
	return &b
}

func putBuf(seg int, b *[]byte) {
	clear(*b)
	bufPools[bits.Len(uint(seg))-1].Put(b)
}

// BatchSize is how much data WriteTo moves per write: 16 segments per
// system call instead of one cut a proxied stream's system calls tenfold and
// its CPU per GiB by about a third; on loopback the calls had cost more than
// the AES-GCM itself (bench/RESULTS.md).
const BatchSize = 1 << 20

// batch holds the sealed and plain bytes of up to k consecutive segments,
// kept apart so that both directions seal or open out of place and hand a
// contiguous run of output to one Write.
type batch struct {
	k      int
	sealed []byte
	plain  []byte
	dirty  int // plain bytes that may hold plaintext
}

// Batches come in sizes of 1, 2, 4, ... segments up to BatchSize, so that
// a small object does not take (and zero) a megabyte.
var batchPools [24][8]sync.Pool // index: log2(segment size), log2(segments)

// getBatch returns a batch for a stream of segments segments left.
func getBatch(seg int, segments int64) *batch {
	k := max(1, BatchSize/seg)
	if segments < int64(k) {
		k = 1 << bits.Len(uint(max(segments, 1)-1)) // next power of two
	}
	p := &batchPools[bits.Len(uint(seg))-1][bits.Len(uint(k))-1]
	if b, ok := p.Get().(*batch); ok {
		return b
	}
	return &batch{k: k, sealed: make([]byte, k*(seg+TagSize)), plain: make([]byte, k*seg)}
}

func putBatch(seg int, b *batch) {
	clear(b.plain[:b.dirty])
	b.dirty = 0
	batchPools[bits.Len(uint(seg))-1][bits.Len(uint(b.k))-1].Put(b)
}

// plainFor returns the first n bytes of b's plain buffer, noting that they
// will need zeroing.
func (b *batch) plainFor(n int) []byte {
	b.dirty = max(b.dirty, n)
	return b.plain[:n]
}

// zeros is read-only padding source.
var zeros [TagSize * MaxPartSegments]byte

// setNonce writes the segment nonce: uint32 part || 7-byte index || final.
func setNonce(n *[NonceSize]byte, part uint32, idx int64, final bool) {
	binary.BigEndian.PutUint32(n[0:4], part)
	v := uint64(idx) << 8
	if final {
		v |= 1
	}
	binary.BigEndian.PutUint64(n[4:12], v)
}

// maxEmptyReads bounds consecutive (0, nil) reads from a source.
const maxEmptyReads = 100

// encReader seals a plaintext stream into segments. It optionally emits a
// prefix (the part header) first and zero padding last.
type encReader struct {
	aead     cipher.AEAD
	nonce    [NonceSize]byte
	part     uint32
	seg      int
	plainLen int64
	nsegs    int64
	idx      int64
	src      io.Reader
	srcEOF   bool // src has returned io.EOF
	prefix   []byte
	pad      int64
	buf      *[]byte
	bat      *batch
	pending  []byte
	err      error
	probe    [1]byte
}

func newEncReader(aead cipher.AEAD, part uint32, seg int, src io.Reader, plainLen int64, prefix []byte, pad int64) *encReader {
	return &encReader{
		aead: aead, part: part, seg: seg, src: src, plainLen: plainLen,
		nsegs: segCount(plainLen, seg), prefix: prefix, pad: pad,
	}
}

func (e *encReader) release() {
	if e.buf != nil {
		putBuf(e.seg, e.buf)
		e.buf = nil
	}
	if e.bat != nil {
		putBatch(e.seg, e.bat)
		e.bat = nil
	}
	e.pending = nil
}

// Close releases (and zeroes) the reader's buffer. Reads after Close fail.
func (e *encReader) Close() error {
	e.release()
	if e.err == nil || e.err == io.EOF {
		e.err = ErrClosed
	}
	return nil
}

// readFull fills b, which ends at plaintext offset end, from src. It
// reports ErrSizeMismatch if src ends early and passes src errors through
// unchanged.
func (e *encReader) readFull(b []byte, end int64) error {
	empty := 0
	for len(b) > 0 {
		if e.srcEOF {
			return fmt.Errorf("%w: source ended %d bytes early", ErrSizeMismatch, int64(len(b))+e.plainLen-end)
		}
		n, err := e.src.Read(b)
		b = b[n:]
		switch {
		case err == io.EOF:
			e.srcEOF = true
		case err != nil:
			return err
		case n == 0:
			if empty++; empty > maxEmptyReads {
				return io.ErrNoProgress
			}
		default:
			empty = 0
		}
	}
	return nil
}

// expectEOF makes sure src has nothing after the declared length.
func (e *encReader) expectEOF() error {
	for empty := 0; !e.srcEOF; {
		n, err := e.src.Read(e.probe[:])
		if n > 0 {
			return fmt.Errorf("%w: source longer than declared %d bytes", ErrSizeMismatch, e.plainLen)
		}
		switch {
		case err == io.EOF:
			e.srcEOF = true
		case err != nil:
			return err
		default:
			if empty++; empty > maxEmptyReads {
				return io.ErrNoProgress
			}
		}
	}
	return nil
}

// sealSegment reads the next segment's plaintext into dst and seals it in
// place; dst must hold the plaintext plus a tag. It returns the sealed size.
func (e *encReader) sealSegment(dst []byte) (int, error) {
	final := e.idx == e.nsegs-1
	plen := e.seg
	if final {
		plen = int(e.plainLen - e.idx*int64(e.seg))
	}
	if err := e.readFull(dst[:plen], e.idx*int64(e.seg)+int64(plen)); err != nil {
		clear(dst[:plen])
		return 0, err
	}
	if final {
		// Never emit the final segment before src has ended cleanly.
		if err := e.expectEOF(); err != nil {
			clear(dst[:plen])
			return 0, err
		}
	}
	setNonce(&e.nonce, e.part, e.idx, final)
	e.aead.Seal(dst[:0], e.nonce[:], dst[:plen], nil)
	e.idx++
	return plen + TagSize, nil
}

// sealBatch reads the plaintext of the next segments (as many as a batch
// holds) in one go and seals them into the batch, returning the sealed bytes.
func (e *encReader) sealBatch() ([]byte, error) {
	if e.bat == nil {
		e.bat = getBatch(e.seg, e.nsegs-e.idx)
	}
	start := e.idx * int64(e.seg)
	k := min(e.nsegs-e.idx, int64(e.bat.k))
	end := min(e.plainLen, start+k*int64(e.seg))
	plain := e.bat.plainFor(int(end - start))
	if err := e.readFull(plain, end); err != nil {
		return nil, err
	}
	if e.idx+k == e.nsegs {
		// Never emit the final segment before src has ended cleanly.
		if err := e.expectEOF(); err != nil {
			return nil, err
		}
	}
	out := e.bat.sealed[:0]
	for range k { // k, not len(plain): an empty stream is one empty segment
		p := plain[:min(len(plain), e.seg)]
		plain = plain[len(p):]
		setNonce(&e.nonce, e.part, e.idx, e.idx == e.nsegs-1)
		out = e.aead.Seal(out, e.nonce[:], p, nil)
		e.idx++
	}
	return out, nil
}

// step produces the next unit of output. If direct is large enough for the
// next whole sealed segment, the segment is sealed there and inPlace is
// true; otherwise out points into e's buffer or read-only data.
func (e *encReader) step(direct []byte) (out []byte, inPlace bool, err error) {
	if len(e.prefix) > 0 {
		out, e.prefix = e.prefix, nil
		return out, false, nil
	}
	if e.idx < e.nsegs {
		need := e.seg + TagSize
		if e.idx == e.nsegs-1 {
			need = int(e.plainLen-e.idx*int64(e.seg)) + TagSize
		}
		if len(direct) >= need {
			n, err := e.sealSegment(direct)
			return direct[:n], true, err
		}
		if e.buf == nil {
			e.buf = getBuf(e.seg)
		}
		n, err := e.sealSegment(*e.buf)
		return (*e.buf)[:n], false, err
	}
	if e.pad > 0 {
		n := min(e.pad, int64(len(zeros)))
		e.pad -= n
		return zeros[:n], false, nil
	}
	return nil, false, io.EOF
}

func (e *encReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && e.err == nil {
		if len(e.pending) > 0 {
			c := copy(p[n:], e.pending)
			e.pending = e.pending[c:]
			n += c
			continue
		}
		out, inPlace, err := e.step(p[n:])
		if err != nil {
			e.err = err
			e.release()
			break
		}
		if inPlace {
			n += len(out)
		} else {
			e.pending = out
		}
	}
	if n > 0 {
		return n, nil
	}
	return 0, e.err
}

// WriteTo writes the whole sealed stream to w, a batch of segments per
// Write, without an extra copy.
func (e *encReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for e.err == nil {
		out := e.pending
		e.pending = nil
		if len(out) == 0 {
			var err error
			if len(e.prefix) == 0 && e.idx < e.nsegs {
				out, err = e.sealBatch()
			} else {
				out, _, err = e.step(nil)
			}
			if err != nil {
				e.err = err
				e.release()
				break
			}
		}
		n, err := w.Write(out)
		total += int64(n)
		if err == nil && n < len(out) {
			err = io.ErrShortWrite
		}
		if err != nil {
			e.err = err
			e.release()
			return total, err
		}
	}
	if e.err == io.EOF {
		return total, nil
	}
	return total, e.err
}

// decReader opens a range of segments of a sealed stream and yields the
// requested plaintext. It reads exactly the stored range and never more, so
// several streams can be read back to back from one source.
type decReader struct {
	aead    cipher.AEAD
	nonce   [NonceSize]byte
	part    uint32
	seg     int
	plain   int64 // plaintext size of the whole stream
	nsegs   int64 // segments in the whole stream
	idx     int64 // next segment to open
	last    int64 // last segment in the range
	skip    int   // plaintext bytes to drop from the first segment
	remain  int64 // plaintext bytes still to yield
	pad     int64 // zero padding to check after the final segment
	src     io.Reader
	buf     *[]byte
	bat     *batch
	pending []byte
	err     error
	padBuf  [512]byte
}

// newDecReader prepares reading plaintext [off, off+n) of a stream of
// plainLen bytes; src must be positioned at the start of the range given by
// streamRange. pad is the padding after the final segment (parts).
func newDecReader(aead cipher.AEAD, part uint32, seg int, src io.Reader, plainLen, off, n, pad int64) io.Reader {
	cOff, cLen, ok := streamRange(plainLen, seg, off, n)
	if !ok {
		return &errReader{fmt.Errorf("%w: [%d, %d+%d) of %d bytes", ErrRange, off, off, n, plainLen)}
	}
	d := &decReader{aead: aead, part: part, seg: seg, src: src, plain: plainLen, nsegs: segCount(plainLen, seg), remain: n}
	if cLen == 0 {
		d.err = io.EOF
		return d
	}
	full := int64(seg) + TagSize
	d.idx = cOff / full
	d.last = (cOff + cLen - 1) / full
	d.skip = int(off - d.idx*int64(seg))
	if d.last == d.nsegs-1 {
		d.pad = pad
	}
	return d
}

func (d *decReader) release() {
	if d.buf != nil {
		putBuf(d.seg, d.buf)
		d.buf = nil
	}
	if d.bat != nil {
		putBatch(d.seg, d.bat)
		d.bat = nil
	}
	d.pending = nil
}

// Close releases (and zeroes) the reader's buffer. Reads after Close fail.
func (d *decReader) Close() error {
	d.release()
	if d.err == nil || d.err == io.EOF {
		d.err = ErrClosed
	}
	return nil
}

func (d *decReader) readFull(b []byte) error {
	_, err := io.ReadFull(d.src, b)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: segment %d", ErrTruncated, d.idx)
	}
	return err
}

// checkPad reads the padding after a part's final segment and checks that it
// is all zero.
func (d *decReader) checkPad() error {
	for d.pad > 0 {
		c := d.padBuf[:min(d.pad, int64(len(d.padBuf)))]
		if err := d.readFull(c); err != nil {
			return fmt.Errorf("%w (padding)", err)
		}
		var acc byte
		for _, x := range c {
			acc |= x
		}
		if acc != 0 {
			return fmt.Errorf("%w: non-zero part padding", ErrAuth)
		}
		d.pad -= int64(len(c))
	}
	return nil
}

// openSegment reads segment d.idx into b (sealed size) and opens it in
// place. On failure b holds no plaintext. It returns the plaintext length.
func (d *decReader) openSegment(b []byte) (int, error) {
	final := d.idx == d.nsegs-1
	if err := d.readFull(b); err != nil {
		return 0, err
	}
	setNonce(&d.nonce, d.part, d.idx, final)
	if _, err := d.aead.Open(b[:0], d.nonce[:], b, nil); err != nil {
		clear(b)
		return 0, fmt.Errorf("%w: segment %d", ErrAuth, d.idx)
	}
	plen := len(b) - TagSize
	if final {
		// Check the padding before releasing the last plaintext.
		if err := d.checkPad(); err != nil {
			clear(b[:plen])
			return 0, err
		}
	}
	d.idx++
	return plen, nil
}

// openBatch reads the next segments of the range (as many as a batch holds)
// in one go and opens them into the batch, returning the plaintext they
// contribute to the range.
func (d *decReader) openBatch() ([]byte, error) {
	if d.bat == nil {
		d.bat = getBatch(d.seg, d.last-d.idx+1)
	}
	k := min(d.last-d.idx+1, int64(d.bat.k))
	full := d.seg + TagSize
	plainLen := min(d.plain, (d.idx+k)*int64(d.seg)) - d.idx*int64(d.seg)
	sealed := d.bat.sealed[:plainLen+k*TagSize]
	if err := d.readFull(sealed); err != nil {
		return nil, err
	}
	plain := d.bat.plainFor(int(plainLen))[:0]
	for range k {
		c := sealed[:min(len(sealed), full)]
		sealed = sealed[len(c):]
		final := d.idx == d.nsegs-1
		setNonce(&d.nonce, d.part, d.idx, final)
		var err error
		if plain, err = d.aead.Open(plain, d.nonce[:], c, nil); err != nil {
			clear(d.bat.plain[:plainLen])
			return nil, fmt.Errorf("%w: segment %d", ErrAuth, d.idx)
		}
		if final {
			// Check the padding before releasing the last plaintext.
			if err := d.checkPad(); err != nil {
				clear(d.bat.plain[:plainLen])
				return nil, err
			}
		}
		d.idx++
	}
	out := plain[d.skip:]
	d.skip = 0
	if int64(len(out)) > d.remain {
		out = out[:d.remain]
	}
	d.remain -= int64(len(out))
	return out, nil
}

func (d *decReader) step(direct []byte) (out []byte, inPlace bool, err error) {
	if d.idx > d.last {
		return nil, false, io.EOF
	}
	slen := d.seg + TagSize
	if d.idx == d.nsegs-1 {
		slen = int(d.plain-d.idx*int64(d.seg)) + TagSize
	}
	// Whole segment straight into the caller's buffer.
	if d.skip == 0 && int64(slen-TagSize) <= d.remain && len(direct) >= slen {
		n, err := d.openSegment(direct[:slen])
		if err != nil {
			return nil, false, err
		}
		d.remain -= int64(n)
		return direct[:n], true, nil
	}
	if d.buf == nil {
		d.buf = getBuf(d.seg)
	}
	n, err := d.openSegment((*d.buf)[:slen])
	if err != nil {
		return nil, false, err
	}
	out = (*d.buf)[d.skip:n]
	d.skip = 0
	if int64(len(out)) > d.remain {
		out = out[:d.remain]
	}
	d.remain -= int64(len(out))
	return out, false, nil
}

func (d *decReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && d.err == nil {
		if len(d.pending) > 0 {
			c := copy(p[n:], d.pending)
			d.pending = d.pending[c:]
			n += c
			continue
		}
		out, inPlace, err := d.step(p[n:])
		if err != nil {
			d.err = err
			d.release()
			break
		}
		if inPlace {
			n += len(out)
		} else {
			d.pending = out
		}
	}
	if n > 0 {
		return n, nil
	}
	return 0, d.err
}

// WriteTo writes the requested plaintext to w, a batch of segments per
// Write, without an extra copy.
func (d *decReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for d.err == nil {
		out := d.pending
		d.pending = nil
		if len(out) == 0 {
			if d.idx > d.last {
				d.err = io.EOF
				d.release()
				break
			}
			var err error
			if out, err = d.openBatch(); err != nil {
				d.err = err
				d.release()
				break
			}
			if len(out) == 0 {
				continue
			}
		}
		n, err := w.Write(out)
		total += int64(n)
		if err == nil && n < len(out) {
			err = io.ErrShortWrite
		}
		if err != nil {
			d.err = err
			d.release()
			return total, err
		}
	}
	if d.err == io.EOF {
		return total, nil
	}
	return total, d.err
}

// errReader fails every Read with err.
type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) { return 0, r.err }
func (r *errReader) Close() error             { return nil }

// IsAuthError reports whether err means the stored data or header failed
// authentication (as opposed to I/O trouble).
func IsAuthError(err error) bool {
	return errors.Is(err, ErrAuth) || errors.Is(err, ErrCommitment) || errors.Is(err, ErrTruncated)
}
