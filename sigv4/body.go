package sigv4

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"net/http"

	"github.com/minio/crc64nvme"
)

// TrailerReader is implemented by the readers Body returns for the trailer
// payload modes: after the reader has returned io.EOF, Trailer holds the
// verified trailing headers (canonical keys).
type TrailerReader interface {
	io.Reader
	Trailer() http.Header
}

// Body wraps the request body according to the payload mode, so that the
// caller never sees a clean io.EOF for a body that fails verification:
//
//   - hex SHA-256: bytes pass through; at the end the hash is compared and
//     ErrContentSHA256Mismatch is returned instead of io.EOF on mismatch;
//   - UNSIGNED-PAYLOAD: the body as is;
//   - STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER), STREAMING-UNSIGNED-PAYLOAD-TRAILER:
//     a decoder of the aws-chunked framing that verifies every chunk
//     signature (chained from the seed signature) and the trailer, and yields
//     the decoded payload.
//
// decodedLength is the payload length the client declared (Content-Length,
// or x-amz-decoded-content-length for aws-chunked); -1 if unknown. A body of
// another length fails with IncompleteBody. A x-amz-checksum-* header or
// trailer is verified over the payload (BadDigest on mismatch).
//
// Bytes are returned as they arrive, before the check that covers them
// completes (a chunk's signature is checked at its end, the hash at the end
// of the body): any error other than io.EOF means the whole body is bad and
// whatever was made of it must be discarded.
func (a *Auth) Body(body io.Reader, decodedLength int64) (io.Reader, error) {
	var ck, md *checksum
	var err error
	if a.ChecksumAlgorithm != "" {
		if ck, err = newChecksum(a.ChecksumAlgorithm, a.ChecksumValue); err != nil {
			return nil, err
		}
	}
	if a.ContentMD5 != "" {
		if md, err = newChecksum(contentMD5, a.ContentMD5); err != nil {
			return nil, err
		}
	}
	switch a.PayloadHash {
	case UnsignedPayload:
		return &plainReader{r: body, want: decodedLength, ck: ck, md5: md}, nil
	case StreamingPayload, StreamingPayloadTrailer, StreamingUnsignedTrailer:
		return newChunkedReader(a, body, decodedLength, ck, md)
	}
	want, err := hex.DecodeString(a.PayloadHash)
	if err != nil || len(want) != sha256.Size {
		return nil, clone(ErrInvalidContentSHA256)
	}
	return &plainReader{r: body, want: decodedLength, ck: ck, md5: md, sha: sha256.New(), sum: [32]byte(want)}, nil
}

// plainReader passes a non-chunked body through, counting it and, when
// asked, hashing it; the checks run when the body ends.
type plainReader struct {
	r    io.Reader
	want int64 // expected length, -1 if unknown
	n    int64
	ck   *checksum
	md5  *checksum
	sha  hash.Hash // nil for UNSIGNED-PAYLOAD
	sum  [32]byte
	err  error
}

func (p *plainReader) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	n, err := p.r.Read(b)
	if n > 0 {
		p.n += int64(n)
		if p.sha != nil {
			p.sha.Write(b[:n])
		}
		if p.ck != nil {
			p.ck.h.Write(b[:n])
		}
		if p.md5 != nil {
			p.md5.h.Write(b[:n])
		}
		if p.want >= 0 && p.n > p.want {
			p.err = clone(ErrIncompleteBody)
			return n, p.err
		}
	}
	switch {
	case err == io.EOF:
		p.err = p.finish()
		return n, p.err
	case err != nil:
		p.err = ioError(err)
		return n, p.err
	}
	return n, nil
}

func (p *plainReader) finish() error {
	if p.want >= 0 && p.n != p.want {
		return clone(ErrIncompleteBody)
	}
	if p.sha != nil {
		var got [32]byte
		if subtle.ConstantTimeCompare(p.sha.Sum(got[:0]), p.sum[:]) != 1 {
			return clone(ErrContentSHA256Mismatch)
		}
	}
	if err := p.ck.verify(); err != nil {
		return err
	}
	if err := p.md5.verify(); err != nil {
		return err
	}
	return io.EOF
}

// contentMD5 names the Content-MD5 check among the checksums.
const contentMD5 = "content-md5"

// checksum is a running x-amz-checksum-* (or Content-MD5) computation and
// the value to match.
type checksum struct {
	name string // x-amz-checksum-crc32c, ...
	h    hash.Hash
	want []byte // decoded expected digest; nil when it comes in a trailer
}

func newChecksumHash(name string) hash.Hash {
	switch name {
	case "x-amz-checksum-crc32":
		return crc32.NewIEEE()
	case "x-amz-checksum-crc32c":
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "x-amz-checksum-crc64nvme":
		return crc64nvme.New()
	case "x-amz-checksum-sha1":
		return sha1.New()
	case "x-amz-checksum-sha256":
		return sha256.New()
	case contentMD5:
		return md5.New()
	}
	return nil
}

// newChecksum starts a checksum; value is the base64 digest, or "" when it
// will come in a trailer.
func newChecksum(name, value string) (*checksum, error) {
	h := newChecksumHash(name)
	if h == nil {
		return nil, clone(ErrInvalidChecksum)
	}
	c := &checksum{name: name, h: h}
	if value != "" {
		if err := c.setWant(value); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *checksum) setWant(value string) error {
	want, err := base64.StdEncoding.DecodeString(value)
	if err != nil || len(want) != c.h.Size() {
		if c.name == contentMD5 {
			return clone(ErrInvalidDigest)
		}
		return clone(ErrInvalidChecksum)
	}
	c.want = want
	return nil
}

// verify compares the digest with the expected one; a nil checksum passes.
func (c *checksum) verify() error {
	if c == nil {
		return nil
	}
	if c.want == nil {
		return clone(ErrInvalidChecksum)
	}
	if subtle.ConstantTimeCompare(c.h.Sum(nil), c.want) != 1 {
		if c.name == contentMD5 {
			return clone(ErrContentMD5Mismatch)
		}
		return errBadDigest(c.name)
	}
	return nil
}

// asError converts any error to an *Error (read errors become IncompleteBody).
func asError(err error) error {
	var e *Error
	if errors.As(err, &e) || err == io.EOF {
		return err
	}
	return ioError(err)
}
