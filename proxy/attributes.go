package proxy

import (
	"bytes"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/envelope"
	"github.com/valyala/fasthttp"
)

// getObjectAttributes answers GetObjectAttributes with plaintext sizes.
// The store is always asked for the ETag and size (the part count in the
// ETag is what turns a stored size into a plaintext size); what the client
// did not ask for is removed again. Checksums are the store's, of the
// ciphertext, and are never shown as the object's.
func (s *Server) getObjectAttributes(r *request) error {
	var asked []string
	for _, v := range r.header.Values("X-Amz-Object-Attributes") {
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				asked = append(asked, a)
			}
		}
	}
	if len(asked) == 0 {
		return errInvalidArgument("Invalid attribute name specified.")
	}
	out := newOut(http.MethodGet, r.t.RawPath, forwardQuery(r.t.RawQuery))
	copyRequestHeaders(out.Header, r.header)
	out.Header.Set("X-Amz-Object-Attributes", "ETag,ObjectSize,ObjectParts,StorageClass")
	resp, body, err := s.fetchDocument(r, out)
	if resp == nil {
		return err
	}
	defer fasthttp.ReleaseResponse(resp)
	tag, _, _, _ := element(body, "ETag")
	storeTag := `"` + strings.Trim(unescapeQuotes(string(tag)), `"`) + `"`
	sizeRaw, si, sj, ok := element(body, "ObjectSize")
	if ok {
		stored, err := strconv.ParseInt(string(sizeRaw), 10, 64)
		if plain, valid := envelope.ListedSize(stored, storeTag); err == nil && valid {
			body = slices.Concat(body[:si], []byte(strconv.FormatInt(plain, 10)), body[sj:])
		}
	}
	if _, ei, ej, ok := element(body, "ETag"); ok {
		body = slices.Concat(body[:ei], []byte(strings.Trim(clientETag(storeTag), `"`)), body[ej:])
	}
	body = rewriteElements(body, []string{"Part"}, func(e []byte) []byte {
		raw, i, j, ok := element(e, "Size")
		if !ok {
			return e
		}
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || n < envelope.PartOverhead {
			return e
		}
		return slices.Concat(e[:i], []byte(strconv.FormatInt(n-envelope.PartOverhead, 10)), e[j:])
	})
	body = checksumElement.ReplaceAll(body, nil)
	for _, name := range []string{"ETag", "ObjectSize", "ObjectParts", "StorageClass"} {
		if !slices.ContainsFunc(asked, func(a string) bool { return strings.EqualFold(a, name) }) {
			body = regexp.MustCompile(`(?s)<`+name+`>.*?</`+name+`>`).ReplaceAll(body, nil)
		}
	}
	r.ctx.SetStatusCode(http.StatusOK)
	relayHeaders(&r.ctx.Response.Header, &resp.Header, true)
	r.ctx.Response.Header.SetContentType("application/xml")
	r.ctx.SetBody(bytes.Clone(body))
	return nil
}

var checksumElement = regexp.MustCompile(`(?s)<Checksum(CRC32|CRC32C|CRC64NVME|SHA1|SHA256|Type)?>.*?</Checksum(CRC32|CRC32C|CRC64NVME|SHA1|SHA256|Type)?>`)
