package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/s3seal/s3seal/proxy/upstream"
	"github.com/s3seal/s3seal/sigv4"
	"github.com/valyala/fasthttp"
)

// request is one client request on its way through the proxy. What the
// client sent stays as the proxy verified it; what it means is read from it
// once, into the fields below; the requests to the store are built beside
// it (outbound), as httputil.ReverseProxy's ProxyRequest{In, Out}.
type request struct {
	ctx *fasthttp.RequestCtx
	id  string
	std context.Context

	t    *s3wire.Target // as the client sent it
	auth *sigv4.Auth
	// identity is who signed the request; nil for anonymous requests.
	identity *Identity
	// header is what the client's headers say: the canonical-key headers
	// as verified and, for a presigned URL, the headers that its query's
	// header stand-ins name.
	header http.Header

	op     s3wire.Op
	spec   s3wire.Spec
	upload s3wire.UploadRef // what the request's upload id carries
	// storeQuery is the query as the store must see it: the client's
	// without its presigned auth parameters and header stand-ins, with the
	// store's upload id for the client's.
	storeQuery string

	// slot gives the request's MaxConcurrentRequests slot back; nil once
	// a streamed response body holds it (streamBody).
	slot func()
	// bodyTimeout bounds each wait for more of the request body
	// (bodyStream); 0 until the request is admitted.
	bodyTimeout time.Duration
	// bodyTaken is set once a handler has the body stream (bodyStream):
	// writeError then cannot tell from Content-Length how much is left.
	bodyTaken bool
	// beforeBody marks an Expect: 100-continue check, which answers
	// before the client sends any body.
	beforeBody bool

	// sse is what protects the object a successful response is about,
	// as the handler that sealed or opened it tells the client (echoSSE).
	sse sse
}

// sse is what protects an object, as a response tells it.
type sse struct {
	alg   string // x-amz-server-side-encryption: aws:kms, or AES256 echoed
	keyID string // the KMS key, as the KMS names it
}

func newRequest(ctx *fasthttp.RequestCtx) *request {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &request{ctx: ctx, id: hex.EncodeToString(b[:]), std: context.Background()}
}

func (r *request) bucket() string {
	if r.t == nil {
		return ""
	}
	return r.t.Bucket
}

// metricName names the request's operation in metrics: "Invalid" for a
// request whose target could not be parsed.
func (r *request) metricName() string {
	if r.t == nil {
		return "Invalid"
	}
	return r.op.String()
}

// read classifies and authenticates the request, and reads what it says.
func (s *Server) read(r *request, method, uri string) error {
	t, err := s.parseRequestTarget(uri, r.ctx.Host())
	if err != nil {
		return err
	}
	r.t = t
	r.header = clientHeader(&r.ctx.Request.Header)
	r.op = s3wire.Classify(method, t, r.header.Get("X-Amz-Copy-Source") != "")
	r.spec = r.op.Spec()
	if err := s.authenticate(r, method); err != nil {
		return err
	}
	// The client signed the upload id it sent; the store knows the upload
	// by the id inside it (outbound maps it).
	r.upload = s3wire.ParseUploadID(t.Query.Get("uploadId"))
	r.storeQuery = s3wire.ForwardQuery(t.RawQuery)
	if r.upload.Mapped() {
		r.storeQuery = s3wire.SetParam(r.storeQuery, "uploadId", r.upload.StoreID)
	}
	if r.auth.Presigned {
		r.header = s3wire.WithHeaderParams(r.header, t.Query)
	}
	return nil
}

// parseRequestTarget resolves bucket and key from a path-style URI, or from
// the Host header for virtual-hosted-style requests under a configured
// domain. Upstream requests are always path style.
func (s *Server) parseRequestTarget(uri string, hostHeader []byte) (*s3wire.Target, error) {
	if bucket := s.hostBucket(string(hostHeader)); bucket != "" {
		return s3wire.VirtualHosted(bucket, uri)
	}
	return s3wire.ParseTarget(uri)
}

