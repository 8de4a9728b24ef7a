package proxy

import (
	"crypto/tls"
	"io"
	"net"
	"net/http/httptest"
	"testing"
)

// The counting wrapper counts what crosses a connection both ways, and a
// TLS connection stays recognisable as one (fasthttp's RequestCtx.IsTLS
// looks for these methods; POST policies' https conditions depend on it).
func TestCountingListener(t *testing.T) {
	// httptest's certificate, for a TLS listener without files.
	srv := httptest.NewTLSServer(nil)
	cert := srv.TLS
	srv.Close()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &byteCounters{}
	ln := countingListener{Listener: tls.NewListener(raw, cert), c: c}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer conn.Close()
		if _, ok := conn.(interface {
			Handshake() error
			ConnectionState() tls.ConnectionState
		}); !ok {
			t.Errorf("accepted %T: not recognisable as TLS", conn)
		}
		b := make([]byte, 5)
		if _, err := io.ReadFull(conn, b); err != nil {
			done <- err
			return
		}
		_, err = conn.Write([]byte("1234567"))
		done <- err
	}()
	client, err := tls.Dial("tcp", raw.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(client, make([]byte, 7)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Counted inside TLS: the HTTP bytes, not the records.
	if in, out := c.in.Load(), c.out.Load(); in != 5 || out != 7 {
		t.Errorf("counted %d in, %d out; want 5, 7", in, out)
	}
}
