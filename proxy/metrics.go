package proxy

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// Metrics, in the Prometheus text format at GET /metrics when
// Config.Metrics is set (on the S3 listener), or from MetricsHandler on a
// listener of the caller's (serve --metrics-listen). Every Server has its own registry (never the
// global one), so several proxies in one process keep apart.
//
// Labels carry operation names, status codes and S3 error codes only:
// never bucket names, object keys, identities or key ids. Only unsigned
// requests get the metrics: a signed GET /metrics is still ListObjects of a
// bucket named "metrics" (anonymous reads of such a bucket are shadowed
// while metrics are on).
//
//	s3seal_requests_total{op,status}            requests answered
//	s3seal_request_errors_total{op,code}        of those, S3 errors by code
//	s3seal_request_duration_seconds{op}         time to the response header
//	s3seal_requests_in_flight                   S3 requests being served now
//	                                            (a download until its body is sent)
//	s3seal_client_bytes_received_total          bytes read from client connections
//	s3seal_client_bytes_sent_total              bytes written to client connections
//	s3seal_kms_cache_requests_total{call,result} data-key cache hits/misses
//	s3seal_kms_cache_kms_calls_total            calls the cache made to the KMS
//	s3seal_kms_cache_evictions_total            cached keys dropped (zeroed)
//	s3seal_kms_cache_keys{kind}                 keys cached now
//	s3seal_kms_retry_calls_total                calls through the retry layer
//	s3seal_kms_retries_total                    extra attempts (backoff)
//	s3seal_kms_retry_gave_up_total              calls failed after retrying
//	s3seal_kms_audit_events_total               audit records written
//	s3seal_kms_audit_write_errors_total         audit records lost
//	s3seal_kms_requests_total{call}             requests the KMS received (kms.Meter)
//	s3seal_objects_total{direction}             objects written / read (2xx)
//	s3seal_kms_requests_per_1000_objects        KMS requests per 1,000 objects written and read
//	s3seal_kms_cost_per_million_objects_dollars estimated KMS cost per million objects
//
// plus the Go runtime's and the process's standard collectors. The KMS
// series exist when the matching wrapper (kms.Cache, kms.Retry, kms.Audit)
// is in Config.KMS's stack; they read its Stats() at scrape time.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	bytes    byteCounters
	handler  fasthttp.RequestHandler
	// written and read count the objects the cost figures divide by.
	written, read atomic.Uint64
	http          http.Handler
}

// DefaultKMSPricePer10K is AWS KMS's published price of 10,000 requests to
// a symmetric key, in dollars (https://aws.amazon.com/kms/pricing/; the
// free tier of 20,000 requests a month is left out).
const DefaultKMSPricePer10K = 0.03

func newMetrics(client kms.Client, pricePer10K float64) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "s3seal_requests_total", Help: "S3 requests answered, by operation and HTTP status.",
		}, []string{"op", "status"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "s3seal_request_errors_total", Help: "S3 error responses the proxy produced, by operation and S3 error code.",
		}, []string{"op", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "s3seal_request_duration_seconds",
			Help:    "Time from request to response header (bodies stream after), by operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"op"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "s3seal_requests_in_flight", Help: "S3 requests being served now, a download until its body is sent (health and metrics requests are not counted).",
		}),
	}
	bytesIn := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "s3seal_client_bytes_received_total", Help: "Bytes read from client connections (HTTP: request lines, headers and bodies).",
	}, func() float64 { return float64(m.bytes.in.Load()) })
	bytesOut := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "s3seal_client_bytes_sent_total", Help: "Bytes written to client connections (HTTP: status lines, headers and bodies).",
	}, func() float64 { return float64(m.bytes.out.Load()) })
	reg.MustRegister(m.requests, m.errors, m.duration, m.inFlight, bytesIn, bytesOut,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if meter := registerKMSMetrics(reg, client); meter != nil {
		m.registerCost(meter, pricePer10K)
	}
	m.http = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	m.handler = fasthttpadaptor.NewFastHTTPHandler(m.http)
	return m
}

