package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/s3seal/s3seal/sigv4"
	"github.com/valyala/fasthttp"
)

// upstream is the real S3 store behind the proxy.
type upstream struct {
	client *fasthttp.HostClient
	host   string // Host header value for upstream requests
	scheme string
	signer *sigv4.Signer
	now    func() time.Time
}

func newUpstream(rawURL, region, accessKey, secretKey string, now func() time.Time) (*upstream, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("upstream URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("upstream URL %q: want http(s)://host[:port]", rawURL)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("upstream URL %q: a path prefix is not supported", rawURL)
	}
	addr := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			addr += ":443"
		} else {
			addr += ":80"
		}
	}
	return &upstream{
		client: &fasthttp.HostClient{
			Addr:  addr,
			IsTLS: u.Scheme == "https",
			// Keys may contain "//", "%2F" or "..": never rewrite the path.
			DisablePathNormalizing:   true,
			NoDefaultUserAgentHeader: true,
			StreamResponseBody:       true,
			// Shorter than common store idle timeouts (MinIO, S3 ~20 s),
			// so a pooled connection is not found dead on the next request.
			MaxIdleConnDuration: 10 * time.Second,
			MaxConns:            1024,
			// Several segments per read syscall (a segment is 64 KiB + 16).
			ReadBufferSize:  256 << 10,
			WriteBufferSize: 64 << 10,
			// A streamed body cannot be sent twice; only bodiless reads
			// are retried on a broken pooled connection.
			RetryIfErr: func(req *fasthttp.Request, attempts int, err error) (bool, bool) {
				m := string(req.Header.Method())
				return false, attempts < 3 && !req.IsBodyStream() &&
					(m == http.MethodGet || m == http.MethodHead)
			},
		},
		host:   u.Host,
		scheme: u.Scheme,
		signer: &sigv4.Signer{AccessKey: accessKey, SecretKey: secretKey, Region: region, Service: "s3"},
		now:    now,
	}, nil
}

// outRequest is an upstream request under construction. Headers are set
// explicitly, never copied wholesale from the client.
type outRequest struct {
	Method   string
	RawPath  string
	RawQuery string
	Header   http.Header
	Body     io.Reader // nil for none
	BodyLen  int64     // exact length of Body
}

func newOut(method, rawPath, rawQuery string) *outRequest {
	return &outRequest{Method: method, RawPath: rawPath, RawQuery: rawQuery, Header: http.Header{}}
}

// do signs and sends r. The caller owns the returned response and must
// release it with fasthttp.ReleaseResponse after reading or closing its
// body stream.
func (u *upstream) do(r *outRequest) (*fasthttp.Response, error) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	uri := r.RawPath
	if r.RawQuery != "" {
		uri += "?" + r.RawQuery
	}
	req.SetRequestURI(uri)
	req.URI().DisablePathNormalizing = true
	req.Header.SetMethod(r.Method)
	req.SetHost(u.host)
	payload := "UNSIGNED-PAYLOAD"
	if r.Body == nil && r.Method != http.MethodPut && r.Method != http.MethodPost {
		payload = emptySHA256
	}
	signed := u.signer.Sign(&sigv4.Request{
		Method: r.Method, RawPath: r.RawPath, RawQuery: r.RawQuery, Host: u.host, Header: r.Header,
	}, payload, u.now())
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	for k, vs := range signed {
		for _, v := range vs {
			req.Header.Set(k, v)
		}
	}
	if r.Body != nil {
		req.SetBodyStream(r.Body, int(r.BodyLen))
	} else if r.Method == http.MethodPut || r.Method == http.MethodPost {
		req.Header.SetContentLength(0)
	}
	resp := fasthttp.AcquireResponse()
	if r.Method == http.MethodHead {
		resp.SkipBody = true
	}
	if err := u.client.Do(req, resp); err != nil {
		fasthttp.ReleaseResponse(resp)
		return nil, err
	}
	return resp, nil
}

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// forwardQuery is the client's query without its presigned auth
// parameters, kept byte for byte otherwise.
func forwardQuery(rawQuery string) string {
	if rawQuery == "" {
		return ""
	}
	parts := strings.Split(rawQuery, "&")
	kept := parts[:0]
	for _, p := range parts {
		name, _, _ := strings.Cut(p, "=")
		if n, err := url.QueryUnescape(name); err == nil && (isAuthParam(n) || isHeaderParam(n)) {
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "&")
}