// hostBucket returns the bucket named by a virtual-hosted-style Host
// header, or "".
func (s *Server) hostBucket(host string) string {
	if len(s.cfg.Domains) == 0 {
		return ""
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	for _, d := range s.cfg.Domains {
		if b, ok := strings.CutSuffix(host, "."+strings.ToLower(d)); ok && b != "" {
			return b
		}
	}
	return ""
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

// authenticate verifies the request's signature and that its identity holds
// what the operation's Spec asks. Anonymous requests pass only for the
// operations the table opens to anonymous readers, on buckets configured
// for anonymous reading.
func (s *Server) authenticate(r *request, method string) error {
	if r.spec.Perm == s3wire.PermForm {
		// The signature is in the form; the handler verifies it and the
		// identity's bucket.
		r.auth = &sigv4.Auth{}
		return nil
	}
	auth, err := s.verifier.Verify(&sigv4.Request{
		Method: method, RawPath: r.t.SignedPath, RawQuery: r.t.RawQuery,
		Host: string(r.ctx.Host()), Header: r.header, Bucket: s.hostBucket(string(r.ctx.Host())),
	})
	if errors.Is(err, sigv4.ErrMissingAuth) {
		if r.spec.Anonymous && r.t.Bucket != "" && s.cfg.Identities.AnonymousRead(r.t.Bucket) {
			r.auth = &sigv4.Auth{PayloadHash: "UNSIGNED-PAYLOAD"}
			return nil
		}
		e := s3wire.FromAuthError(err)
		if ae, ok := e.(*s3wire.Error); ok {
			ae.Cause = fmt.Errorf("anonymous %s: %w", r.spec.Name, err)
		}
		return e
	}
	if err != nil {
		return s3wire.FromAuthError(err)
	}
	if !sameRegion(auth.Region, s.cfg.Region) {
		msg := "The authorization header is malformed; the region '" + auth.Region + "' is wrong; expecting '" + s.cfg.Region + "'"
		code := "AuthorizationHeaderMalformed"
		if auth.Presigned {
			code = "AuthorizationQueryParametersError"
			msg = "Error parsing the X-Amz-Credential parameter; the region '" + auth.Region + "' is wrong; expecting '" + s.cfg.Region + "'"
		}
		// Clients such as s3cmd read the region from this element and retry.
		return s3wire.NewError(http.StatusBadRequest, code, msg).With("Region", s.cfg.Region)
	}
	r.auth = auth
	id, ok := s.cfg.Identities.Lookup(auth.AccessKey)
	if !ok {
		return s3wire.FromAuthError(sigv4.ErrMissingAuth)
	}
	r.identity = id
	if r.spec.Perm == s3wire.PermBucket && r.t.Bucket != "" {
		if why := id.permit(r.t.Bucket, r.spec.Access); why != "" {
			return denied(why)
		}
	}
	// A copy source names a bucket too, whatever the operation: reading it
	// needs read access there.
	if src := r.header.Get("X-Amz-Copy-Source"); src != "" {
		if cs, err := s3wire.ParseCopySource(src); err == nil {
			if why := id.permit(cs.Bucket, s3wire.AccessRead); why != "" {
				return denied("copy source: " + why)
			}
		}
	}
	return nil
}

// denied is AccessDenied, with the reason for the log only.
func denied(why string) error {
	e := *s3wire.ErrAccessDenied
	e.Cause = errors.New(why)
	return &e
}

// sameRegion compares a signature's region with ours. "US" is the legacy
// name of us-east-1 that s3cmd and other older clients still sign with;
// S3 and MinIO accept it. Signature V2 names no region (got is "").
func sameRegion(got, want string) bool {
	if got == "" {
		return true
	}
	norm := func(r string) string {
		if strings.EqualFold(r, "US") {
			return "us-east-1"
		}
		return r
	}
	return norm(got) == norm(want)
}

// outbound starts the store's request for this one: the path as the client
// sent it, the store's query and the forwardable headers.
func (r *request) outbound(method string) *upstream.Request {
	out := upstream.NewRequest(method, r.t.RawPath, r.storeQuery)
	s3wire.CopyRequestHeaders(out.Header, r.header)
	return out
}