// registerKMSMetrics walks the stacked KMS client and exports the counters
// of each wrapper it finds; it returns the kms.Meter, if there is one.
func registerKMSMetrics(reg *prometheus.Registry, client kms.Client) (meter *kms.Meter) {
	counter := func(name, help string, labels prometheus.Labels, f func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(f()) })
	}
	gauge := func(name, help string, labels prometheus.Labels, f func() int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(f()) })
	}
	for c := client; c != nil; {
		switch x := c.(type) {
		case *kms.Cache:
			const help = "Data-key cache lookups, by call (generate: PUT, decrypt: GET) and result."
			reg.MustRegister(
				counter("s3seal_kms_cache_requests_total", help, prometheus.Labels{"call": "generate", "result": "hit"}, func() uint64 { return x.Stats().GenerateHits }),
				counter("s3seal_kms_cache_requests_total", help, prometheus.Labels{"call": "generate", "result": "miss"}, func() uint64 { return x.Stats().GenerateMisses }),
				counter("s3seal_kms_cache_requests_total", help, prometheus.Labels{"call": "decrypt", "result": "hit"}, func() uint64 { return x.Stats().DecryptHits }),
				counter("s3seal_kms_cache_requests_total", help, prometheus.Labels{"call": "decrypt", "result": "miss"}, func() uint64 { return x.Stats().DecryptMisses }),
				counter("s3seal_kms_cache_kms_calls_total", "Calls the data-key cache made to the KMS below it.", nil, func() uint64 { return x.Stats().KMSCalls }),
				counter("s3seal_kms_cache_evictions_total", "Cached keys dropped and zeroed.", nil, func() uint64 { return x.Stats().Evictions }),
				gauge("s3seal_kms_cache_keys", "Keys in the cache now, by kind.", prometheus.Labels{"kind": "data"}, func() int { return x.Stats().DataKeys }),
				gauge("s3seal_kms_cache_keys", "Keys in the cache now, by kind.", prometheus.Labels{"kind": "unwrapped"}, func() int { return x.Stats().DecryptEntries }),
			)
		case *kms.Retry:
			reg.MustRegister(
				counter("s3seal_kms_retry_calls_total", "KMS calls made through the retry layer.", nil, func() uint64 { return x.Stats().Calls }),
				counter("s3seal_kms_retries_total", "Extra KMS attempts after throttling or transient failures (each after a backoff).", nil, func() uint64 { return x.Stats().Retries }),
				counter("s3seal_kms_retry_gave_up_total", "KMS calls that still failed with a transient error at the retry deadline.", nil, func() uint64 { return x.Stats().GaveUp }),
			)
		case *kms.Meter:
			meter = x
			const help = "Requests the KMS received (every attempt of a retried call), by call: what AWS KMS bills."
			for _, call := range []struct {
				name string
				f    func(kms.MeterStats) uint64
			}{
				{"GenerateDataKey", func(s kms.MeterStats) uint64 { return s.GenerateDataKey }},
				{"Decrypt", func(s kms.MeterStats) uint64 { return s.Decrypt }},
				{"Encrypt", func(s kms.MeterStats) uint64 { return s.Encrypt }},
				{"ReEncrypt", func(s kms.MeterStats) uint64 { return s.ReEncrypt }},
				{"DescribeKey", func(s kms.MeterStats) uint64 { return s.DescribeKey }},
				// Asymmetric keys (write-only buckets): AWS prices them apart.
				{"GetPublicKey", func(s kms.MeterStats) uint64 { return s.GetPublicKey }},
				{"DecryptRSA", func(s kms.MeterStats) uint64 { return s.AsymmetricDecrypt }},
			} {
				reg.MustRegister(counter("s3seal_kms_requests_total", help, prometheus.Labels{"call": call.name}, func() uint64 { return call.f(x.Stats()) }))
			}
		case interface{ HeldDeletions() int }:
			// The embedded keyring (kms/keyring): keys past their
			// deletion date that it keeps because objects are still under
			// them, each waiting for the operator.
			reg.MustRegister(gauge("s3seal_kms_key_deletions_held",
				"Keys past the end of their deletion waiting period that the embedded keyring did not delete because the last key usage report shows objects under them.",
				nil, x.HeldDeletions))
		case *kms.Audit:
			reg.MustRegister(
				counter("s3seal_kms_audit_events_total", "Audit records of KMS calls.", nil, func() uint64 { return x.Stats().Events }),
				counter("s3seal_kms_audit_write_errors_total", "Audit records that could not be written.", nil, func() uint64 { return x.Stats().WriteErrors }),
			)
		}
		w, ok := c.(kms.Wrapper)
		if !ok {
			break
		}
		c = w.Unwrap()
	}
	return meter
}

