package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"io"
	"net/http"
	"strconv"
	"time"
)

// DefaultChunkSize is the chunk size ChunkEncoder uses when given 0.
const DefaultChunkSize = 64 << 10

// ChunkEncoder frames a payload as aws-chunked: signed chunks
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or -TRAILER with a checksum) or
// unsigned chunks with a checksum trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER).
// Its length is known up front (ChunkedLength), so the request can carry an
// exact Content-Length.
type ChunkEncoder struct {
	src       io.Reader
	chunk     []byte
	out       []byte // encoded bytes not yet returned
	off       int
	done      bool
	err       error
	ck        hash.Hash
	ckName    string
	signed    bool
	mac       hash.Hash
	prefix    string // chunk string-to-sign prefix
	tprefix   string // trailer string-to-sign prefix
	prev      string
	remaining int64 // payload bytes still expected, -1 if unknown
}

// NewUnsignedChunkEncoder frames payload in chunks of chunkSize bytes
// (DefaultChunkSize when 0) for STREAMING-UNSIGNED-PAYLOAD-TRAILER, with the
// named checksum (x-amz-checksum-crc32c, ...) as trailer, or no trailer when
// checksum is "". payloadLen (-1 if unknown) makes a short payload an error.
func NewUnsignedChunkEncoder(payload io.Reader, payloadLen int64, chunkSize int, checksum string) (*ChunkEncoder, error) {
	return newChunkEncoder(payload, payloadLen, chunkSize, checksum)
}

func newChunkEncoder(payload io.Reader, payloadLen int64, chunkSize int, checksum string) (*ChunkEncoder, error) {
	if chunkSize <= 0 {
		chunkSize = DefaultChunkSize
	}
	e := &ChunkEncoder{src: payload, chunk: make([]byte, chunkSize), remaining: payloadLen}
	if checksum != "" {
		e.ck = newChecksumHash(checksum)
		if e.ck == nil {
			return nil, clone(ErrInvalidChecksum)
		}
		e.ckName = checksum
	}
	return e, nil
}

// StreamingPayloadHash returns the x-amz-content-sha256 value for a signed
// aws-chunked body, with or without a trailer.
func StreamingPayloadHash(checksum string) string {
	if checksum != "" {
		return StreamingPayloadTrailer
	}
	return StreamingPayload
}

// SignStreaming signs r for a signed aws-chunked body and returns the
// headers to set (as Sign) and the encoder of the body. The caller sets, on
// r.Header before the call, Content-Encoding: aws-chunked,
// X-Amz-Decoded-Content-Length (payloadLen) and, with a checksum,
// X-Amz-Trailer: <checksum>; the request's Content-Length is
// ChunkedLength(payloadLen, chunkSize, true, checksum).
func (s *Signer) SignStreaming(r *Request, payload io.Reader, payloadLen int64, chunkSize int, checksum string, now time.Time) (http.Header, *ChunkEncoder, error) {
	e, err := newChunkEncoder(payload, payloadLen, chunkSize, checksum)
	if err != nil {
		return nil, nil, err
	}
	h := s.Sign(r, StreamingPayloadHash(checksum), now)
	auth := h.Get("Authorization")
	seed := auth[len(auth)-64:]
	amzDate := formatAmzDate(now)
	sc := s.scope(amzDate)
	key := s.keys.get(s.AccessKey, s.SecretKey, sc)
	e.signed = true
	e.mac = hmac.New(sha256.New, key[:])
	e.prefix = chunkAlgorithm + "\n" + amzDate + "\n" + sc.String() + "\n"
	e.tprefix = trailerAlgorithm + "\n" + amzDate + "\n" + sc.String() + "\n"
	e.prev = seed
	return h, e, nil
}

