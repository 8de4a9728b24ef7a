package embedstore

import (
	"crypto/md5"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"net/http"
)

// s3Error is an S3 error answer. Handlers return it; ServeHTTP renders it.
type s3Error struct {
	Status  int
	Code    string
	Message string
}

func (e *s3Error) Error() string { return e.Code + ": " + e.Message }

func newErr(status int, code, msg string) *s3Error {
	return &s3Error{Status: status, Code: code, Message: msg}
}

var (
	errNoSuchBucket      = newErr(http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
	errNoSuchKey         = newErr(http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
	errNoSuchUpload      = newErr(http.StatusNotFound, "NoSuchUpload", "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
	errBucketNotEmpty    = newErr(http.StatusConflict, "BucketNotEmpty", "The bucket you tried to delete is not empty")
	errBucketExists      = newErr(http.StatusConflict, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it.")
	errPrecondition      = newErr(http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
	errInvalidRange      = newErr(http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "The requested range is not satisfiable")
	errInvalidPart       = newErr(http.StatusBadRequest, "InvalidPart", "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")
	errInvalidPartOrder  = newErr(http.StatusBadRequest, "InvalidPartOrder", "The list of parts was not in ascending order. The parts list must be specified in order by part number.")
	errEntityTooSmall    = newErr(http.StatusBadRequest, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.")
	errMalformedXML      = newErr(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
	errBadDigest         = newErr(http.StatusBadRequest, "BadDigest", "The Content-MD5 you specified did not match what we received.")
	errMissingLength     = newErr(http.StatusLengthRequired, "MissingContentLength", "You must provide the Content-Length HTTP header.")
	errMetadataTooLarge  = newErr(http.StatusBadRequest, "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size.")
	errKeyTooLong        = newErr(http.StatusBadRequest, "KeyTooLongError", "Your key is too long")
	errInvalidBucketName = newErr(http.StatusBadRequest, "InvalidBucketName", "The specified bucket is not valid.")
)

func errInvalidArgument(msg string) *s3Error {
	return newErr(http.StatusBadRequest, "InvalidArgument", msg)
}

func errInvalidRequest(msg string) *s3Error {
	return newErr(http.StatusBadRequest, "InvalidRequest", msg)
}

func errNotImplemented(what string) *s3Error {
	return newErr(http.StatusNotImplemented, "NotImplemented", what+" is not implemented by s3seal's embedded store")
}

func errIncompleteBody(err error) *s3Error {
	return newErr(http.StatusBadRequest, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header: "+err.Error())
}

// writeError renders err as S3 does: an XML document, none for HEAD.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *s3Error
	if !errors.As(err, &e) {
		e = newErr(http.StatusInternalServerError, "InternalError", err.Error())
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(e.Status)
		return
	}
	body, _ := xml.Marshal(struct {
		XMLName  xml.Name `xml:"Error"`
		Code     string
		Message  string
		Resource string
	}{Code: e.Code, Message: e.Message, Resource: r.URL.Path})
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", fmt.Sprint(len(xml.Header)+len(body)))
	w.WriteHeader(e.Status)
	w.Write([]byte(xml.Header))
	w.Write(body)
}

func newMD5() hash.Hash { return md5.New() }
