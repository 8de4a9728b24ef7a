package embedstore

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/valyala/fasthttp/fasthttputil"
)

// URL is the address clients of an in-process store use; requests to it
// go through Server.Dial, never the network.
const URL = "http://embedded-store"

// Server serves a Store over an in-memory listener: the store has no port
// that another process (or user) could reach, so it needs no credentials.
type Server struct {
	ln  *fasthttputil.InmemoryListener
	srv *http.Server
}

// Serve starts serving s in-process. The caller must Close the Server
// (before closing the Store).
func (s *Store) Serve() *Server {
	sv := &Server{ln: fasthttputil.NewInmemoryListener(), srv: &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second}}
	go func() {
		if err := sv.srv.Serve(sv.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("embedded store stopped", "err", err)
		}
	}()
	return sv
}

// Dial opens a connection to the store; addr is ignored (fasthttp's
// HostClient.Dial signature).
func (sv *Server) Dial(string) (net.Conn, error) { return sv.ln.Dial() }

// HTTPClient returns a net/http client whose every request reaches the
// store, whatever its URL (for the AWS SDK: point it at URL).
func (sv *Server) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         func(context.Context, string, string) (net.Conn, error) { return sv.ln.Dial() },
		MaxIdleConnsPerHost: 64,
	}}
}

// Close stops serving, waiting for requests in flight until ctx ends;
// those still open then have their connections closed, so that an upload
// cut off there fails instead of completing later.
func (sv *Server) Close(ctx context.Context) error {
	err := sv.srv.Shutdown(ctx)
	if err != nil {
		sv.srv.Close()
	}
	return err
}
