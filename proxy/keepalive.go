package proxy

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Some operations take longer than clients wait for a response to begin:
// finalizing a multipart upload copies every part at the store, and a copy
// that re-wraps parts moves the object's ciphertext through the proxy.
// botocore (the aws cli, boto3) gives up after 60 s without a byte. S3
// answers these operations as its documentation for CompleteMultipartUpload
// describes: once the work has run for a while it sends 200 OK, then white
// space every few seconds, then the result document, or an <Error>
// document in that 200 response, which the SDKs detect and treat as the
// error it is. s3seal does the same. The XML declaration goes first, so
// that the white space that follows it keeps the document well-formed for
// every parser (expat refuses white space before the declaration).

const (
	// DefaultKeepAliveAfter is how long a slow operation runs before the
	// client is sent 200 OK and white space (Config.KeepAliveAfter).
	DefaultKeepAliveAfter = 10 * time.Second
	// keepAliveEvery is the longest interval between two white space
	// bytes; a shorter KeepAliveAfter (tests) shortens it too.
	keepAliveEvery = 5 * time.Second
)

// keepAliveInterval is the interval between two white space bytes.
func (s *Server) keepAliveInterval() time.Duration {
	return max(min(s.cfg.KeepAliveAfter, keepAliveEvery), time.Millisecond)
}

// answer is a slow operation's successful result: the document, and the
// response headers that go with it. The headers reach the client only
// when the work finished before the keep-alive began; after that the
// status line and headers are gone, and only the document follows.
type answer struct {
	header map[string]string
	doc    any
}

// keepAlive runs work, which must not touch r.ctx's response (it may read
// the request), and answers with its result. If work has not finished
// after the configured delay, the answer becomes 200 OK with white space
// until it has, and then the document or an S3 error document. The
// request's slot (limits.go) stays taken until the work is done, even if
// the client goes away, and the request is not reused before then.
func (s *Server) keepAlive(r *request, work func() (*answer, error)) error {
	type result struct {
		a   *answer
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{err: fmt.Errorf("panic: %v", p)}
			}
		}()
		a, err := work()
		done <- result{a, err}
	}()
	timer := time.NewTimer(s.cfg.KeepAliveAfter)
	defer timer.Stop()
	select {
	case res := <-done:
		if res.err != nil {
			return res.err
		}
		for k, v := range res.a.header {
			r.ctx.Response.Header.Set(k, v)
		}
		writeXML(r.ctx, http.StatusOK, res.a.doc)
		r.echoSSE()
		return nil
	case <-timer.C:
	}
	r.ctx.SetStatusCode(http.StatusOK)
	r.ctx.Response.Header.SetContentType("application/xml")
	r.echoSSE()
	resource := r.t.RawPath
	body := &keepAliveBody{pending: []byte(xml.Header), every: s.keepAliveInterval(), wait: make(chan struct{})}
	go func() {
		res := <-done
		var doc []byte
		if res.err == nil {
			doc, res.err = xml.Marshal(res.a.doc)
		}
		if res.err != nil {
			e := s.logError(r, res.err)
			doc = bytes.TrimPrefix(e.Render(resource, r.id), []byte(xml.Header))
		}
		body.finish(doc)
	}()
	r.streamBody(body, -1)
	return nil
}

// keepAliveBody is the body of a response sent while its work runs: the
// XML declaration, a space per interval, then the document. Close
// waits for the work, which may still read the request.
type keepAliveBody struct {
	mu      sync.Mutex
	pending []byte
	ended   bool          // the document is in pending: EOF after it
	every   time.Duration // between two spaces
	wait    chan struct{} // closed when the work is done
}

func (b *keepAliveBody) finish(doc []byte) {
	b.mu.Lock()
	b.pending = append(b.pending, doc...)
	b.ended = true
	b.mu.Unlock()
	close(b.wait)
}

func (b *keepAliveBody) Read(p []byte) (int, error) {
	for {
		b.mu.Lock()
		if len(b.pending) > 0 {
			n := copy(p, b.pending)
			b.pending = b.pending[n:]
			b.mu.Unlock()
			return n, nil
		}
		ended := b.ended
		b.mu.Unlock()
		if ended {
			return 0, io.EOF
		}
		select {
		case <-b.wait:
		case <-time.After(b.every):
			return copy(p, " "), nil
		}
	}
}

func (b *keepAliveBody) Close() error {
	<-b.wait
	return nil
}
