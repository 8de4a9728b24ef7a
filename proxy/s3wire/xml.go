package s3wire

import (
	"bytes"
	"encoding/xml"
	"html"
	"slices"
	"strings"
)

// XML element rewriting. The proxy edits the store's documents as bytes
// rather than re-marshalling them, so that everything it does not rewrite
// (namespaces, order, encodings) stays exactly as the store wrote it.

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

// Element returns the text of the first <name>…</name> in e and its
// offsets.
func Element(e []byte, name string) (text []byte, start, end int, ok bool) {
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

// splice replaces e[i:j] with v in a new slice.
func splice(e []byte, i, j int, v string) []byte {
	return slices.Concat(e[:i], []byte(v), e[j:])
}

// UploadIDText is the (unescaped) text of a document's first <UploadId>.
func UploadIDText(doc []byte) (string, bool) {
	raw, _, _, ok := Element(doc, "UploadId")
	return html.UnescapeString(string(raw)), ok
}

// SetUploadID replaces the text of a document's first <UploadId> with id;
// upload ids are opaque strings that may hold any character.
func SetUploadID(doc []byte, id string) []byte {
	_, i, j, ok := Element(doc, "UploadId")
	if !ok {
		return doc
	}
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(id))
	return splice(doc, i, j, b.String())
}

var quoteEntities = strings.NewReplacer("&#34;", `"`, "&quot;", `"`, "&#x22;", `"`)

func unescapeQuotes(s string) string { return quoteEntities.Replace(s) }

func escapeQuotes(s string) string { return strings.ReplaceAll(s, `"`, "&#34;") }

// mapETagText maps the text of an <ETag> element with fn (quotes escaped as
// the store may write them).
func mapETagText(text []byte, fn func(string) string) string {
	return escapeQuotes(fn(unescapeQuotes(string(text))))
}
