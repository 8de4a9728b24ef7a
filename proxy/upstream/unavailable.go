package upstream

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"

	"github.com/valyala/fasthttp"
)

// UnavailableError is a request that never got an answer from the store:
// it could not be reached (refused, no route, DNS, TLS handshake), it did
// not answer in time, or its connection broke before the answer (the store
// died or restarted mid-request: reset, broken pipe, closed). Clients are
// told to retry later (503), not that the proxy failed.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return "store unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// unavailable wraps the errors of a store that did not answer; others
// (such as the failure of a request body being streamed) pass as they are.
func unavailable(err error) error {
	var op *net.OpError
	var dns *net.DNSError
	var cert *tls.CertificateVerificationError
	switch {
	case errors.Is(err, fasthttp.ErrDialTimeout), errors.Is(err, fasthttp.ErrNoFreeConns),
		errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrTLSHandshakeTimeout),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, fasthttp.ErrConnectionClosed),
		errors.As(err, &dns), errors.As(err, &cert), errors.As(err, &op) && op.Op == "dial":
		return &UnavailableError{Err: err}
	}
	return err
}
