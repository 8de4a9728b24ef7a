package proxy

import (
	"strings"

	"bytes"
	"errors"
	"github.com/s3seal/s3seal/sigv4"
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

// clientBody is the request's payload, verified as it is read (payload
// hash, chunk signatures, checksums, Content-MD5, length: see
// sigv4.Auth.Body). A failed check surfaces as an error in place of io.EOF,
// so a reader downstream (the encryptor) never completes a bad upload.
func clientBody(r *request, plainLen int64) (io.Reader, error) {
	src := r.ctx.RequestBodyStream()
	if src == nil {
		src = bytes.NewReader(r.ctx.Request.Body())
	}
	body, err := r.auth.Body(src, plainLen)
	if err != nil {
		return nil, fromAuthError(err)
	}
	return body, nil
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

// echoChecksums repeats the client's verified checksum (header or trailer)
// in the write response, as S3 does.
func echoChecksums(r *request, body io.Reader) {
	if alg := r.auth.ChecksumAlgorithm; alg != "" {
		r.ctx.Response.Header.Set(alg, r.auth.ChecksumValue)
	}
	if tr, ok := body.(sigv4.TrailerReader); ok {
		for name, vs := range tr.Trailer() {
			if strings.HasPrefix(name, "X-Amz-Checksum-") && len(vs) > 0 {
				r.ctx.Response.Header.Set(strings.ToLower(name), vs[0])
			}
		}
	}
}
