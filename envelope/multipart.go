package envelope

import (
	"fmt"
	"io"
)

// PartOpener returns the Part for a parsed part header: typically it asks
// the KMS to unwrap ph.KeyInfo() and calls OpenPart(ph, dek, bucket, key)
// with the path the parts are bound to.
type PartOpener func(ph *PartHeader) (*Part, error)

// MultipartReader decrypts a whole multipart object read from its first
// stored byte (parts back to back). For each part it reads and parses the
// part header, calls open, and decrypts the part, checking that part numbers
// strictly increase. If parts > 0 (the N of the object's "…-N" ETag) it reads
// exactly parts parts and never beyond; if parts == 0 it reads parts until
// src ends cleanly at a part boundary. A missing part or a short stream fails
// with ErrTruncated. Parts are closed as soon as they are done.
//
// The reader also implements io.Closer.
func MultipartReader(src io.Reader, parts int, open PartOpener) io.Reader {
	if parts < 0 || parts > MaxPartNumber {
		return &errReader{fmt.Errorf("%w: %d parts", ErrRange, parts)}
	}
	return &mpReader{src: src, parts: parts, open: open}
}

type mpReader struct {
	src   io.Reader
	parts int
	open  PartOpener
	done  int // parts finished
	last  int // last part number seen
	cur   io.Reader
	part  *Part
	hdr   [PartHeaderSize]byte
	err   error
}

func (m *mpReader) closePart() {
	if c, ok := m.cur.(io.Closer); ok {
		_ = c.Close()
	}
	if m.part != nil {
		m.part.Close()
	}
	m.cur, m.part = nil, nil
}

// Close releases the current part's key and buffer.
func (m *mpReader) Close() error {
	m.closePart()
	if m.err == nil || m.err == io.EOF {
		m.err = ErrClosed
	}
	return nil
}

// next opens the next part, or returns io.EOF after the last.
func (m *mpReader) next() error {
	if m.parts > 0 && m.done == m.parts {
		return io.EOF
	}
	n, err := io.ReadFull(m.src, m.hdr[:])
	switch {
	case n == 0 && err == io.EOF && m.parts == 0 && m.done > 0:
		return io.EOF
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return fmt.Errorf("%w: part %d of the object missing or short", ErrTruncated, m.done+1)
	case err != nil:
		return err
	}
	ph, err := ParsePartHeader(m.hdr[:])
	if err != nil {
		return err
	}
	if ph.PartNumber() <= m.last {
		return fmt.Errorf("%w: part number %d after %d", ErrAuth, ph.PartNumber(), m.last)
	}
	p, err := m.open(ph)
	if err != nil {
		return err
	}
	if p.PartNumber() != ph.PartNumber() || p.PlainLen() != ph.PlainLen() {
		p.Close()
		return fmt.Errorf("%w: opener returned another part", ErrAuth)
	}
	m.last = ph.PartNumber()
	m.part = p
	m.cur = p.DecryptReader(m.src, 0, ph.PlainLen())
	return nil
}

func (m *mpReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && m.err == nil {
		if m.cur == nil {
			if m.err = m.next(); m.err != nil {
				break
			}
		}
		c, err := m.cur.Read(p[n:])
		n += c
		if err == io.EOF {
			m.closePart()
			m.done++
		} else if err != nil {
			m.err = err
			m.closePart()
		}
	}
	if n > 0 {
		return n, nil
	}
	return 0, m.err
}

// PartSpan is the piece of a multipart range that falls in one part.
type PartSpan struct {
	Index int // index of the part in the object (0-based), not its part number
	// Off and N are the plaintext range within the part, for
	// PartCipherRange and Part.DecryptReader.
	Off, N int64
	// PartStart is the stored offset of the part's first byte (its header)
	// in the object; the stored bytes to fetch for this span are
	// [PartStart+CipherOff, PartStart+CipherOff+CipherLen), where CipherOff
	// and CipherLen are those of PartCipherRange.
	PartStart int64
}

// MultipartRange splits the plaintext range [off, off+n) of a multipart
// object whose parts have the given plaintext sizes (in order) into
// per-part spans. It returns ErrRange for a range outside the object. An
// empty range gives no spans.
func MultipartRange(partSizes []int64, off, n int64) ([]PartSpan, error) {
	var total int64
	for _, s := range partSizes {
		if s < 0 || s > MaxPartSize {
			return nil, fmt.Errorf("%w: part size %d", ErrRange, s)
		}
		total += s
	}
	if off < 0 || n < 0 || off > total || n > total-off {
		return nil, fmt.Errorf("%w: [%d, %d+%d) of %d bytes", ErrRange, off, off, n, total)
	}
	var spans []PartSpan
	var plainStart, storedStart int64
	for i, s := range partSizes {
		if n > 0 && off < plainStart+s && off+n > plainStart {
			lo := max(off, plainStart) - plainStart
			hi := min(off+n, plainStart+s) - plainStart
			spans = append(spans, PartSpan{Index: i, Off: lo, N: hi - lo, PartStart: storedStart})
		}
		plainStart += s
		storedStart += s + PartOverhead
	}
	return spans, nil
}
