package proxy

import (
	"encoding/xml"
	"fmt"
	"io"

	"github.com/valyala/fasthttp"
)

func writeXML(ctx *fasthttp.RequestCtx, status int, v any) {
	body, err := xml.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err)) // our own types only
	}
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentType("application/xml")
	ctx.SetBody(append([]byte(xml.Header), body...))
}

// readAllLimit reads a response body the proxy must rewrite; such bodies
// (listings, copy results) are small, and the limit keeps them bounded.
func readAllLimit(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("response body over %d bytes", limit)
	}
	return b, nil
}

// relayBody sends an already-read upstream body with the upstream status.
func (s *Server) relayBody(r *request, resp *fasthttp.Response, body []byte) {
	r.ctx.SetStatusCode(resp.StatusCode())
	relayHeaders(&r.ctx.Response.Header, &resp.Header, false)
	r.ctx.SetBody(body)
}
