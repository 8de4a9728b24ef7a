package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// aws-chunked framing (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html):
//
//	signed:    <hex-size>;chunk-signature=<sig>\r\n<data>\r\n ... 0;chunk-signature=<sig>\r\n
//	           then \r\n, or with -TRAILER: name:value\r\n ... x-amz-trailer-signature:<sig>\r\n\r\n
//	unsigned:  <hex-size>\r\n<data>\r\n ... 0\r\n name:value\r\n ... \r\n
//
// Chunk i's signature is HMAC(key, "AWS4-HMAC-SHA256-PAYLOAD\n" date "\n" scope
// "\n" sig(i-1) "\n" sha256("") "\n" sha256(data_i)), sig(-1) being the seed
// (the request's) signature. The trailer signature is HMAC(key,
// "AWS4-HMAC-SHA256-TRAILER\n" date "\n" scope "\n" sig(last chunk) "\n"
// sha256(trailer lines, each "name:value\n")).

const (
	maxChunkLine    = 4096    // a chunk header or trailer line
	maxTrailerBytes = 16384   // all trailer lines together
	maxChunkSize    = 1 << 40 // sanity bound on one chunk's declared size
	chunkBufSize    = 4096    // small: chunk data is read straight into the caller's buffer
)

type chunkedReader struct {
	br       *bufio.Reader
	signed   bool // chunks carry signatures
	trailer  bool // a trailer section follows the last chunk
	allowed  []string
	want     int64 // declared decoded length, -1 if unknown
	n        int64 // decoded bytes so far
	left     int64 // bytes left in the current chunk
	done     bool
	err      error
	minChunk int64     // smallest size of a chunk but the last, 0 for none
	chunks   int64     // data chunks seen
	lastSize int64     // size of the previous data chunk
	ck       *checksum // x-amz-checksum-*, from a header or the trailer
	md5      *checksum // Content-MD5
	trailers http.Header

	// signature chaining
	mac      hash.Hash // HMAC-SHA256 under the signing key
	sha      hash.Hash // SHA-256 of the current chunk's data
	prefix   []byte    // "AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n"
	tprefix  []byte    // same for the trailer algorithm
	prev     [64]byte  // previous signature, hex
	declared [64]byte  // the current chunk's declared signature, hex
	sts      []byte
	sum      [32]byte
}

func newChunkedReader(a *Auth, body io.Reader, decodedLength int64, ck, md *checksum) (*chunkedReader, error) {
	c := &chunkedReader{
		signed:   a.PayloadHash != StreamingUnsignedTrailer,
		trailer:  a.PayloadHash != StreamingPayload,
		want:     decodedLength,
		ck:       ck,
		md5:      md,
		minChunk: int64(a.minChunk),
	}
	if c.trailer {
		c.allowed = a.Trailers
		for _, name := range a.Trailers {
			if !strings.HasPrefix(name, "x-amz-checksum-") {
				continue
			}
			if c.ck != nil {
				return nil, &Error{Code: "InvalidRequest", Status: http.StatusBadRequest,
					Message: "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."}
			}
			var err error
			if c.ck, err = newChecksum(name, ""); err != nil {
				return nil, err
			}
		}
	}
	if c.signed {
		if len(a.Signature) != 64 {
			return nil, clone(ErrSignatureDoesNotMatch)
		}
		copy(c.prev[:], a.Signature)
		c.mac = hmac.New(sha256.New, a.key[:])
		c.sha = sha256.New()
		sc := a.scope.String()
		c.prefix = []byte(chunkAlgorithm + "\n" + a.amzDate + "\n" + sc + "\n")
		c.tprefix = []byte(trailerAlgorithm + "\n" + a.amzDate + "\n" + sc + "\n")
		c.sts = make([]byte, 0, len(c.prefix)+64*3+4)
	}
	c.br = getBufReader(body)
	return c, nil
}

// Trailer returns the verified trailing headers once Read has returned io.EOF.
func (c *chunkedReader) Trailer() http.Header {
	if !c.done {
		return nil
	}
	return c.trailers
}

// bufPool recycles the read buffers (one per request body in flight). They
// hold chunk headers and trailers; data mostly bypasses them.
var bufPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, chunkBufSize) }}

