// Package upstream is the proxy's client of the real S3 store: requests
// built from scratch (never client headers copied wholesale), signed with
// the store's credentials, and sent over one fasthttp HostClient with
// streamed bodies.
package upstream

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/s3seal/s3seal/sigv4"
	"github.com/valyala/fasthttp"
)

// Config says where the store is and how to sign for it.
type Config struct {
	URL       string // http(s)://host[:port], no path
	Region    string
	AccessKey string
	SecretKey string
	Now       func() time.Time
	// Dial, if set, opens connections to the store instead of TCP (the
	// embedded store is served in process, with no port).
	Dial func(addr string) (net.Conn, error)
	// TLS configures https (nil: the system's roots); its certificate
	// checks are never turned off here.
	TLS *tls.Config
	// MaxConns bounds the connections open to the store; 0: 1024.
	MaxConns int
	// MaxConnWait bounds how long a request waits for a connection when
	// MaxConns are busy; it then fails with fasthttp.ErrNoFreeConns
	// (wrapped in UnavailableError). 0: 5 s.
	MaxConnWait time.Duration
}

// Client is the real S3 store behind the proxy. It is safe for concurrent
// use.
type Client struct {
	client *fasthttp.HostClient
	host   string // Host header value for upstream requests
	signer *sigv4.Signer
	now    func() time.Time
}

// New checks cfg and builds a Client.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("upstream URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("upstream URL %q: want http(s)://host[:port]", cfg.URL)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("upstream URL %q: a path prefix is not supported", cfg.URL)
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 1024
	}
	if cfg.MaxConnWait <= 0 {
		cfg.MaxConnWait = 5 * time.Second
	}
	addr := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			addr += ":443"
		} else {
			addr += ":80"
		}
	}
	return &Client{
		client: &fasthttp.HostClient{
			Addr:      addr,
			Dial:      cfg.Dial,
			IsTLS:     u.Scheme == "https",
			TLSConfig: cfg.TLS,
			// Keys may contain "//", "%2F" or "..": never rewrite the path.
			DisablePathNormalizing:   true,
			NoDefaultUserAgentHeader: true,
			StreamResponseBody:       true,
			// Shorter than common store idle timeouts (MinIO, S3 ~20 s),
			// so a pooled connection is not found dead on the next request.
			MaxIdleConnDuration: 10 * time.Second,
			MaxConns:            cfg.MaxConns,
			// Without a wait, a request finding every connection busy
			// failed at once with "no free connections" (issue #19); with
			// an unbounded one, it would queue behind stalled uploads.
			MaxConnWaitTimeout: cfg.MaxConnWait,
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
		signer: &sigv4.Signer{AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey, Region: cfg.Region, Service: "s3"},
		now:    cfg.Now,
	}, nil
}

// Request is an upstream request under construction. Headers are set
// explicitly, never copied wholesale from the client.
type Request struct {
	Method   string
	RawPath  string
	RawQuery string
	Header   http.Header
	Body     io.Reader // nil for none
	BodyLen  int64     // exact length of Body
}

// NewRequest starts a request for path and query as they go on the wire.
func NewRequest(method, rawPath, rawQuery string) *Request {
	return &Request{Method: method, RawPath: rawPath, RawQuery: rawQuery, Header: http.Header{}}
}

// Do signs and sends r. The caller owns the returned response and must
// release it with fasthttp.ReleaseResponse after reading or closing its
// body stream.
func (c *Client) Do(r *Request) (*fasthttp.Response, error) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	uri := r.RawPath
	if r.RawQuery != "" {
		uri += "?" + r.RawQuery
	}
	req.SetRequestURI(uri)
	req.URI().DisablePathNormalizing = true
	if c.client.IsTLS {
		// HostClient refuses a request whose scheme is not its own (the
		// URI's default is http): https stores failed every request.
		req.URI().SetScheme("https")
	}
	req.Header.SetMethod(r.Method)
	req.SetHost(c.host)
	payload := "UNSIGNED-PAYLOAD"
	if r.Body == nil && r.Method != http.MethodPut && r.Method != http.MethodPost {
		payload = emptySHA256
	}
	signed := c.signer.Sign(&sigv4.Request{
		Method: r.Method, RawPath: r.RawPath, RawQuery: r.RawQuery, Host: c.host, Header: r.Header,
	}, payload, c.now())
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
	if err := c.client.Do(req, resp); err != nil {
		fasthttp.ReleaseResponse(resp)
		return nil, unavailable(err)
	}
	return resp, nil
}

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
