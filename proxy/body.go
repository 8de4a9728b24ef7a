package proxy

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/s3seal/s3seal/proxy/s3wire"
)

// plainLength is the length of the payload the client sends: the decoded
// length for aws-chunked bodies, the Content-Length otherwise.
func plainLength(r *request) (int64, error) {
	if v := r.header.Get("X-Amz-Decoded-Content-Length"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, s3wire.InvalidArgument("Invalid x-amz-decoded-content-length")
		}
		return n, nil
	}
	n := r.ctx.Request.Header.ContentLength()
	if n < 0 {
		return 0, s3wire.ErrMissingContentLength
	}
	return int64(n), nil
}

// clientBody is the request's payload, verified as it is read (payload
// hash, chunk signatures, checksums, Content-MD5, length: see
// sigv4.Auth.Body). A failed check surfaces as an error in place of io.EOF,
// so a reader downstream (the encryptor) never completes a bad upload.
func clientBody(r *request, plainLen int64) (io.Reader, error) {
	body, err := r.auth.Body(r.bodyStream(), plainLen)
	if err != nil {
		return nil, s3wire.FromAuthError(err)
	}
	return body, nil
}

// readSmallBody reads a body that is configuration, not object data, whole
// (at most s3wire.MaxSmallBody), checking its payload hash and
// Content-MD5. A request without one gives nil.
func (s *Server) readSmallBody(r *request) ([]byte, error) {
	n := r.ctx.Request.Header.ContentLength()
	decoded, err := plainLength(r)
	if err != nil {
		if n <= 0 {
			return nil, nil
		}
		return nil, err
	}
	if decoded > s3wire.MaxSmallBody {
		return nil, s3wire.ErrEntityTooLarge
	}
	if decoded <= 0 && n <= 0 {
		return nil, nil
	}
	body, err := clientBody(r, decoded)
	if err != nil {
		return nil, err
	}
	buf, err := io.ReadAll(io.LimitReader(body, s3wire.MaxSmallBody+1))
	if err != nil {
		return nil, bodyError(err)
	}
	return buf, nil
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
	var e *s3wire.Error
	if errors.As(err, &e) {
		return e
	}
	if ae := s3wire.FromAuthError(err); ae != err {
		return ae
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return s3wire.ErrIncompleteBody
	}
	return &s3wire.Error{Status: http.StatusBadRequest, Code: "IncompleteBody",
		Message: "The request body could not be read completely.", Cause: err}
}
