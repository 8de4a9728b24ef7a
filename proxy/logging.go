package proxy

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/s3seal/s3seal/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// What the proxy says of each request: one access line, and the store's
// errors that it relays.

// accessLog writes the request's access line at info level: what was
// asked, by whom, and how it ended. Never a signature, a secret or any
// object data: the URI's credentials are redacted, and the key is the
// object's name only.
func (s *Server) accessLog(r *request, method, uri string, start time.Time) {
	ctx := r.ctx
	key, bucket := "", ""
	if r.t != nil {
		bucket, key = r.t.Bucket, r.t.Key
	}
	// The plaintext length of an aws-chunked body, whose wire length
	// includes the chunk signatures.
	in := int64(ctx.Request.Header.ContentLength())
	if n, err := strconv.ParseInt(r.header.Get("X-Amz-Decoded-Content-Length"), 10, 64); err == nil {
		in = n
	}
	out := int64(ctx.Response.Header.ContentLength())
	if ctx.IsHead() || out < 0 {
		out = 0
	}
	s.log.LogAttrs(r.std, slog.LevelInfo, "access",
		slog.String("id", r.id),
		slog.String("op", r.metricName()),
		slog.String("method", method),
		slog.String("uri", redactURI(uri)),
		slog.String("bucket", bucket),
		slog.String("key", key),
		slog.Int("status", ctx.Response.StatusCode()),
		slog.Int64("bytes_in", max(in, 0)),
		slog.Int64("bytes_out", out),
		slog.Duration("dur", time.Since(start)),
		slog.String("access_key", r.accessKey()),
		slog.String("remote", ctx.RemoteAddr().String()),
	)
}

// accessKey names the caller in the log: its access key (never the
// secret), "anonymous", or "-" before authentication.
func (r *request) accessKey() string {
	switch {
	case r.identity != nil:
		return r.identity.AccessKey
	case r.auth != nil:
		return "anonymous"
	}
	return "-"
}

// storeUnavailable is the S3 error for a store that did not answer: 503,
// which every SDK retries, rather than a 500 that blames the proxy.
func storeUnavailable(err error) error {
	var ue *upstream.UnavailableError
	if !errors.As(err, &ue) {
		return err
	}
	if errors.Is(ue, fasthttp.ErrNoFreeConns) {
		// Every store connection stayed busy for UpstreamConnWait: the
		// proxy is loaded, not the store gone.
		e := *s3wire.ErrSlowDown
		e.Cause = err
		return &e
	}
	return &s3wire.Error{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable",
		Message: "Service is unable to handle request.", Cause: err}
}

// logStoreError logs a server error the store answered, which the proxy
// relays as it is, and returns the error document it read (at most
// MaxSmallBody bytes) for the client; resp's body is consumed.
func (s *Server) logStoreError(r *request, resp *fasthttp.Response) []byte {
	attrs := []any{"id", r.id, "op", r.op.String(), "bucket", r.bucket(), "status", resp.StatusCode()}
	var body []byte
	if !r.ctx.IsHead() {
		b, err := upstream.ReadBody(resp, s3wire.MaxSmallBody)
		if err != nil {
			attrs = append(attrs, "read_err", err.Error())
		} else {
			body = b
			if code, _, _, ok := s3wire.Element(b, "Code"); ok {
				attrs = append(attrs, "code", string(code))
			}
			if msg, _, _, ok := s3wire.Element(b, "Message"); ok {
				attrs = append(attrs, "message", string(msg))
			}
		}
	}
	s.log.Warn("store error relayed", attrs...)
	return body
}