// registerCost exports the objects written and read and what their KMS
// requests cost: KMS requests (meter) per 1,000 objects, and the estimated
// cost per million objects at pricePer10K dollars per 10,000 requests.
// Both are averages since the start, over all requests the KMS received
// (the readiness probe's DescribeKey included), so they say what the
// data-key cache saves on this workload.
func (m *metrics) registerCost(meter *kms.Meter, pricePer10K float64) {
	if pricePer10K <= 0 {
		pricePer10K = DefaultKMSPricePer10K
	}
	perObject := func() float64 {
		n := m.written.Load() + m.read.Load()
		if n == 0 {
			return 0
		}
		return float64(meter.Stats().Total()) / float64(n)
	}
	const objHelp = "Objects written (PutObject, CopyObject, CompleteMultipartUpload, PostObject) and read (GetObject, HeadObject), 2xx answers only."
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "s3seal_objects_total", Help: objHelp, ConstLabels: prometheus.Labels{"direction": "written"}},
			func() float64 { return float64(m.written.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "s3seal_objects_total", Help: objHelp, ConstLabels: prometheus.Labels{"direction": "read"}},
			func() float64 { return float64(m.read.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "s3seal_kms_requests_per_1000_objects",
			Help: "KMS requests per 1,000 objects written and read, since the start."},
			func() float64 { return 1000 * perObject() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "s3seal_kms_cost_per_million_objects_dollars",
			Help:        "Estimated KMS cost of a million objects written and read, at price_per_10k dollars per 10,000 requests, since the start.",
			ConstLabels: prometheus.Labels{"price_per_10k": strconv.FormatFloat(pricePer10K, 'f', -1, 64)}},
			func() float64 { return perObject() * 1e6 * pricePer10K / 1e4 }),
	)
}

// observe counts one answered request of operation name.
func (m *metrics) observe(name string, status int, err error, start time.Time) {
	m.requests.WithLabelValues(name, strconv.Itoa(status)).Inc()
	if status < 300 {
		switch name {
		case "PutObject", "CopyObject", "CompleteMultipartUpload", "PostObject":
			m.written.Add(1)
		case "GetObject", "HeadObject":
			m.read.Add(1)
		}
	}
	m.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	if err != nil {
		m.errors.WithLabelValues(name, s3wire.AsError(err).Code).Inc()
	}
}

// serveMetrics answers GET /metrics if metrics are on and the request is
// not signed; it reports false otherwise, and the request is an S3 request
// (a signed GET /metrics lists a bucket named "metrics").
func (s *Server) serveMetrics(ctx *fasthttp.RequestCtx) bool {
	if !s.cfg.Metrics || len(ctx.Request.Header.Peek("Authorization")) > 0 ||
		ctx.QueryArgs().Has("X-Amz-Signature") || ctx.QueryArgs().Has("Signature") || ctx.QueryArgs().Has("AWSAccessKeyId") {
		return false
	}
	s.metrics.handler(ctx)
	return true
}

// MetricsHandler serves the proxy's metrics in the Prometheus text format,
// for a listener of the caller's own (with Config.Metrics off, the S3
// listener then serves none).
func (s *Server) MetricsHandler() http.Handler { return s.metrics.http }

// MetricsRegistry returns the proxy's Prometheus registry, so that the
// caller can add its own collectors or gather without HTTP.
func (s *Server) MetricsRegistry() *prometheus.Registry { return s.metrics.reg }
