package proxy

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
)

// Error is an S3 error as the client sees it. Every failure the proxy
// reports goes through this type and is rendered in one place
// (writeError), so that the XML, status and codes always look like S3's.
type Error struct {
	Status  int
	Code    string
	Message string
	// Extra elements S3 adds for some codes (StringToSign for
	// SignatureDoesNotMatch, ActualObjectSize for InvalidRange, ...).
	Extra []xmlField
	// Cause is logged, never shown to the client.
	Cause error
}

type xmlField struct {
	XMLName xml.Name
	Value   string `xml:",chardata"`
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

func (e *Error) with(name, value string) *Error {
	e.Extra = append(e.Extra, xmlField{XMLName: xml.Name{Local: name}, Value: value})
	return e
}

func s3err(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// The errors the proxy raises itself, with AWS's wording.
var (
	errNotImplemented = func(what string) *Error {
		return s3err(http.StatusNotImplemented, "NotImplemented",
			"A header or operation you provided implies functionality that is not implemented: "+what)
	}
	errInternal = func(cause error) *Error {
		e := s3err(http.StatusInternalServerError, "InternalError",
			"We encountered an internal error. Please try again.")
		e.Cause = cause
		return e
	}
	errMissingContentLength = s3err(http.StatusLengthRequired, "MissingContentLength",
		"You must provide the Content-Length HTTP header.")
	errEntityTooLarge = s3err(http.StatusBadRequest, "EntityTooLarge",
		"Your proposed upload exceeds the maximum allowed object size.")
	errIncompleteBody = s3err(http.StatusBadRequest, "IncompleteBody",
		"You did not provide the number of bytes specified by the Content-Length HTTP header.")
	errInvalidRange = func(objectSize int64, requested string) *Error {
		return s3err(http.StatusRequestedRangeNotSatisfiable, "InvalidRange",
			"The requested range is not satisfiable").
			with("RangeRequested", requested).
			with("ActualObjectSize", fmt.Sprint(objectSize))
	}
	errNotSealed = s3err(http.StatusForbidden, "AccessDenied",
		"The object was not written through s3seal and cannot be read through it.")
	errDecrypt = func(cause error) *Error {
		e := s3err(http.StatusInternalServerError, "InternalError",
			"The stored object failed authentication; it has been altered or damaged.")
		e.Cause = cause
		return e
	}
	errSlowDown = s3err(http.StatusServiceUnavailable, "SlowDown",
		"Please reduce your request rate.")
	errMetadataTooLarge = s3err(http.StatusBadRequest, "MetadataTooLarge",
		"Your metadata headers exceed the maximum allowed metadata size.")
	errInvalidArgument = func(msg string) *Error {
		return s3err(http.StatusBadRequest, "InvalidArgument", msg)
	}
	errInvalidRequest = func(msg string) *Error {
		return s3err(http.StatusBadRequest, "InvalidRequest", msg)
	}
	errAccessDenied       = s3err(http.StatusForbidden, "AccessDenied", "Access Denied")
	errPreconditionFailed = s3err(http.StatusPreconditionFailed, "PreconditionFailed",
		"At least one of the pre-conditions you specified did not hold")
)

// asS3Error turns any error into the Error the client sees: errors that are
// already S3-shaped pass through, the rest become InternalError.
func asS3Error(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return errInternal(err)
}

type errorDoc struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string
	Message   string
	Extra     []xmlField
	Resource  string `xml:",omitempty"`
	RequestID string `xml:"RequestId"`
	HostID    string `xml:"HostId"`
}

// renderError returns the XML body S3 sends with an error.
func renderError(e *Error, resource, requestID string) []byte {
	body, err := xml.Marshal(errorDoc{
		Code: e.Code, Message: e.Message, Extra: e.Extra,
		Resource: resource, RequestID: requestID, HostID: requestID,
	})
	if err != nil { // only possible for invalid UTF-8 in Extra
		body = []byte("<Error><Code>InternalError</Code></Error>")
	}
	return append([]byte(xml.Header), body...)
}
