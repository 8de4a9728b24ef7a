// Package proxy is the s3seal HTTP front end: it authenticates S3
// requests, routes them by operation, encrypts object bodies on the way to
// the store and decrypts them on the way back, and rewrites whatever the
// store says about sizes and ETags so that clients see plaintext objects.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/s3seal/s3seal/proxy/upstream"
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
	// Asymmetric configures write-only keys (RSA key pairs, keys.go).
	Asymmetric AsymmetricKeys

	// MaxObjectSize bounds the plaintext of single PUTs; the default is
	// the most whose ciphertext fits S3's limit of 5 GiB.
	MaxObjectSize int64
	// PostSpoolBytes bounds the bytes all POST (form) uploads hold in
	// temporary files at once (post.go says why they spool); a form that
	// would exceed it is answered 503 SlowDown. Default 8 GiB; negative:
	// no bound.
	PostSpoolBytes int64
	// IdleTimeout closes keep-alive connections idle this long between
	// requests (fasthttp's IdleTimeout); within a request, HeaderTimeout
	// and BodyTimeout apply.
	IdleTimeout time.Duration
	// HeaderTimeout bounds the time from a request's first byte to the end
	// of its headers; a connection that sends them slower is closed.
	// Default 30 s.
	HeaderTimeout time.Duration
	// BodyTimeout bounds each wait for more of a request body: a client
	// that sends nothing for this long mid-body is cut off (400
	// RequestTimeout, connection closed), and the upload it fed to the
	// store is abandoned, freeing its store connection. A client that
	// takes nothing of a response body for this long is disconnected.
	// Default 30 s.
	BodyTimeout time.Duration
	// KeepAliveAfter is how long CompleteMultipartUpload or CopyObject may
	// work before the client is sent 200 OK and white space until the
	// answer is ready (keepalive.go). Default DefaultKeepAliveAfter;
	// negative: at once.
	KeepAliveAfter time.Duration
	// MaxConcurrentRequests bounds the requests served at once; more are
	// answered 503 SlowDown with Retry-After at once. 0: no bound.
	MaxConcurrentRequests int
	// MaxRequestsPerIdentity bounds the requests one access key has in
	// service at once (anonymous requests and form uploads count as one
	// identity), so that one tenant cannot take every slot; more are
	// answered 503 SlowDown with Retry-After. 0: no bound.
	MaxRequestsPerIdentity int
	// UpstreamMaxConns bounds the connections to the store (default
	// 1024); UpstreamConnWait how long a request waits for one when all
	// are busy before it is answered 503 SlowDown (default 5 s).
	UpstreamMaxConns int
	UpstreamConnWait time.Duration

	// Metrics serves Prometheus metrics at GET /metrics to unsigned
	// requests, without authentication (metrics.go lists them).
	Metrics bool
	// KMSPricePer10K is the price in dollars of 10,000 KMS requests, for
	// the estimated KMS cost in the metrics; 0 means AWS KMS's published
	// price for symmetric keys, DefaultKMSPricePer10K.
	KMSPricePer10K float64

	// AllowSigV2 accepts AWS Signature V2 (HMAC-SHA1) from clients: the
	// presigned URLs boto3 and aws cli v1 make by default, and legacy header
	// auth. Off, such requests get InvalidRequest as in V4-only regions.
	AllowSigV2 bool

	// DropTrailerChecksums verifies a PutObject's trailer checksum but does
	// not keep it: keeping it costs a copy of the object onto itself at
	// the store after every such PUT (put.go), and the AWS SDKs send their
	// default checksum in a trailer over https.
	DropTrailerChecksums bool

	// AllowDotSegments forwards object keys with "." or ".." path segments
	// (dotsegments.go); only for a store known to keep keys literally.
	AllowDotSegments bool
	// UpstreamDial, if set, opens connections to the store instead of
	// dialing UpstreamURL's host (the embedded store is in-process).
	UpstreamDial func(addr string) (net.Conn, error)
	// UpstreamTLS configures https to the store; nil: the system's roots.
	// Certificates are always verified.
	UpstreamTLS *tls.Config

	// Compression compresses single PUTs before encryption, per bucket
	// (compress.go); the zero value is off.
	Compression Compression

	Logger *slog.Logger
	Now    func() time.Time
}

