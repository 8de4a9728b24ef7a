// Package proxy is the s3seal HTTP front end: it authenticates S3
// requests, routes them by operation, encrypts object bodies on the way to
// the store and decrypts them on the way back, and rewrites whatever the
// store says about sizes and ETags so that clients see plaintext objects.
package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"runtime/debug"
	"time"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/sigv4"
	"github.com/valyala/fasthttp"
)

// Config is everything the proxy needs; cmd builds it from flags and
// environment variables.
type Config struct {
	UpstreamURL       string
	UpstreamRegion    string
	UpstreamAccessKey string
	UpstreamSecretKey string

	// Region is the region clients sign for; empty means UpstreamRegion.
	Region string
	// Identities resolves client credentials, their buckets, and which
	// buckets anonymous clients may read.
	Identities Identities
	// Domains are base domains for virtual-hosted-style requests
	// (bucket.domain[:port]); path style is always accepted.
	Domains []string

	// KMS wraps and unwraps data keys (already wrapped in cache, retry and
	// audit layers by the caller).
	KMS kms.Client
	// DefaultKeyID is the KMS key for buckets without their own mapping.
	DefaultKeyID string
	// BucketKeys maps bucket names to KMS key ids.
	BucketKeys map[string]string

	// MaxObjectSize bounds the plaintext of single PUTs; the default is
	// the most whose ciphertext fits S3's limit of 5 GiB.
	MaxObjectSize int64
	// IdleTimeout closes connections that send or read nothing for this
	// long; unlike a total timeout it lets a 5 GiB upload take its time.
	IdleTimeout time.Duration

	// Metrics serves Prometheus metrics at GET /metrics to unsigned
	// requests, without authentication (metrics.go lists them).
	Metrics bool

	// AllowSigV2 accepts AWS Signature V2 (HMAC-SHA1) from clients: the
	// presigned URLs boto3 and aws cli v1 make by default, and legacy header
	// auth. Off, such requests get InvalidRequest as in V4-only regions.
	AllowSigV2 bool

	// AllowDotSegments forwards object keys with "." or ".." path segments
	// (dotsegments.go); only for a store known to keep keys literally.
	AllowDotSegments bool
	// UpstreamDial, if set, opens connections to the store instead of
	// dialing UpstreamURL's host (the embedded store is in-process).
	UpstreamDial func(addr string) (net.Conn, error)

	Logger *slog.Logger
	Now    func() time.Time
}

// maxStored is S3's limit on one PUT and one part.
const maxStored int64 = 5 << 30

// maxPlainSingle is the largest plaintext a single PUT of at most
// maxStored stored bytes holds (the ciphertext adds a tag per segment).
var maxPlainSingle = func() int64 {
	p := maxStored - envelope.TagSize*((maxStored+envelope.SegmentSize+envelope.TagSize-1)/(envelope.SegmentSize+envelope.TagSize))
	for envelope.CiphertextSize(p+1) <= maxStored {
		p++
	}
	return p
}()

// Server is the proxy. It is safe for concurrent use.
type Server struct {
	cfg      Config
	log      *slog.Logger
	up       *upstream
	verifier *sigv4.Verifier
	kms      kms.Client
	srv      *fasthttp.Server
	partMaps *partMaps
	metrics  *metrics
}

// New checks cfg and builds a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.UpstreamRegion == "" {
		cfg.UpstreamRegion = "us-east-1"
	}
	if cfg.Region == "" {
		cfg.Region = cfg.UpstreamRegion
	}
	if cfg.MaxObjectSize == 0 {
		cfg.MaxObjectSize = maxPlainSingle
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	if cfg.KMS == nil || cfg.Identities == nil {
		return nil, errors.New("proxy: KMS and Identities are required")
	}
	if cfg.DefaultKeyID == "" {
		return nil, errors.New("proxy: a default KMS key is required")
	}
	up, err := newUpstream(cfg.UpstreamURL, cfg.UpstreamRegion, cfg.UpstreamAccessKey, cfg.UpstreamSecretKey, cfg.Now)
	if err != nil {
		return nil, err
	}
	up.client.Dial = cfg.UpstreamDial
	s := &Server{
		cfg: cfg, log: cfg.Logger, up: up, kms: cfg.KMS,
		partMaps: newPartMaps(4096), metrics: newMetrics(cfg.KMS),
		verifier: &sigv4.Verifier{
			Lookup: func(k string) (string, bool) {
				if id, ok := cfg.Identities.Lookup(k); ok {
					return id.SecretKey, true
				}
				return "", false
			},
			// The region is checked in authenticate, where the error can
			// name the expected region as S3's does.
			Now: cfg.Now, MaxSkew: 15 * time.Minute,
			AllowV2: cfg.AllowSigV2,
		},
	}
	s.srv = &fasthttp.Server{
		Handler:               s.handle,
		Name:                  "",
		StreamRequestBody:     true,
		NoDefaultServerHeader: true,
		NoDefaultDate:         false,
		NoDefaultContentType:  true,
		// Header names go out as written: S3 sends user metadata names in
		// lower case, and boto3 hands clients the case it receives.
		DisableHeaderNamesNormalizing: true,
		ReadBufferSize:                64 << 10,
		WriteBufferSize:               64 << 10,
		IdleTimeout:                   cfg.IdleTimeout,
		// Header reads are bounded by ReadTimeout; bodies stream under
		// per-read deadlines set by the handler's readers.
		ReadTimeout:        0,
		MaxRequestBodySize: 0,
		Logger:             slogPrinter{cfg.Logger},
		// Refuse a request that cannot be authenticated before its body is
		// sent (Expect: 100-continue), with the S3 error it deserves.
		ExpectHandler: s.expect,
	}
	return s, nil
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown stops accepting and waits for open requests.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.ShutdownWithContext(ctx) }

