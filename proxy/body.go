package proxy

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"hash"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// plainLength is the length of the payload the client sends: the decoded
// length for aws-chunked bodies, the Content-Length otherwise.
func plainLength(r *request) (int64, error) {
	if v := r.header.Get("X-Amz-Decoded-Content-Length"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, errInvalidArgument("Invalid x-amz-decoded-content-length")
		}
		return n, nil
	}
	n := r.ctx.Request.Header.ContentLength()
	if n < 0 {
		return 0, errMissingContentLength
	}
	return int64(n), nil
}

// checkReader counts the payload and verifies Content-MD5. It returns an
// S3 error instead of io.EOF when the payload is short, long or does not
// match, so a reader downstream (the encryptor) never sees a clean end of a
// bad body and never completes the upstream upload.
type checkReader struct {
	r      io.Reader
	want   int64
	n      int64
	md5    hash.Hash
	md5Exp []byte
	err    error
}

func newCheckReader(r io.Reader, want int64, h http.Header) (*checkReader, error) {
	c := &checkReader{r: r, want: want}
	if v := h.Get("Content-Md5"); v != "" {
		exp, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(exp) != md5.Size {
			return nil, errInvalidDigest
		}
		c.md5, c.md5Exp = md5.New(), exp
	}
	return c, nil
}

func (c *checkReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if rem := c.want - c.n; int64(len(p)) > rem+1 {
		// Ask for one byte more than remains, to notice a long body.
		p = p[:rem+1]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.md5 != nil && n > 0 {
		c.md5.Write(p[:n])
	}
	switch {
	case c.n > c.want:
		c.err = errIncompleteBody
		return 0, c.err
	case err == io.EOF:
		if c.n != c.want {
			c.err = errIncompleteBody
		} else if c.md5 != nil && !bytes.Equal(c.md5.Sum(nil), c.md5Exp) {
			c.err = errBadDigest
		} else {
			c.err = io.EOF
		}
		return n, c.err
	case err != nil:
		c.err = err
		return n, err
	}
	return n, nil
}

// verifiedMD5 returns the base64 plaintext MD5 the client declared, which
// is only true once the body has been read to a clean EOF.
func (c *checkReader) declaredMD5() string {
	if c.md5Exp == nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(c.md5Exp)
}

// errRecorder remembers the first error its reader returned other than
// io.EOF: when an upstream request fails, it tells whether the client's
// body was at fault.
type errRecorder struct {
	r   io.Reader
	mu  sync.Mutex
	err error
}

func (e *errRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.mu.Lock()
		if e.err == nil {
			e.err = err
		}
		e.mu.Unlock()
	}
	return n, err
}

func (e *errRecorder) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// bodyError turns a failure while reading the client's body into the S3
// error to report.
func bodyError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if ae := fromAuthError(err); ae != err {
		return ae
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errIncompleteBody
	}
	return &Error{Status: http.StatusBadRequest, Code: "IncompleteBody",
		Message: "The request body could not be read completely.", Cause: err}
}
