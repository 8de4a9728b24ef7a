package proxy

import (
	"crypto/tls"
	"net"
	"sync/atomic"
)

// Bytes clients send and receive, counted on their connections: request
// and response lines, headers and bodies as HTTP carries them (inside TLS
// when the listener is TLS), so the figures match what clients transfer
// whether a body streams through the handler or fasthttp reads it first.

// byteCounters are the connection byte totals the metrics export.
type byteCounters struct {
	in, out atomic.Uint64
}

// countingListener wraps every accepted connection in a counting one.
type countingListener struct {
	net.Listener
	c *byteCounters
}

func (l countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countingConn{Conn: conn, c: l.c}
	if tc, ok := conn.(*tls.Conn); ok {
		// fasthttp tells TLS connections by their methods (RequestCtx.IsTLS,
		// which POST policies' https conditions use): keep them visible.
		return &countingTLSConn{countingConn: cc, tc: tc}, nil
	}
	return cc, nil
}

type countingConn struct {
	net.Conn
	c *byteCounters
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.c.in.Add(uint64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.c.out.Add(uint64(n))
	return n, err
}

type countingTLSConn struct {
	*countingConn
	tc *tls.Conn
}

func (c *countingTLSConn) Handshake() error                     { return c.tc.Handshake() }
func (c *countingTLSConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }
