package envelope

import (
	"fmt"
	"io"
)

// PartOpener returns the Part for a part header that MultipartReader has
// already checked against the part map: typically it asks the KMS to unwrap
// ph.KeyInfo() and calls OpenPart(ph, dek, bucket, key, upload) with the
// path and upload identity the parts are bound to (Meta.PartsPath,
// Meta.Upload).
type PartOpener func(ph *PartHeader) (*Part, error)

// MultipartReader yields plaintext [off, off+n) (n ≥ 1) of the multipart
// object pm describes. src holds exactly the stored bytes [f.From, f.To) of
// f = pm.FetchRange(off, n); first is the header of the part the range
// starts in when f.HeaderInline is false (the caller read it from
// f.FirstOffset), and nil otherwise.
//
// pm must be verified (PartMap.Verify). Every part header, first included,
// is checked against it (part number, size, version, header digest; see
// PartMap.Check) before the part is opened, and no plaintext of a part is
// returned before its segment authenticates, so no byte of a part the
// object was not completed with is ever returned. Parts are closed as soon
// as they are done. The reader also implements io.WriterTo (each part's
// batched WriteTo) and io.Closer.
func MultipartReader(src io.Reader, pm *PartMap, first *PartHeader, off, n int64, open PartOpener) io.Reader {
	return MultipartReaderIndexed(src, pm, first, off, n, open, nil)
}

// MultipartReaderIndexed is MultipartReader for a range that starts or
// ends inside a compressed part: ix holds those parts' opened block indexes
// (PartMap.NeedIndexes), and src the stored bytes of
// pm.FetchRangeIndexed(off, n, ix). Compressed parts read whole need none.
func MultipartReaderIndexed(src io.Reader, pm *PartMap, first *PartHeader, off, n int64, open PartOpener, ix PartIndexes) io.Reader {
	if !pm.verified {
		return &errReader{fmt.Errorf("%w: part map not verified against the object", ErrManifest)}
	}
	f, err := pm.FetchRangeIndexed(off, n, ix)
	if err != nil {
		return &errReader{err}
	}
	if f.HeaderInline != (first == nil) {
		return &errReader{fmt.Errorf("%w: first part header given for a range that includes it, or missing", ErrRange)}
	}
	i := pm.find(off)
	return &mpReader{src: src, pm: pm, open: open, first: first, idx: i, off: off - pm.plainStart[i], remaining: n, ix: ix}
}

type mpReader struct {
	src       io.Reader
	pm        *PartMap
	open      PartOpener
	first     *PartHeader // the first part's header, read by the caller
	idx       int         // index of the next part to open
	off       int64       // plaintext offset within the next part
	remaining int64       // plaintext still to deliver after the current part's reader
	ix        PartIndexes // block indexes of compressed parts read in part
	cur       io.Reader
	part      *Part
	err       error
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

// next opens the next part, or returns io.EOF when the range is done.
func (m *mpReader) next() error {
	if m.remaining == 0 {
		return io.EOF
	}
	ph := m.first
	m.first = nil
	if ph == nil {
		var hdr [PartHeaderSize]byte
		if _, err := io.ReadFull(m.src, hdr[:]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return fmt.Errorf("%w: header of part %d of the object missing or short", ErrTruncated, m.idx+1)
			}
			return err
		}
		var err error
		if ph, err = ParsePartHeader(hdr[:]); err != nil {
			return err
		}
	}
	if err := m.pm.Check(m.idx, ph); err != nil {
		return err
	}
	p, err := m.open(ph)
	if err != nil {
		return err
	}
	if p.PartNumber() != ph.PartNumber() || p.PlainLen() != ph.PlainLen() {
		p.Close()
		return fmt.Errorf("%w: opener returned another part", ErrAuth)
	}
	k := min(m.remaining, ph.PlainLen()-m.off)
	m.part = p
	switch {
	case ph.comp == nil:
		m.cur = p.DecryptReader(m.src, m.off, k)
	case m.off == 0 && k == ph.PlainLen():
		m.cur = p.DecryptCompressedReader(m.src, nil, 0, k)
	default:
		m.cur = p.DecryptCompressedReader(m.src, m.ix[m.idx], m.off, k)
	}
	m.remaining -= k
	m.idx++
	m.off = 0
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

// WriteTo hands each part's decrypting reader to w whole, so that its
// batched WriteTo (several segments per Write) serves multipart objects too.
func (m *mpReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for m.err == nil {
		if m.cur == nil {
			if m.err = m.next(); m.err != nil {
				break
			}
		}
		var n int64
		var err error
		if wt, ok := m.cur.(io.WriterTo); ok {
			n, err = wt.WriteTo(w)
		} else {
			n, err = io.Copy(w, m.cur)
		}
		total += n
		m.closePart()
		if err != nil {
			m.err = err
		}
	}
	if m.err == io.EOF {
		return total, nil
	}
	return total, m.err
}
