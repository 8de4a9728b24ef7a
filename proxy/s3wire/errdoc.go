package s3wire

import "encoding/xml"

// StoreErrorDoc re-renders an error document from the store as the
// client's: the same code, message and elements, with the request id (and
// host id) of the client's request, which its x-amz-request-id header
// carries too. ok is false when body is no S3 error document.
func StoreErrorDoc(body []byte, requestID string) (doc []byte, ok bool) {
	var raw struct {
		XMLName  xml.Name
		Code     string
		Message  string
		Resource string
		Other    []Field `xml:",any"`
	}
	if xml.Unmarshal(body, &raw) != nil || raw.XMLName.Local != "Error" || raw.Code == "" {
		return nil, false
	}
	e := &Error{Code: raw.Code, Message: raw.Message}
	for _, f := range raw.Other {
		switch f.XMLName.Local {
		case "RequestId", "HostId":
		default:
			e.Extra = append(e.Extra, Field{XMLName: xml.Name{Local: f.XMLName.Local}, Value: f.Value})
		}
	}
	return e.Render(raw.Resource, requestID), true
}
