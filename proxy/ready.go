package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/s3seal/s3seal/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// readyTTL is how long a readiness answer is reused: /readyz is
// unauthenticated, so a flood of probes costs one store request and one
// KMS call per period, not one per probe.
const readyTTL = 3 * time.Second

// readiness caches the last readiness check.
type readiness struct {
	mu      sync.Mutex // held during a check: concurrent probes wait for its answer
	checked time.Time
	err     error
}

// NotReadyError says which dependency failed a readiness check: Reason
// is safe to show an unauthenticated caller (a status and an error code),
// Err has the detail for the log.
type NotReadyError struct {
	Reason string
	Err    error
}

func (e *NotReadyError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *NotReadyError) Unwrap() error { return e.Err }

// Ready reports whether the store answers a signed request with success
// (wrong store credentials are not ready) and the KMS knows the default
// key. The answer is cached for readyTTL.
func (s *Server) Ready(ctx context.Context) error {
	s.ready.mu.Lock()
	defer s.ready.mu.Unlock()
	if now := s.cfg.Now(); now.Sub(s.ready.checked) < readyTTL && !s.ready.checked.IsZero() {
		return s.ready.err
	}
	err := s.checkReady(ctx)
	switch {
	case err != nil:
		// Once per check, not per probe.
		s.log.Warn("not ready", "err", err)
	case s.ready.err != nil:
		s.log.Info("ready again")
	}
	s.ready.err, s.ready.checked = err, s.cfg.Now()
	return err
}

func (s *Server) checkReady(ctx context.Context) error {
	// ListBuckets: signed, names no bucket, and every store answers it
	// for any valid credentials.
	resp, err := s.up.Do(upstream.NewRequest(http.MethodGet, "/", ""))
	if err != nil {
		var ue *upstream.UnavailableError
		if errors.As(err, &ue) {
			return &NotReadyError{Reason: "store unreachable", Err: err}
		}
		return &NotReadyError{Reason: "store request failed", Err: err}
	}
	status := resp.StatusCode()
	if status != http.StatusOK {
		body, _ := upstream.ReadBody(resp, s3wire.MaxSmallBody)
		fasthttp.ReleaseResponse(resp)
		code, _, _, _ := s3wire.Element(body, "Code")
		msg, _, _, _ := s3wire.Element(body, "Message")
		return &NotReadyError{Reason: fmt.Sprintf("store answered %d %s", status, code),
			Err: fmt.Errorf("ListBuckets: %d %s: %s", status, code, msg)}
	}
	resp.CloseBodyStream()
	fasthttp.ReleaseResponse(resp)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// A write-only instance probes its RSA key: its KMS identity may have
	// no rights on the symmetric default key it never uses.
	probe, key := s.kms, s.cfg.DefaultKeyID
	if k := s.cfg.Asymmetric.DefaultKeyID; k != "" {
		probe, key = s.cfg.Asymmetric.KMS, k
	}
	if _, err := probe.DescribeKey(ctx, key); err != nil {
		reason := "kms failed"
		if code := kms.ErrorCode(err); code != "" {
			reason = "kms answered " + code
		}
		return &NotReadyError{Reason: reason, Err: err}
	}
	return nil
}

// serveReady answers GET /readyz: 200 "ok", or 503 with the reason.
func (s *Server) serveReady(r *request) {
	ctx := r.ctx
	err := s.Ready(r.std)
	if err == nil {
		ctx.SetStatusCode(http.StatusOK)
		ctx.SetBodyString("ok\n")
		return
	}
	reason := "not ready"
	var nr *NotReadyError
	if errors.As(err, &nr) {
		reason = nr.Reason
	}
	ctx.SetStatusCode(http.StatusServiceUnavailable)
	ctx.SetBodyString("not ready: " + reason + "\n")
}
