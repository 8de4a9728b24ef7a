package proxy

import (
	"time"

	"github.com/s3seal/s3seal/proxy/s3wire"
)

// Limits that keep a hostile or overeager client from exhausting the
// proxy: headers must arrive within HeaderTimeout (fasthttp's ReadTimeout,
// lifted here once they have), and at most MaxConcurrentRequests are
// served at once.

// admit lifts the header deadline for the body and takes a request slot.
// It returns the function that gives the slot back, or false when none
// is free: the request has then been answered 503 SlowDown.
func (s *Server) admit(r *request) (release func(), ok bool) {
	// The body streams with no deadline but IdleTimeout's between
	// requests, as before the header deadline existed.
	_ = r.ctx.SetReadDeadline(time.Time{})
	if s.slots == nil {
		return func() {}, true
	}
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, true
	default:
	}
	r.ctx.Response.Header.Set("Retry-After", "1")
	e := *s3wire.ErrSlowDown
	s.writeError(r, &e)
	return nil, false
}