func getBufReader(r io.Reader) *bufio.Reader {
	br := bufPool.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

// release returns the read buffer once the body is finished (done or
// failed); the reader never touches it again.
func (c *chunkedReader) release() {
	if c.br != nil {
		c.br.Reset(nil)
		bufPool.Put(c.br)
		c.br = nil
	}
}

// fail records a sticky error and releases the buffer.
func (c *chunkedReader) fail(err error) error {
	c.err = asError(err)
	c.release()
	return c.err
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for c.left == 0 {
		if c.done {
			c.release()
			return 0, io.EOF
		}
		if err := c.nextChunk(); err != nil {
			return 0, c.fail(err)
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.br.Read(p)
	if n > 0 {
		c.left -= int64(n)
		c.n += int64(n)
		if c.signed {
			c.sha.Write(p[:n])
		}
		if c.ck != nil {
			c.ck.h.Write(p[:n])
		}
		if c.md5 != nil {
			c.md5.h.Write(p[:n])
		}
		if c.left == 0 {
			if err := c.endChunk(); err != nil {
				return n, c.fail(err)
			}
		}
		return n, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return 0, c.fail(ioError(err))
}

// readLine reads one CRLF-terminated line, without the CRLF.
func (c *chunkedReader) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull) || len(line) > maxChunkLine:
		return nil, clone(ErrMalformedChunk)
	case err == io.EOF:
		return nil, ioError(io.ErrUnexpectedEOF)
	case err != nil:
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, clone(ErrMalformedChunk)
	}
	return line[:len(line)-2], nil
}

// readTrailerLine reads one trailer line. Besides "name:value\r\n" it
// accepts "name:value\n\r\n", which minio-go sends (MinIO reads it; the
// signed form is "name:value\n" either way).
func (c *chunkedReader) readTrailerLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull) || len(line) > maxChunkLine:
		return nil, clone(ErrMalformedTrailer)
	case err == io.EOF:
		return nil, ioError(io.ErrUnexpectedEOF)
	case err != nil:
		return nil, err
	}
	if len(line) >= 2 && line[len(line)-2] == '\r' {
		return line[:len(line)-2], nil
	}
	// line aliases the read buffer, which Peek may refill: copy it first.
	line = bytes.Clone(line[:len(line)-1])
	b, err := c.br.Peek(2)
	if err != nil || string(b) != "\r\n" {
		if len(b) < 2 && (err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF)) {
			return nil, ioError(io.ErrUnexpectedEOF)
		}
		return nil, clone(ErrMalformedTrailer)
	}
	c.br.Discard(2)
	return line, nil
}

// parseSize parses a chunk size in hex.
func parseSize(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var n int64
	for _, ch := range b {
		d, ok := unhex(ch)
		if !ok {
			return 0, false
		}
		n = n<<4 | int64(d)
		if n > maxChunkSize {
			return 0, false
		}
	}
	return n, true
}

var chunkSigPrefix = []byte(";chunk-signature=")

// nextChunk reads a chunk header; for the final (empty) chunk it also
// verifies its signature and reads the trailer section.
func (c *chunkedReader) nextChunk() error {
	line, err := c.readLine()
	if err != nil {
		return err
	}
	sizePart := line
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		sizePart = line[:i]
		if c.signed {
			sig := line[i:]
			if !bytes.HasPrefix(sig, chunkSigPrefix) || len(sig) != len(chunkSigPrefix)+64 {
				return clone(ErrMalformedChunk)
			}
			copy(c.declared[:], sig[len(chunkSigPrefix):])
		}
	} else if c.signed {
		return clone(ErrMalformedChunk)
	}
	size, ok := parseSize(sizePart)
	if !ok {
		return clone(ErrMalformedChunk)
	}
	if c.want >= 0 && size > c.want-c.n {
		return clone(ErrIncompleteBody)
	}
	if size > 0 {
		if c.chunks > 0 && c.lastSize < c.minChunk {
			e := clone(ErrInvalidChunkSize)
			e.Message = "Only the last chunk is allowed to have a size less than " + strconv.FormatInt(c.minChunk, 10) + " bytes"
			e.Details = []Detail{{"Chunk", strconv.FormatInt(c.chunks, 10)}, {"BadChunkSize", strconv.FormatInt(c.lastSize, 10)}}
			return e
		}
		c.chunks++
		c.lastSize = size
		c.left = size
		return nil
	}
	// Final chunk.
	if c.signed {
		if err := c.checkChunkSignature(); err != nil {
			return err
		}
	}
	if c.trailer {
		if err := c.readTrailers(); err != nil {
			return err
		}
	} else {
		// The empty chunk's data is followed by CRLF; tolerate its absence.
		if b, err := c.br.Peek(2); err == nil {
			if string(b) != "\r\n" {
				return clone(ErrMalformedChunk)
			}
			c.br.Discard(2)
		} else if len(b) != 0 {
			return clone(ErrMalformedChunk)
		}
	}
	if c.want >= 0 && c.n != c.want {
		return clone(ErrIncompleteBody)
	}
	if err := c.ck.verify(); err != nil {
		return err
	}
	if err := c.md5.verify(); err != nil {
		return err
	}
	c.done = true
	return nil
}