type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Printf(format string, args ...any) { p.l.Debug(fmt.Sprintf(format, args...)) }

// request is one client request on its way through the proxy.
type request struct {
	ctx    *fasthttp.RequestCtx
	id     string
	op     op
	t      *target
	auth   *sigv4.Auth
	header http.Header // the client's headers, canonical keys
	// upload is what the request's upload id carries (uploadid.go).
	upload uploadRef
	std    context.Context
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	r := &request{ctx: ctx, id: newRequestID(), std: context.Background()}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic", "request", r.id, "panic", p, "stack", string(debug.Stack()))
			ctx.SetConnectionClose()
			s.writeError(r, errInternal(fmt.Errorf("panic: %v", p)))
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
	s.finish(r, err, start)
	s.log.Debug("request", "id", r.id, "op", r.op.String(), "method", method, "uri", uri, "bucket", r.bucket(),
		"status", ctx.Response.StatusCode(), "dur", time.Since(start))
}

func (r *request) bucket() string {
	if r.t == nil {
		return ""
	}
	return r.t.Bucket
}

func (s *Server) serve(r *request, method, uri string) error {
	t, err := s.parseRequestTarget(uri, r.ctx.Host())
	if err != nil {
		return err
	}
	r.t = t
	r.header = clientHeader(&r.ctx.Request.Header)
	r.op = classify(method, t, r.header.Get("X-Amz-Copy-Source") != "")
	if err := s.authenticate(r, method); err != nil {
		return err
	}
	mapUploadID(r)
	if r.auth.Presigned {
		promoteHeaderParams(r)
	}
	if hasSSEC(r.header) {
		return errNotImplemented("SSE-C (customer-provided keys) cannot be combined with s3seal's encryption")
	}
	if done, err := s.refuseDotSegments(r); done || err != nil {
		return err
	}
	switch r.op {
	case opListBuckets, opBucketRead, opObjectRead, opListMultipartUploads, opAbortMultipart:
		return s.relay(r, nil)
	case opBucketWrite, opObjectWrite, opDeleteObjects, opDeleteObject:
		return s.relaySmallBody(r)
	case opListObjects, opListVersions:
		return s.listObjects(r)
	case opPutObject:
		return s.putObject(r)
	case opGetObject:
		return s.getObject(r, false)
	case opHeadObject:
		return s.getObject(r, true)
	case opCopyObject:
		return s.copyObject(r)
	case opGetAttributes:
		return s.getObjectAttributes(r)
	case opCreateMultipart, opUploadPart, opUploadPartCopy, opCompleteMultipart, opListParts:
		return s.multipart(r)
	}
	return errNotImplemented(method + " " + t.RawPath + " is not supported through s3seal")
}

// expect runs before a body is accepted (Expect: 100-continue): a request
// whose signature cannot verify gets its S3 error at once, and its body is
// never sent. Full verification happens again in the handler.
func (s *Server) expect(ctx *fasthttp.RequestCtx) int {
	h := &ctx.Request.Header
	t, err := s.parseRequestTarget(string(h.RequestURI()), h.Host())
	if err == nil {
		_, err = s.verifier.Verify(&sigv4.Request{
			Method: string(h.Method()), RawPath: t.SignedPath, RawQuery: t.RawQuery,
			Host: string(h.Host()), Header: clientHeader(h), Bucket: s.hostBucket(string(h.Host())),
		})
		err = fromAuthError(err)
	}
	if err == nil {
		return fasthttp.StatusContinue
	}
	r := &request{ctx: ctx, id: newRequestID(), t: t}
	ctx.Response.Header.Set("X-Amz-Request-Id", r.id)
	s.writeError(r, err)
	return ctx.Response.StatusCode()
}

// clientHeader copies the client's headers into a canonical-key map for
// signature verification and header logic.
func clientHeader(h *fasthttp.RequestHeader) http.Header {
	out := make(http.Header, 16)
	for k, v := range h.All() {
		key := textproto.CanonicalMIMEHeaderKey(string(k))
		out[key] = append(out[key], string(v))
	}
	return out
}

