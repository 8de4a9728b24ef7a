package proxy

import (
	"bytes"
	"encoding/xml"
	"html"
	"net/http"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/envelope"
	"github.com/valyala/fasthttp"
)

// maxListBody bounds a listing response; S3 returns at most 1,000 entries.
const maxListBody = 32 << 20

// listObjects forwards ListObjects (V1, V2) and ListObjectVersions and
// rewrites each entry's size and ETag to the plaintext object's.
func (s *Server) listObjects(r *request) error {
	out := newOut(http.MethodGet, r.t.RawPath, forwardQuery(r.t.RawQuery))
	copyRequestHeaders(out.Header, r.header)
	resp, body, err := s.fetchDocument(r, out)
	if resp == nil {
		return err
	}
	defer fasthttp.ReleaseResponse(resp)
	r.ctx.SetStatusCode(http.StatusOK)
	relayHeaders(&r.ctx.Response.Header, &resp.Header, false)
	r.ctx.SetBody(rewriteListing(body))
	return nil
}

// fetchDocument sends a request whose successful answer is an XML document
// the proxy rewrites (listings, ListParts, attributes). It returns the
// response (which the caller releases) and its body, bounded; a store error
// goes to the client as it is and nil is returned.
func (s *Server) fetchDocument(r *request, out *outRequest) (*fasthttp.Response, []byte, error) {
	resp, err := s.up.do(out)
	if err != nil {
		return nil, nil, errInternal(err)
	}
	if resp.StatusCode() != http.StatusOK {
		s.sendUpstream(r, resp, false)
		return nil, nil, nil
	}
	body := resp.Body()
	if bs := resp.BodyStream(); bs != nil {
		if body, err = readAllLimit(bs, maxListBody); err != nil {
			fasthttp.ReleaseResponse(resp)
			return nil, nil, errInternal(err)
		}
	}
	return resp, body, nil
}

// rewriteListing replaces <Size> and <ETag> inside every <Contents> and
// <Version> element. It edits bytes rather than re-marshalling so that
// everything else in the document (namespaces, order, encodings) stays
// exactly as the store wrote it.
func rewriteListing(doc []byte) []byte {
	return rewriteElements(doc, []string{"Contents", "Version"}, rewriteEntry)
}

// rewriteElements applies fn to every top-level <name>…</name> element of
// doc for the given names. It is linear in the document: each name's next
// opening tag is searched for once and remembered until it is consumed.
func rewriteElements(doc []byte, names []string, fn func([]byte) []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(doc))
	next := make([]int, len(names)) // absolute position of each name's next tag, -1: none left
	for i, n := range names {
		next[i] = bytes.Index(doc, []byte("<"+n+">"))
	}
	pos := 0
	for {
		best := -1
		for i, p := range next {
			if p >= 0 && (best < 0 || p < next[best]) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		start := next[best]
		closing := []byte("</" + names[best] + ">")
		j := bytes.Index(doc[start:], closing)
		if j < 0 {
			break
		}
		end := start + j + len(closing)
		out.Write(doc[pos:start])
		out.Write(fn(doc[start:end]))
		pos = end
		for i, p := range next {
			if p >= 0 && p < end {
				if k := bytes.Index(doc[end:], []byte("<"+names[i]+">")); k >= 0 {
					next[i] = end + k
				} else {
					next[i] = -1
				}
			}
		}
	}
	out.Write(doc[pos:])
	return out.Bytes()
}

func rewriteEntry(e []byte) []byte {
	etagRaw, ei, ej, hasTag := element(e, "ETag")
	sizeRaw, si, sj, hasSize := element(e, "Size")
	if !hasTag || !hasSize {
		return e
	}
	storeTag := unescapeQuotes(string(etagRaw))
	stored, err := strconv.ParseInt(string(sizeRaw), 10, 64)
	if err != nil {
		return e
	}
	plain, ok := envelope.ListedSize(stored, storeTag)
	if !ok {
		return e // not an s3seal object: leave it as the store described it
	}
	newTag := escapeQuotes(clientETag(storeTag))
	newSize := strconv.FormatInt(plain, 10)
	// Replace the later element first so earlier offsets stay valid.
	type repl struct {
		i, j int
		v    string
	}
	a, b := repl{ei, ej, newTag}, repl{si, sj, newSize}
	if a.i > b.i {
		a, b = b, a
	}
	var out bytes.Buffer
	out.Grow(len(e) + 8)
	out.Write(e[:a.i])
	out.WriteString(a.v)
	out.Write(e[a.j:b.i])
	out.WriteString(b.v)
	out.Write(e[b.j:])
	return out.Bytes()
}

// element returns the text of the first <name>…</name> in e and its
// offsets.
func element(e []byte, name string) ([]byte, int, int, bool) {
	open, closing := []byte("<"+name+">"), []byte("</"+name+">")
	i := bytes.Index(e, open)
	if i < 0 {
		return nil, 0, 0, false
	}
	i += len(open)
	j := bytes.Index(e[i:], closing)
	if j < 0 {
		return nil, 0, 0, false
	}
	return e[i : i+j], i, i + j, true
}

var quoteEntities = strings.NewReplacer("&#34;", `"`, "&quot;", `"`, "&#x22;", `"`)

func unescapeQuotes(s string) string { return quoteEntities.Replace(s) }

// unescapeXMLText and escapeXMLText convert element text; upload ids are
// opaque strings that may hold any character.
func unescapeXMLText(s string) string { return html.UnescapeString(s) }

func escapeXMLText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func escapeQuotes(s string) string { return strings.ReplaceAll(s, `"`, "&#34;") }
