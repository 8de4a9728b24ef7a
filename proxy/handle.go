package proxy

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/s3seal/s3seal/sigv4"
	"github.com/valyala/fasthttp"
)

// handlers serve the operations of s3wire's table. An operation without a
// handler, or one whose Spec refuses its body, is answered NotImplemented:
// nothing is forwarded.
var handlers = map[s3wire.Op]func(*Server, *request) error{
	s3wire.ListBuckets:          (*Server).relay,
	s3wire.BucketRead:           (*Server).relay,
	s3wire.BucketWrite:          (*Server).relay,
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
			if err := s.Ready(r.std); err != nil {
				s.log.Warn("not ready", "err", err)
				ctx.SetStatusCode(http.StatusServiceUnavailable)
				ctx.SetBodyString("not ready\n")
				return
			}
			ctx.SetStatusCode(http.StatusOK)
			ctx.SetBodyString("ok\n")
			return
		case "/metrics":
			if s.serveMetrics(ctx) {
				return
			}
		}
	}
	start := time.Now()
	err := s.serve(r, method, uri)
	if err != nil {
		s.writeError(r, err)
	}
	s.metrics.observe(r.metricName(), ctx.Response.StatusCode(), err, start)
	s.log.Debug("request", "id", r.id, "op", r.op.String(), "method", method, "uri", uri, "bucket", r.bucket(),
		"status", ctx.Response.StatusCode(), "dur", time.Since(start))
}

func (s *Server) serve(r *request, method, uri string) error {
	if err := s.read(r, method, uri); err != nil {
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
// whose signature cannot verify gets its S3 error at once, and its body is
// never sent. Full verification happens again in the handler.
func (s *Server) expect(ctx *fasthttp.RequestCtx) int {
	h := &ctx.Request.Header
	t, err := s.parseRequestTarget(string(h.RequestURI()), h.Host())
	if err == nil && s3wire.Classify(string(h.Method()), t, false) == s3wire.PostObject {
		// A form's signature is in its body.
		return fasthttp.StatusContinue
	}
	if err == nil {
		_, err = s.verifier.Verify(&sigv4.Request{
			Method: string(h.Method()), RawPath: t.SignedPath, RawQuery: t.RawQuery,
			Host: string(h.Host()), Header: clientHeader(h), Bucket: s.hostBucket(string(h.Host())),
		})
		err = s3wire.FromAuthError(err)
	}
	if err == nil {
		return fasthttp.StatusContinue
	}
	r := newRequest(ctx)
	r.t = t
	ctx.Response.Header.Set("X-Amz-Request-Id", r.id)
	s.writeError(r, err)
	return ctx.Response.StatusCode()
}

func (s *Server) writeError(r *request, err error) {
	e := s3wire.AsError(err)
	ctx := r.ctx
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
	ctx.Response.ResetBody()
	ctx.Response.Header.Del("ETag")
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
	// connection cannot carry another request.
	if ctx.Request.Header.ContentLength() != 0 {
		ctx.SetConnectionClose()
	}
}
