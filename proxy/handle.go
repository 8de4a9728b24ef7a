package proxy

import (
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/valyala/fasthttp"
)

// handlers serve the operations of s3wire's table. An operation without a
// handler, or one whose Spec refuses its body, is answered NotImplemented:
// nothing is forwarded.
var handlers = map[s3wire.Op]func(*Server, *request) error{
	s3wire.ListBuckets:          (*Server).listBuckets,
	s3wire.BucketRead:           (*Server).bucketRead,
	s3wire.BucketWrite:          (*Server).bucketWrite,
	s3wire.DeleteObjects:        (*Server).relay,
	s3wire.DeleteObject:         (*Server).relay,
	s3wire.ObjectRead:           (*Server).relay,
	s3wire.ObjectWrite:          (*Server).relay,
	s3wire.AbortMultipart:       (*Server).relay,
	s3wire.ListMultipartUploads: (*Server).relay,
	s3wire.ListObjects:          (*Server).listObjects,
	s3wire.ListVersions:         (*Server).listObjects,
	s3wire.ListParts:            (*Server).listParts,
	s3wire.GetAttributes:        (*Server).getObjectAttributes,
	s3wire.PutObject:            (*Server).putObject,
	s3wire.GetObject:            (*Server).getObject,
	s3wire.HeadObject:           (*Server).getObject,
	s3wire.CopyObject:           (*Server).copyObject,
	s3wire.CreateMultipart:      (*Server).createMultipart,
	s3wire.UploadPart:           (*Server).uploadPart,
	s3wire.UploadPartCopy:       (*Server).uploadPartCopy,
	s3wire.CompleteMultipart:    (*Server).completeMultipart,
	s3wire.PostObject:           (*Server).postObject,
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	r := newRequest(ctx)
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic", "request", r.id, "panic", p, "stack", string(debug.Stack()))
			ctx.SetConnectionClose()
			s.writeError(r, s3wire.Internal(fmt.Errorf("panic: %v", p)))
		}
	}()
	ctx.Response.Header.Set("X-Amz-Request-Id", r.id)
	uri := string(ctx.RequestURI())
	method := string(ctx.Method())
	// Health endpoints answer unsigned requests only: "healthz" and
	// "readyz" are valid bucket names too.
	if (method == http.MethodGet || method == http.MethodHead) && len(ctx.Request.Header.Peek("Authorization")) == 0 {
		switch uri {
		case "/healthz":
			ctx.SetStatusCode(http.StatusOK)
			ctx.SetBodyString("ok\n")
			return
		case "/readyz":
			s.serveReady(r)
			return
		case "/metrics":
			if s.serveMetrics(ctx) {
				return
			}
		}
	}
	start := time.Now()
	release, ok := s.admit(r)
	if !ok {
		s.accessLog(r, method, uri, start)
		return
	}
	// A streamed response body takes the slot over (streamBody), and
	// with it the request's place in the in-flight gauge.
	s.metrics.inFlight.Inc()
	r.slot = func() {
		release()
		s.metrics.inFlight.Dec()
	}
	defer func() {
		if r.slot != nil {
			r.slot()
		}
	}()
	err := s.serve(r, method, uri)
	if err != nil {
		s.writeError(r, err)
	}
	s.metrics.observe(r.metricName(), ctx.Response.StatusCode(), err, start)
	s.accessLog(r, method, uri, start)
}

func (s *Server) serve(r *request, method, uri string) error {
	if err := s.read(r, method, uri); err != nil {
		return err
	}
	if err := s.admitIdentity(r); err != nil {
		return err
	}
	if s3wire.HasSSEC(r.header) {
		return s3wire.NotImplemented("SSE-C (customer-provided keys) cannot be combined with s3seal's encryption")
	}
	if done, err := s.refuseDotSegments(r); done || err != nil {
		return err
	}
	h := handlers[r.op]
	if h == nil || r.spec.Body == s3wire.BodyRefused {
		return s3wire.NotImplemented(method + " " + r.t.RawPath + " is not supported through s3seal")
	}
	return h(s, r)
}