// ChunkedLength is the length of the aws-chunked encoding of a payload of
// payloadLen bytes in chunks of chunkSize (DefaultChunkSize when 0), with
// chunk signatures when signed, and the named checksum trailer if any, as
// ChunkEncoder produces it.
func ChunkedLength(payloadLen int64, chunkSize int, signed bool, checksum string) int64 {
	if chunkSize <= 0 {
		chunkSize = DefaultChunkSize
	}
	sigLen := int64(0)
	if signed {
		sigLen = int64(len(";chunk-signature=") + 64)
	}
	frame := func(n int64) int64 {
		return int64(len(strconv.FormatInt(n, 16))) + sigLen + 2 + n + 2
	}
	full := payloadLen / int64(chunkSize)
	total := full * frame(int64(chunkSize))
	if rest := payloadLen % int64(chunkSize); rest > 0 {
		total += frame(rest)
	}
	total += 1 + sigLen + 2 // final chunk header
	if checksum == "" {
		return total + 2
	}
	size := 0
	if h := newChecksumHash(checksum); h != nil {
		size = h.Size()
	}
	total += int64(len(checksum) + 1 + base64.StdEncoding.EncodedLen(size) + 2)
	if signed {
		total += int64(len(trailerSigPrefix) + 64 + 2)
	}
	return total + 2
}

// Read implements io.Reader.
func (e *ChunkEncoder) Read(p []byte) (int, error) {
	for e.off == len(e.out) {
		if e.err != nil {
			return 0, e.err
		}
		if e.done {
			return 0, io.EOF
		}
		e.fill()
	}
	n := copy(p, e.out[e.off:])
	e.off += n
	return n, nil
}

// fill encodes the next chunk (or the end) into e.out.
func (e *ChunkEncoder) fill() {
	e.out, e.off = e.out[:0], 0
	n, err := io.ReadFull(e.src, e.chunk)
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		err = nil
	case err != nil:
		e.err = err
		return
	}
	if e.remaining >= 0 {
		if int64(n) > e.remaining {
			n = int(e.remaining) // never more than declared
		}
		e.remaining -= int64(n)
	}
	data := e.chunk[:n]
	if e.ck != nil {
		e.ck.Write(data)
	}
	e.out = strconv.AppendInt(e.out, int64(n), 16)
	if e.signed {
		sum := sha256.Sum256(data)
		e.prev = e.sign(e.prefix + e.prev + "\n" + EmptySHA256 + "\n" + hex.EncodeToString(sum[:]))
		e.out = append(e.out, ";chunk-signature="...)
		e.out = append(e.out, e.prev...)
	}
	e.out = append(e.out, "\r\n"...)
	if n > 0 {
		e.out = append(e.out, data...)
		e.out = append(e.out, "\r\n"...)
		if n == len(e.chunk) {
			return
		}
		// A short chunk is the last one: add the final chunk now.
		e.out = strconv.AppendInt(e.out, 0, 16)
		if e.signed {
			e.prev = e.sign(e.prefix + e.prev + "\n" + EmptySHA256 + "\n" + EmptySHA256)
			e.out = append(e.out, ";chunk-signature="...)
			e.out = append(e.out, e.prev...)
		}
		e.out = append(e.out, "\r\n"...)
	}
	if e.remaining > 0 {
		e.err = io.ErrUnexpectedEOF
		return
	}
	if e.ck != nil {
		line := e.ckName + ":" + base64.StdEncoding.EncodeToString(e.ck.Sum(nil))
		e.out = append(e.out, line...)
		e.out = append(e.out, "\r\n"...)
		if e.signed {
			sum := sha256.Sum256([]byte(line + "\n"))
			e.out = append(e.out, trailerSigPrefix...)
			e.out = append(e.out, e.sign(e.tprefix+e.prev+"\n"+hex.EncodeToString(sum[:]))...)
			e.out = append(e.out, "\r\n"...)
		}
	}
	e.out = append(e.out, "\r\n"...)
	e.done = true
}

func (e *ChunkEncoder) sign(sts string) string {
	e.mac.Reset()
	e.mac.Write([]byte(sts))
	return hex.EncodeToString(e.mac.Sum(nil))
}
