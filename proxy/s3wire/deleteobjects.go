package s3wire

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
)

// DeleteRefusal is one object of a DeleteObjects request that the proxy
// answers itself, with an <Error> entry in the DeleteResult, instead of
// passing it to the store.
type DeleteRefusal struct {
	Key, VersionID string
}

// SplitDeleteObjects removes from a DeleteObjects body every <Object>
// whose key refuse rejects, cutting its bytes out of the document so that
// everything else the client sent (Quiet, version ids, conditions the
// proxy does not know) reaches the store unchanged. It returns the
// remaining body, how many objects it still names, and the refused ones in
// request order. A body that is not a well-formed Delete document is an
// error (MalformedXML).
func SplitDeleteObjects(body []byte, refuse func(key string) bool) (kept []byte, remaining int, refused []DeleteRefusal, err error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	var cuts [][2]int64
	depth, roots := 0, 0
	for {
		start := d.InputOffset()
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, nil, ErrMalformedXML
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 {
				if roots++; t.Name.Local != "Delete" || roots > 1 {
					return nil, 0, nil, ErrMalformedXML
				}
			}
			if depth != 2 || t.Name.Local != "Object" {
				continue
			}
			var o struct {
				Key       string `xml:"Key"`
				VersionID string `xml:"VersionId"`
			}
			if err := d.DecodeElement(&o, &t); err != nil {
				return nil, 0, nil, ErrMalformedXML
			}
			depth--
			if refuse(o.Key) {
				refused = append(refused, DeleteRefusal{Key: o.Key, VersionID: o.VersionID})
				cuts = append(cuts, [2]int64{start, d.InputOffset()})
			} else {
				remaining++
			}
		case xml.EndElement:
			depth--
		}
	}
	if roots != 1 || depth != 0 {
		return nil, 0, nil, ErrMalformedXML
	}
	if len(cuts) == 0 {
		return body, remaining, nil, nil
	}
	kept = make([]byte, 0, len(body))
	var from int64
	for _, c := range cuts {
		kept = append(kept, body[from:c[0]]...)
		from = c[1]
	}
	return append(kept, body[from:]...), remaining, refused, nil
}

// deleteError is one <Error> entry of a DeleteResult.
type deleteError struct {
	XMLName   xml.Name `xml:"Error"`
	Key       string   `xml:"Key"`
	VersionID string   `xml:"VersionId,omitempty"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
}

// AppendDeleteErrors adds an <Error> entry with code and message for each
// refused object to a DeleteResult document (the store's answer, or nil
// for none: then the document is the proxy's own). S3 reports errors even
// in Quiet mode.
func AppendDeleteErrors(doc []byte, refused []DeleteRefusal, code, message string) ([]byte, error) {
	if doc == nil {
		doc = []byte(xml.Header + `<DeleteResult xmlns="` + NS + `"></DeleteResult>`)
	}
	end := bytes.LastIndex(doc, []byte("</DeleteResult>"))
	if end < 0 {
		return nil, errors.New("s3wire: store's DeleteObjects answer is not a DeleteResult")
	}
	var b bytes.Buffer
	b.Write(doc[:end])
	for _, r := range refused {
		e, err := xml.Marshal(deleteError{Key: r.Key, VersionID: r.VersionID, Code: code, Message: message})
		if err != nil {
			return nil, err
		}
		b.Write(e)
	}
	b.Write(doc[end:])
	return b.Bytes(), nil
}
