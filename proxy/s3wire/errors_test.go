package s3wire

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/sigv4"
)

func TestRender(t *testing.T) {
	body := string(InvalidRange(100, "bytes=200-").Render("/b/k", "req1"))
	want := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<Error><Code>InvalidRange</Code><Message>The requested range is not satisfiable</Message>` +
		`<RangeRequested>bytes=200-</RangeRequested><ActualObjectSize>100</ActualObjectSize><Resource>/b/k</Resource><RequestId>req1</RequestId><HostId>req1</HostId></Error>`
	if body != want {
		t.Errorf("got  %s\nwant %s", body, want)
	}
	if body := string(ErrAccessDenied.Render("", "r")); strings.Contains(body, "<Resource>") {
		t.Errorf("empty resource rendered: %s", body)
	}
}

func TestAsError(t *testing.T) {
	if e := AsError(ErrSlowDown); e != ErrSlowDown {
		t.Errorf("an S3 error changed: %v", e)
	}
	cause := errors.New("disk on fire")
	if e := AsError(cause); e.Code != "InternalError" || e.Status != 500 || !errors.Is(e, cause) || strings.Contains(string(e.Render("", "")), "fire") {
		t.Errorf("a plain error: %+v", e)
	}
}

func TestFromAuthError(t *testing.T) {
	err := FromAuthError(&sigv4.Error{Status: http.StatusForbidden, Code: "SignatureDoesNotMatch", Message: "m",
		AccessKeyID: "AK", StringToSign: "AB", SignatureProvided: "sig"})
	e := AsError(err)
	var got []string
	for _, x := range e.Extra {
		got = append(got, x.XMLName.Local+"="+x.Value)
	}
	if e.Code != "SignatureDoesNotMatch" || strings.Join(got, " ") != "AWSAccessKeyId=AK StringToSign=AB StringToSignBytes=41 42 SignatureProvided=sig" {
		t.Errorf("got %s %v", e.Code, got)
	}
	plain := errors.New("x")
	if FromAuthError(plain) != plain {
		t.Error("a non-sigv4 error was converted")
	}
}

func TestStatusError(t *testing.T) {
	for st, code := range map[int]string{404: "NoSuchKey", 403: "AccessDenied", 412: "PreconditionFailed", 304: "NotModified", 500: "InternalError"} {
		if e := StatusError(st); e.Code != code || e.Status != st || e.Message != http.StatusText(st) {
			t.Errorf("%d: %+v", st, e)
		}
	}
}

// TestFromKMSErrorHidesDetail: what the KMS says (accounts, roles, key
// ARNs, endpoints) reaches the log through Cause, never the client.
func TestFromKMSErrorHidesDetail(t *testing.T) {
	const detail = "arn:aws:iam::123456789012:role/s3seal is not authorized on https://kms.internal:4566 key arn:aws:kms:eu-west-1:123456789012:key/k"
	for _, code := range []string{kms.CodeAccessDenied, kms.CodeDisabled, kms.CodeInvalidState, kms.CodeNotFound,
		kms.CodeInvalidKeyUsage, kms.CodeValidation, kms.CodeLimitExceeded, kms.CodeInvalidCiphertext,
		kms.CodeThrottling, kms.CodeUnavailable, "SomethingNew"} {
		cause := &kms.Error{Code: code, Message: detail}
		e := AsError(FromKMSError(cause))
		doc := string(e.Render("/b/k", "id"))
		if strings.Contains(doc, "123456789012") || strings.Contains(doc, "kms.internal") || e.Message == "" {
			t.Errorf("%s: %s", code, doc)
		}
		if !errors.Is(e, cause) {
			t.Errorf("%s: the cause is not kept for the log", code)
		}
	}
}

func TestDamaged(t *testing.T) {
	if e := Damaged(envelope.ErrAuth); e.Status != http.StatusInternalServerError || e.Code != "InternalError" {
		t.Errorf("failed authentication: %d %s", e.Status, e.Code)
	}
	e := Damaged(fmt.Errorf("b/k: %w", envelope.ErrIncomplete))
	if e.Status != http.StatusForbidden || e.Code != "InvalidObjectState" || !strings.Contains(e.Message, "retry CompleteMultipartUpload") {
		t.Errorf("not finalized: %d %s %q", e.Status, e.Code, e.Message)
	}
	if !errors.Is(e, envelope.ErrIncomplete) {
		t.Error("the cause is lost")
	}
}
