package upstream

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"

	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/valyala/fasthttp"
)

// Body is the response's body: its stream, or what fasthttp read whole.
func Body(resp *fasthttp.Response) io.Reader {
	if bs := resp.BodyStream(); bs != nil {
		return bs
	}
	return bytes.NewReader(resp.Body())
}

// ReadBody reads a response body the proxy must rewrite whole; such
// bodies (listings, copy results) are small, and limit keeps them bounded.
func ReadBody(resp *fasthttp.Response, limit int64) ([]byte, error) {
	bs := resp.BodyStream()
	if bs == nil {
		return resp.Body(), nil
	}
	b, err := io.ReadAll(io.LimitReader(bs, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("response body over %d bytes", limit)
	}
	return b, nil
}

// ReleasingBody streams a response body to the client and releases the
// response once the client side is done with it (Close).
type ReleasingBody struct {
	resp *fasthttp.Response
	r    io.Reader
}

// NewReleasingBody takes ownership of resp.
func NewReleasingBody(resp *fasthttp.Response) *ReleasingBody { return &ReleasingBody{resp: resp} }

func (b *ReleasingBody) Read(p []byte) (int, error) {
	if b.r == nil {
		b.r = Body(b.resp)
	}
	return b.r.Read(p)
}

func (b *ReleasingBody) Close() error {
	if b.resp != nil {
		b.resp.CloseBodyStream()
		fasthttp.ReleaseResponse(b.resp)
		b.resp = nil
	}
	return nil
}

// DoXML sends a request whose answer is a small XML document and decodes
// it into v. Store errors come back as S3 errors for the client.
func (c *Client) DoXML(r *Request, v any) error {
	resp, err := c.DoXMLResp(r, v)
	if err == nil {
		fasthttp.ReleaseResponse(resp)
	}
	return err
}

// DoXMLResp is DoXML that also returns the response, for its headers; the
// caller releases it. On error there is no response to release.
func (c *Client) DoXMLResp(r *Request, v any) (*fasthttp.Response, error) {
	resp, err := c.Do(r)
	if err != nil {
		return nil, s3wire.Internal(err)
	}
	fail := func(err error) (*fasthttp.Response, error) {
		fasthttp.ReleaseResponse(resp)
		return nil, err
	}
	body, err := ReadBody(resp, s3wire.MaxSmallBody)
	if err != nil {
		return fail(s3wire.Internal(err))
	}
	var e struct {
		XMLName xml.Name
		Code    string
		Message string
	}
	if xml.Unmarshal(body, &e) == nil && e.XMLName.Local == "Error" {
		st := resp.StatusCode()
		if st < 400 {
			st = http.StatusInternalServerError // S3 can answer 200 with an error document
		}
		return fail(&s3wire.Error{Status: st, Code: e.Code, Message: e.Message})
	}
	if st := resp.StatusCode(); st != http.StatusOK {
		return fail(s3wire.StatusError(st))
	}
	if err := xml.Unmarshal(body, v); err != nil {
		return fail(s3wire.Internal(fmt.Errorf("store answer to %s %s: %w", r.Method, r.RawPath, err)))
	}
	return resp, nil
}