// endChunk consumes the CRLF after a chunk's data and checks its signature.
func (c *chunkedReader) endChunk() error {
	var crlf [2]byte
	if _, err := io.ReadFull(c.br, crlf[:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return ioError(err)
	}
	if crlf != [2]byte{'\r', '\n'} {
		return clone(ErrMalformedChunk)
	}
	if c.signed {
		return c.checkChunkSignature()
	}
	return nil
}

// checkChunkSignature compares the declared signature of the chunk just read
// with the one computed from its data, then chains it.
func (c *chunkedReader) checkChunkSignature() error {
	sts := append(c.sts[:0], c.prefix...)
	sts = append(sts, c.prev[:]...)
	sts = append(sts, '\n')
	sts = append(sts, EmptySHA256...)
	sts = append(sts, '\n')
	sts = hex.AppendEncode(sts, c.sha.Sum(c.sum[:0]))
	c.sha.Reset()
	var got [64]byte
	c.sign(sts, &got)
	if !hmac.Equal(got[:], c.declared[:]) {
		return clone(ErrChunkSignature)
	}
	c.prev = got
	c.sts = sts
	return nil
}

func (c *chunkedReader) sign(sts []byte, out *[64]byte) {
	c.mac.Reset()
	c.mac.Write(sts)
	hex.Encode(out[:], c.mac.Sum(c.sum[:0]))
}

var trailerSigPrefix = []byte("x-amz-trailer-signature:")

// readTrailers reads the trailer section after the final chunk, checks the
// trailer signature (signed mode) and records the trailers.
func (c *chunkedReader) readTrailers() error {
	c.trailers = http.Header{}
	var canon []byte // "name:value\n" per trailer, as signed
	var sig []byte
	for {
		line, err := c.readTrailerLine()
		if err != nil {
			// A missing final CRLF is tolerated once the trailers are complete.
			if !c.signed && errors.Is(err, io.ErrUnexpectedEOF) && len(canon) > 0 {
				break
			}
			return err
		}
		if len(line) == 0 {
			if c.signed && sig == nil {
				continue // an empty line before the trailers
			}
			break
		}
		if c.signed && bytes.HasPrefix(line, trailerSigPrefix) {
			if sig != nil {
				return clone(ErrMalformedTrailer)
			}
			// Copied: line aliases the read buffer, which Peek may refill.
			sig = bytes.Clone(bytes.TrimSpace(line[len(trailerSigPrefix):]))
			// The final CRLF after the signature is tolerated missing.
			if b, err := c.br.Peek(2); err == nil && string(b) == "\r\n" {
				c.br.Discard(2)
			} else if len(b) != 0 {
				return clone(ErrMalformedTrailer)
			}
			break
		}
		if sig != nil {
			return clone(ErrMalformedTrailer)
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok || len(name) == 0 {
			return clone(ErrMalformedTrailer)
		}
		lname := strings.ToLower(string(name))
		key := textproto.CanonicalMIMEHeaderKey(lname)
		if !slices.Contains(c.allowed, lname) || c.trailers[key] != nil {
			return clone(ErrMalformedTrailer)
		}
		c.trailers[key] = []string{strings.TrimSpace(string(value))}
		canon = append(canon, line...)
		canon = append(canon, '\n')
		if len(canon) > maxTrailerBytes {
			return clone(ErrMalformedTrailer)
		}
	}
	for _, name := range c.allowed {
		if c.trailers.Get(name) == "" {
			return clone(ErrMalformedTrailer)
		}
	}
	if c.signed {
		if len(sig) != 64 {
			return clone(ErrMalformedTrailer)
		}
		sum := sha256.Sum256(canon)
		sts := append(c.sts[:0], c.tprefix...)
		sts = append(sts, c.prev[:]...)
		sts = append(sts, '\n')
		sts = hex.AppendEncode(sts, sum[:])
		var got [64]byte
		c.sign(sts, &got)
		if !hmac.Equal(got[:], sig) {
			return clone(ErrTrailerSignature)
		}
	}
	if c.ck != nil {
		v := c.trailers.Get(c.ck.name)
		if v == "" {
			return clone(ErrMalformedTrailer)
		}
		if err := c.ck.setWant(v); err != nil {
			return err
		}
	}
	return nil
}