// Server is the proxy. It is safe for concurrent use.
type Server struct {
	cfg      Config
	log      *slog.Logger
	up       *upstream.Client
	verifier *sigv4.Verifier
	kms      kms.Client
	srv      *fasthttp.Server
	partMaps *partMaps
	comp     *compressor // nil: compression off everywhere
	indexes  *lru.Cache[string, *envelope.BlockIndex]
	latest   *lru.Cache[string, latestCompressed]
	spool    spoolBudget // PostSpoolBytes
	metrics  *metrics
	ready    readiness
	slots    chan struct{} // MaxConcurrentRequests; nil: no bound
	idSlots  *identitySlots
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
		cfg.MaxObjectSize = s3wire.MaxPlainSingle
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	if cfg.PostSpoolBytes == 0 {
		cfg.PostSpoolBytes = DefaultPostSpoolBytes
	}
	if cfg.HeaderTimeout == 0 {
		cfg.HeaderTimeout = 30 * time.Second
	}
	if cfg.KeepAliveAfter == 0 {
		cfg.KeepAliveAfter = DefaultKeepAliveAfter
	}
	if cfg.BodyTimeout == 0 {
		cfg.BodyTimeout = 30 * time.Second
	}
	if cfg.KMS == nil || cfg.Identities == nil {
		return nil, errors.New("proxy: KMS and Identities are required")
	}
	if cfg.DefaultKeyID == "" {
		return nil, errors.New("proxy: a default KMS key is required")
	}
	if err := cfg.Asymmetric.check(cfg.BucketKeys); err != nil {
		return nil, err
	}
	up, err := upstream.New(upstream.Config{URL: cfg.UpstreamURL, Region: cfg.UpstreamRegion,
		AccessKey: cfg.UpstreamAccessKey, SecretKey: cfg.UpstreamSecretKey, Now: cfg.Now, Dial: cfg.UpstreamDial,
		TLS: cfg.UpstreamTLS, MaxConns: cfg.UpstreamMaxConns, MaxConnWait: cfg.UpstreamConnWait})
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger, up: up, kms: cfg.KMS,
		partMaps: newPartMaps(4096), metrics: newMetrics(cfg.KMS, cfg.KMSPricePer10K),
		spool: spoolBudget{limit: cfg.PostSpoolBytes},
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
	if z, err := newCompressor(cfg.Compression); err != nil {
		return nil, err
	} else if z.anywhere() || len(z.cfg.Buckets) > 0 {
		s.comp = z
	}
	s.indexes, _ = lru.New[string, *envelope.BlockIndex](4096)
	s.latest, _ = lru.New[string, latestCompressed](4096)
	if cfg.MaxConcurrentRequests > 0 {
		s.slots = make(chan struct{}, cfg.MaxConcurrentRequests)
	}
	if cfg.MaxRequestsPerIdentity > 0 {
		s.idSlots = &identitySlots{max: cfg.MaxRequestsPerIdentity, n: map[string]int{}}
	}
	s.srv = &fasthttp.Server{
		Handler:           s.handle,
		Name:              "",
		StreamRequestBody: true,
		// fasthttp would otherwise read a multipart/form-data body whole
		// before the handler runs, spilling its files to disk in plaintext,
		// authenticated or not (and a PUT of such a content type would
		// lose its body): form uploads stream through postObject.
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultDate:                false,
		NoDefaultContentType:         true,
		// Header names go out as written: S3 sends user metadata names in
		// lower case, and boto3 hands clients the case it receives.
		DisableHeaderNamesNormalizing: true,
		ReadBufferSize:                64 << 10,
		WriteBufferSize:               64 << 10,
		IdleTimeout:                   cfg.IdleTimeout,
		// The request line and headers must arrive within HeaderTimeout
		// (slowloris); the handler replaces that deadline with one per
		// read of the body (limits.go): a 5 GiB upload may take hours but
		// may not pause for longer than BodyTimeout.
		ReadTimeout:        cfg.HeaderTimeout,
		MaxRequestBodySize: 0,
		Logger:             slogPrinter{cfg.Logger},
		// Requests fasthttp cannot read (headers over ReadBufferSize, too
		// slow, malformed) get S3 XML too, not fasthttp's plain text.
		ErrorHandler: s.protocolError,
		// Refuse a request that cannot be authenticated before its body is
		// sent (Expect: 100-continue), with the S3 error it deserves.
		ExpectHandler: s.expect,
		// fasthttp reads the first 8 KiB of a body before the handler
		// runs (readBodyWithStreaming in fasthttp 1.78): they get
		// BodyTimeout, not HeaderTimeout, to arrive.
		HeaderReceived: func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
			return fasthttp.RequestConfig{ReadTimeout: cfg.BodyTimeout}
		},
		// Answers given while shutting down say Connection: close, so
		// that clients send no further request on a connection the proxy
		// closes after it.
		CloseOnShutdown: true,
	}
	return s, nil
}

// Serve accepts connections on ln until Shutdown. The bytes its
// connections carry are counted for the metrics.
func (s *Server) Serve(ln net.Listener) error {
	return s.srv.Serve(countingListener{Listener: ln, c: &s.metrics.bytes})
}

// Shutdown stops accepting, closes idle connections and waits for open
// requests to finish (their responses close the connection). When ctx
// ends first it returns ctx's error and leaves the rest running: the
// caller then exits, which cuts them off (see serve's shutdown).
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.ShutdownWithContext(ctx) }

type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Printf(format string, args ...any) { p.l.Debug(fmt.Sprintf(format, args...)) }
