package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/s3seal/s3seal/proxy/s3wire"
)

// Limits that keep a hostile or overeager client from exhausting the
// proxy (issue #19): headers must arrive within HeaderTimeout (fasthttp's
// ReadTimeout, replaced here once they have), a body may not pause for
// longer than BodyTimeout, at most MaxConcurrentRequests are served at
// once and at most MaxRequestsPerIdentity for one access key. A request
// waits at most UpstreamConnWait for a store connection (upstream).
// Every refusal for load is 503 SlowDown with Retry-After (writeError),
// which SDKs retry with backoff.

// admit replaces the header deadline with per-read body deadlines
// (bodyStream) and takes a request slot. It returns the function that
// gives the slot back, or false when none is free: the request has then
// been answered 503 SlowDown.
func (s *Server) admit(r *request) (release func(), ok bool) {
	// Until the handler reads the body, the connection has no deadline:
	// bodyStream sets one before each read.
	_ = r.ctx.SetReadDeadline(time.Time{})
	r.bodyTimeout = s.cfg.BodyTimeout
	if s.slots == nil {
		return func() {}, true
	}
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, true
	default:
	}
	e := *s3wire.ErrSlowDown
	e.Cause = fmt.Errorf("all %d request slots in use", cap(s.slots))
	s.writeError(r, &e)
	return nil, false
}

// admitIdentity takes one of the slots of the identity that signed r
// (authenticated by now) and chains its release to the request slot's, so
// that a streamed response holds both.
func (s *Server) admitIdentity(r *request) error {
	if s.idSlots == nil {
		return nil
	}
	// Anonymous requests, and form uploads whose signature is checked in
	// the handler, share one count.
	key := ""
	if r.identity != nil {
		key = r.identity.AccessKey
	}
	if !s.idSlots.take(key) {
		e := *s3wire.ErrSlowDown
		e.Cause = fmt.Errorf("identity %q has %d requests in service", key, s.idSlots.max)
		return &e
	}
	prev := r.slot
	r.slot = func() {
		s.idSlots.give(key)
		if prev != nil {
			prev()
		}
	}
	return nil
}

// identitySlots counts the requests each identity has in service; an
// identity with none has no entry, so the map is bounded by the requests
// in service.
type identitySlots struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

func (l *identitySlots) take(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[key] >= l.max {
		return false
	}
	l.n[key]++
	return true
}

func (l *identitySlots) give(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[key]--; l.n[key] <= 0 {
		delete(l.n, key)
	}
}

// errRequestTimeout is S3's answer to a client that stopped sending its
// body.
var errRequestTimeout = s3wire.NewError(http.StatusBadRequest, "RequestTimeout",
	"Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.")

// protocolError answers a request fasthttp could not read, in S3's words;
// fasthttp closes the connection after it.
func (s *Server) protocolError(ctx *fasthttp.RequestCtx, err error) {
	var e *s3wire.Error
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		e = s3wire.NewError(http.StatusBadRequest, "RequestHeaderSectionTooLarge",
			"Your request header section exceeds the maximum allowed size.")
	case isTimeout(err):
		// 408, not S3's 400: a connection a client opened and never used
		// times out here too, and clients (Go's net/http among them) drop
		// an idle connection that is answered 408 without a word.
		c := *errRequestTimeout
		c.Status = http.StatusRequestTimeout
		e = &c
	default:
		e = s3wire.NewError(http.StatusBadRequest, "BadRequest", "An error occurred when parsing the HTTP request.")
	}
	// Not writeError: a connection opened and never used is no request
	// refused, and every keep-alive pool makes such connections.
	r := newRequest(ctx)
	s.log.Debug("unreadable request", "id", r.id, "code", e.Code, "cause", err.Error())
	ctx.Response.Header.Set("X-Amz-Request-Id", r.id)
	ctx.Response.Header.SetContentType("application/xml")
	ctx.SetStatusCode(e.Status)
	ctx.SetBody(e.Render("", r.id))
}

// bodyStream is the client's request body, read with a deadline before
// each read: a client that sends nothing for BodyTimeout gets
// RequestTimeout in place of its next bytes, so the upload fed from it
// fails (the store connection carrying it is closed, never completed) and
// its slots are given back. The body as fasthttp read it whole when
// there is no stream.
func (r *request) bodyStream() io.Reader {
	r.bodyTaken = true
	src := r.ctx.RequestBodyStream()
	if src == nil {
		return bytes.NewReader(r.ctx.Request.Body())
	}
	if r.bodyTimeout <= 0 {
		return src
	}
	return &idleBody{r: src, ctx: r.ctx, timeout: r.bodyTimeout}
}

// idleBody sets the connection's read deadline before reads. Setting it
// costs a timer update, so it is moved only when an eighth of the timeout
// has passed since: a client is cut off after 7/8 to 8/8 of the timeout
// without sending.
type idleBody struct {
	r       io.Reader
	ctx     *fasthttp.RequestCtx
	timeout time.Duration
	set     time.Time
}

func (b *idleBody) Read(p []byte) (int, error) {
	if now := time.Now(); now.Sub(b.set) >= b.timeout/8 {
		if err := b.ctx.SetReadDeadline(now.Add(b.timeout)); err == nil {
			b.set = now
		}
	}
	n, err := b.r.Read(p)
	if err != nil && isTimeout(err) {
		b.ctx.SetConnectionClose()
		e := *errRequestTimeout
		e.Cause = err
		return n, &e
	}
	return n, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// streamBody sets a response body that fasthttp streams after the handler
// returns; the request keeps its slot until the body is closed (sent,
// failed, or dropped with the response), so downloads count against
// MaxConcurrentRequests for as long as they last. A client that takes
// nothing of it for BodyTimeout is cut off, so that a download nobody
// reads does not keep its slots and store connection.
func (r *request) streamBody(body io.Reader, size int) {
	rel := r.slot
	r.slot = nil
	if rel == nil {
		rel = func() {}
	}
	r.ctx.SetBodyStream(&slotBody{Reader: body, release: rel, ctx: r.ctx, timeout: r.bodyTimeout}, size)
}

// slotBody gives a request slot back when its body is closed, and sets
// the connection's write deadline as its bytes go out (as idleBody does
// for reads): fasthttp has only a deadline for the whole response, which
// a 5 GiB download cannot meet.
type slotBody struct {
	io.Reader
	release func()
	once    sync.Once

	ctx     *fasthttp.RequestCtx
	timeout time.Duration // 0: no deadline
	set     time.Time
}

func (b *slotBody) push() {
	if b.timeout <= 0 {
		return
	}
	if now := time.Now(); now.Sub(b.set) >= b.timeout/8 {
		if err := b.ctx.SetWriteDeadline(now.Add(b.timeout)); err == nil {
			b.set = now
		}
	}
}

// Read is what fasthttp calls before it writes what it read.
func (b *slotBody) Read(p []byte) (int, error) {
	b.push()
	return b.Reader.Read(p)
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
// batched one) in use, pushing the deadline before each of its writes.
func (b *slotBody) WriteTo(w io.Writer) (int64, error) {
	return writeThrough(deadlineWriter{w: w, b: b}, b.Reader)
}

type deadlineWriter struct {
	w io.Writer
	b *slotBody
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	d.b.push()
	return d.w.Write(p)
}