func hasSSEC(h http.Header) bool {
	for _, k := range []string{
		"X-Amz-Server-Side-Encryption-Customer-Algorithm",
		"X-Amz-Server-Side-Encryption-Customer-Key",
		"X-Amz-Copy-Source-Server-Side-Encryption-Customer-Algorithm",
	} {
		if h.Get(k) != "" {
			return true
		}
	}
	return false
}

func (s *Server) writeError(r *request, err error) {
	e := asS3Error(err)
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
	ctx.SetBody(renderError(e, resource, r.id))
	// A request body may still be on the connection, unread: the
	// connection cannot carry another request.
	if ctx.Request.Header.ContentLength() != 0 {
		ctx.SetConnectionClose()
	}
}

// Ready reports whether the upstream store and the KMS answer.
func (s *Server) Ready(ctx context.Context) error {
	resp, err := s.up.do(newOut(http.MethodGet, "/", ""))
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	status := resp.StatusCode()
	resp.CloseBodyStream()
	fasthttp.ReleaseResponse(resp)
	if status >= 500 {
		return fmt.Errorf("upstream: status %d", status)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := s.kms.DescribeKey(ctx, s.cfg.DefaultKeyID); err != nil {
		return fmt.Errorf("kms: %w", err)
	}
	return nil
}

// fromAuthError converts a sigv4 failure into the S3 error the client sees.
func fromAuthError(err error) error {
	var ae *sigv4.Error
	if errors.As(err, &ae) {
		e := &Error{Status: ae.Status, Code: ae.Code, Message: ae.Message, Cause: err}
		// The elements S3 adds to authentication errors, in its order;
		// never a secret.
		if ae.AccessKeyID != "" {
			e.with("AWSAccessKeyId", ae.AccessKeyID)
		}
		if ae.Code == "SignatureDoesNotMatch" {
			if ae.StringToSign != "" {
				e.with("StringToSign", ae.StringToSign)
				e.with("StringToSignBytes", hexBytes(ae.StringToSign))
			}
			if ae.SignatureProvided != "" {
				e.with("SignatureProvided", ae.SignatureProvided)
			}
			if ae.CanonicalRequest != "" {
				e.with("CanonicalRequest", ae.CanonicalRequest)
			}
		}
		for _, d := range ae.Details {
			e.with(d.Name, d.Value)
		}
		return e
	}
	return err
}

// hexBytes renders s as S3's StringToSignBytes: space-separated hex.
func hexBytes(s string) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 0, len(s)*3)
	for i := 0; i < len(s); i++ {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, digits[s[i]>>4], digits[s[i]&15])
	}
	return string(b)
}

// fromKMSError maps a KMS failure to the S3 error AWS S3 returns for an
// SSE-KMS object (checked against what S3 answers; S3 prefixes the KMS
// exception name with "KMS."):
//
//   - DisabledException, KMSInvalidStateException (pending deletion),
//     NotFoundException (also a key in another region: "Invalid arn"),
//     InvalidKeyUsageException, ...: 400 with code KMS.<name>;
//   - AccessDeniedException: 403 AccessDenied (S3 reports a missing
//     kms:Decrypt or kms:GenerateDataKey permission as plain AccessDenied);
//   - InvalidCiphertextException, IncorrectKeyException (wrong encryption
//     context, a blob from another key or region): 403 AccessDenied with
//     the message S3 gives when it cannot unwrap an object's key;
//   - throttling and KMS 5xx/timeouts that outlasted the retry deadline:
//     503 SlowDown, which SDKs retry with backoff.
//
// Nothing has been written when any of these is returned: every caller
// asks the KMS before the first byte goes to the store.
func fromKMSError(err error) error {
	code := kms.ErrorCode(err)
	switch code {
	case kms.CodeThrottling, kms.CodeUnavailable, kms.CodeInternal, kms.CodeKeyUnavailable:
		e := *errSlowDown
		e.Cause = err
		return &e
	case kms.CodeAccessDenied:
		return &Error{Status: http.StatusForbidden, Code: "AccessDenied", Message: kmsMessage(err), Cause: err}
	case kms.CodeInvalidCiphertext, kms.CodeIncorrectKey:
		return &Error{Status: http.StatusForbidden, Code: "AccessDenied",
			Message: "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.",
			Cause:   err}
	case kms.CodeDisabled, kms.CodeInvalidState, kms.CodeNotFound, kms.CodeInvalidKeyUsage, kms.CodeValidation, kms.CodeLimitExceeded:
		return &Error{Status: http.StatusBadRequest, Code: "KMS." + code, Message: kmsMessage(err), Cause: err}
	}
	return errInternal(err)
}

func kmsMessage(err error) string {
	var ke *kms.Error
	if errors.As(err, &ke) && ke.Message != "" {
		return ke.Message
	}
	return "The KMS request failed."
}
