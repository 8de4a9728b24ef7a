package proxy

import "testing"

func TestRedactURI(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/b/k", "/b/k"},
		{"/b/k?versionId=1", "/b/k?versionId=1"},
		{"/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20261205%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261205T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=abc123&X-Amz-Security-Token=tok",
			"/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED&X-Amz-Date=20261205T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED"},
		{"/b/k?AWSAccessKeyId=AK&Expires=1&Signature=s%2Bg%3D", "/b/k?AWSAccessKeyId=REDACTED&Expires=1&Signature=REDACTED"},
		{"/b/k?x-amz-signature=abc&signature", "/b/k?x-amz-signature=REDACTED&signature=REDACTED"},
		{"/b/k?X%2DAmz%2DSignature=abc", "/b/k?X%2DAmz%2DSignature=REDACTED"},
		// A write-only upload id carries the upload's object key: only
		// that field goes.
		{"/b/k?partNumber=2&uploadId=s3seal3a~VQ~a2V5~T0VLLWtleQ~store~id", "/b/k?partNumber=2&uploadId=s3seal3a~VQ~a2V5~REDACTED~store~id"},
		{"/b/k?uploadId=s3seal3a%7EVQ%7E%7ET0VL%7Estore", "/b/k?uploadId=s3seal3a~VQ~~REDACTED~store"},
		{"/b/k?uploadId=s3seal3a~short", "/b/k?uploadId=s3seal3a~REDACTED"},
		{"/b/k?uploadId=s3seal2~VQ~~store", "/b/k?uploadId=s3seal2~VQ~~store"},
	} {
		if got := redactURI(tt.in); got != tt.want {
			t.Errorf("redactURI(%q)\n = %q\nwant %q", tt.in, got, tt.want)
		}
	}
}
