package proxy

import (
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/s3seal/s3seal/sigv4"
)

// parseRequestTarget resolves bucket and key from a path-style URI, or from
// the Host header for virtual-hosted-style requests under a configured
// domain. Upstream requests are always path style.
func (s *Server) parseRequestTarget(uri string, hostHeader []byte) (*target, error) {
	if bucket := s.hostBucket(string(hostHeader)); bucket != "" {
		rawPath, rawQuery, _ := strings.Cut(uri, "?")
		if !strings.HasPrefix(rawPath, "/") {
			return nil, errInvalidRequest("Invalid request URI")
		}
		pathStyle := "/" + bucket
		if rawPath != "/" {
			pathStyle += rawPath
		}
		if rawQuery != "" {
			pathStyle += "?" + rawQuery
		}
		t, err := parseTarget(pathStyle)
		if err != nil {
			return nil, err
		}
		t.SignedPath = rawPath
		return t, nil
	}
	return parseTarget(uri)
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

// authenticate verifies the request's signature and that its identity may
// use the bucket(s) it names. Anonymous requests pass only as reads of
// buckets configured for anonymous reading.
func (s *Server) authenticate(r *request, method string) error {
	auth, err := s.verifier.Verify(&sigv4.Request{
		Method: method, RawPath: r.t.SignedPath, RawQuery: r.t.RawQuery,
		Host: string(r.ctx.Host()), Header: r.header, Bucket: s.hostBucket(string(r.ctx.Host())),
	})
	if errors.Is(err, sigv4.ErrMissingAuth) {
		if (method == http.MethodGet || method == http.MethodHead) && r.t.Bucket != "" &&
			anonymousReadable(r.op) && s.cfg.Identities.AnonymousRead(r.t.Bucket) {
			r.auth = &sigv4.Auth{PayloadHash: "UNSIGNED-PAYLOAD"}
			return nil
		}
		return fromAuthError(err)
	}
	if err != nil {
		return fromAuthError(err)
	}
	if !sameRegion(auth.Region, s.cfg.Region) {
		msg := "The authorization header is malformed; the region '" + auth.Region + "' is wrong; expecting '" + s.cfg.Region + "'"
		code := "AuthorizationHeaderMalformed"
		if auth.Presigned {
			code = "AuthorizationQueryParametersError"
			msg = "Error parsing the X-Amz-Credential parameter; the region '" + auth.Region + "' is wrong; expecting '" + s.cfg.Region + "'"
		}
		// Clients such as s3cmd read the region from this element and retry.
		return s3err(http.StatusBadRequest, code, msg).with("Region", s.cfg.Region)
	}
	r.auth = auth
	id, ok := s.cfg.Identities.Lookup(auth.AccessKey)
	if !ok {
		return fromAuthError(sigv4.ErrMissingAuth)
	}
	if r.t.Bucket != "" && !id.allows(r.t.Bucket) {
		return errAccessDenied
	}
	if src := r.header.Get("X-Amz-Copy-Source"); src != "" {
		if cs, err := parseCopySource(src); err == nil && !id.allows(cs.Bucket) {
			return errAccessDenied
		}
	}
	return nil
}

func anonymousReadable(o op) bool {
	switch o {
	case opGetObject, opHeadObject, opListObjects, opBucketRead:
		return true
	}
	return false
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

// promoteHeaderParams turns the header stand-ins of a presigned URL into
// the request headers they name; a header actually sent wins, as in the
// verifier.
func promoteHeaderParams(r *request) {
	for k, vs := range r.t.Query {
		if !isHeaderParam(k) || len(vs) == 0 {
			continue
		}
		name := http.CanonicalHeaderKey(k)
		if r.header.Get(name) == "" {
			r.header.Set(name, vs[0])
		}
	}
}
