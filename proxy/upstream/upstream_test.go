package upstream

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestNewChecksURL(t *testing.T) {
	for _, bad := range []string{"", "minio:9000", "ftp://h", "http://", "http://h/prefix", "://x"} {
		if _, err := New(Config{URL: bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, good := range []string{"http://127.0.0.1:9000", "https://s3.example.com/", "http://h"} {
		if _, err := New(Config{URL: good}); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
}

func TestReadBodyBounded(t *testing.T) {
	resp := &fasthttp.Response{}
	resp.SetBodyString("0123456789")
	if b, err := ReadBody(resp, 10); err != nil || string(b) != "0123456789" {
		t.Errorf("got %q, %v", b, err)
	}
	resp.SetBodyStream(strings.NewReader("0123456789x"), -1)
	if _, err := ReadBody(resp, 10); err == nil {
		t.Error("a body over the limit was read")
	}
}

// TestStoreDyingMidRequestIsUnavailable: a store whose connection breaks
// before it answers (it died or restarted mid-request) is "unavailable"
// (503 to clients, which they retry), not a failure of the proxy (500).
func TestStoreDyingMidRequestIsUnavailable(t *testing.T) {
	for name, hangUp := range map[string]func(c *net.TCPConn){
		"closed": func(c *net.TCPConn) { c.Close() },
		"reset":  func(c *net.TCPConn) { c.SetLinger(0); c.Close() },
	} {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					// Read the request's headers, then hang up unanswered.
					buf := make([]byte, 4096)
					_, _ = c.Read(buf)
					hangUp(c.(*net.TCPConn))
				}
			}()
			cl, err := New(Config{URL: "http://" + ln.Addr().String(), Region: "us-east-1", AccessKey: "a", SecretKey: "b", Now: time.Now})
			if err != nil {
				t.Fatal(err)
			}
			req := NewRequest("PUT", "/b/k", "")
			req.Body, req.BodyLen = strings.NewReader("x"), 1
			_, err = cl.Do(req)
			var ue *UnavailableError
			if !errors.As(err, &ue) {
				t.Errorf("%T %v, want an UnavailableError", err, err)
			}
		})
	}
}