// expect runs before a body is accepted (Expect: 100-continue): a request
// that fails authentication or authorization (a signature that cannot
// verify, an identity without write permission) gets its S3 error at once,
// and its body is never sent. The handler reads the request again.
func (s *Server) expect(ctx *fasthttp.RequestCtx) int {
	h := &ctx.Request.Header
	r := newRequest(ctx)
	r.beforeBody = true
	err := s.read(r, string(h.Method()), string(h.RequestURI()))
	if err == nil {
		return fasthttp.StatusContinue
	}
	ctx.Response.Header.Set("X-Amz-Request-Id", r.id)
	s.writeError(r, err)
	return ctx.Response.StatusCode()
}

func (s *Server) writeError(r *request, err error) {
	e := s.logError(r, err)
	ctx := r.ctx
	ctx.Response.ResetBody()
	ctx.Response.Header.Del("ETag")
	if e.Code == s3wire.ErrSlowDown.Code {
		// Load refusals (limits.go, a busy store, a throttled KMS): when
		// to try again, for clients that read it.
		ctx.Response.Header.Set("Retry-After", "1")
	}
	ctx.SetStatusCode(e.Status)
	if string(ctx.Method()) == http.MethodHead {
		return
	}
	resource := ""
	if r.t != nil {
		resource = r.t.RawPath
	}
	ctx.Response.Header.SetContentType("application/xml")
	ctx.SetBody(e.Render(resource, r.id))
	// A request body may still be on the connection, unread: the
	// connection cannot carry another request unless it is drained.
	if ctx.Request.Header.ContentLength() != 0 && !s.drainRefused(r, e) {
		ctx.SetConnectionClose()
	}
}

// drainLimit bounds the unread body writeError reads and drops (drainWait
// bounds how long it waits for it).
const (
	drainLimit = 4 << 20
	drainWait  = 5 * time.Second
)

// drainRefused reads and drops what is left of the body of a refused
// request, at most drainLimit bytes, and reports whether it all came.
// Closing a connection with unread bytes in its receive buffer makes the
// kernel reset it, and a client still writing its body then sees a
// broken pipe, or loses the error response already sent, instead of the
// S3 error: a retry of a request that can never succeed, or an error that
// says nothing. Handlers read bodies in their own goroutine only, so once
// one has returned nothing else reads the stream. Not drained: a body
// known to be larger, an Expect: 100-continue check (no body comes), a
// client too slow to send it (RequestTimeout), refusals for load (they
// must stay cheap), a panic; those connections are closed as before.
func (s *Server) drainRefused(r *request, e *s3wire.Error) bool {
	ctx := r.ctx
	if r.beforeBody || ctx.Response.ConnectionClose() || e.Code == errRequestTimeout.Code || e.Code == s3wire.ErrSlowDown.Code {
		return false
	}
	if n := ctx.Request.Header.ContentLength(); !r.bodyTaken && n > drainLimit {
		return false
	}
	if err := ctx.SetReadDeadline(time.Now().Add(drainWait)); err != nil {
		return false
	}
	_, err := io.CopyN(io.Discard, r.bodyStream(), drainLimit+1)
	return err == io.EOF
}

// logError logs a request's failure and returns the S3 error the client
// gets for it.
func (s *Server) logError(r *request, err error) *s3wire.Error {
	e := s3wire.AsError(storeUnavailable(err))
	attrs := []any{"id", r.id, "op", r.op.String(), "code", e.Code, "status", e.Status}
	if r.t != nil {
		attrs = append(attrs, "bucket", r.t.Bucket, "key", r.t.Key)
	}
	if e.Cause != nil {
		attrs = append(attrs, "cause", e.Cause.Error())
	}
	if e.Status >= 500 {
		s.log.Error("request failed", attrs...)
	} else {
		s.log.Info("request refused", attrs...)
	}
	return e
}
