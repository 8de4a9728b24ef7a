package proxy

import (
	"io"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

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

// streamBody sets a response body that fasthttp streams after the handler
// returns; the request keeps its slot until the body is closed (sent,
// failed, or dropped with the response), so downloads count against
// MaxConcurrentRequests for as long as they last.
func (r *request) streamBody(body io.Reader, size int) {
	rel := r.slot
	r.slot = nil
	if rel != nil {
		body = &slotBody{Reader: body, release: rel}
	}
	r.ctx.SetBodyStream(body, size)
}

// slotBody gives a request slot back when its body is closed.
type slotBody struct {
	io.Reader
	release func()
	once    sync.Once
}

func (b *slotBody) Close() error {
	var err error
	if c, ok := b.Reader.(io.Closer); ok {
		err = c.Close()
	}
	b.once.Do(b.release)
	return err
}

func (b *slotBody) CloseWithError(werr error) error {
	var err error
	if c, ok := b.Reader.(fasthttp.ReadCloserWithError); ok {
		err = c.CloseWithError(werr)
	}
	b.once.Do(b.release)
	return err
}

// WriteTo keeps the inner body's own WriteTo (the decrypting reader's
// batched one) in use.
func (b *slotBody) WriteTo(w io.Writer) (int64, error) { return writeThrough(w, b.Reader) }
