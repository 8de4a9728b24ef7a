package sigv4_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/s3seal/s3seal/sigv4"
)

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// A client signs an aws-chunked upload; the proxy verifies the request, then
// its body chunk by chunk, and signs its own request to the store.
func Example() {
	accessKey, secret := "AKID"+randomHex(8), randomHex(20)
	now := time.Now()

	// The client side (what an SDK does).
	payload := []byte("hello, s3seal")
	client := &sigv4.Signer{AccessKey: accessKey, SecretKey: secret, Region: "us-east-1"}
	req := &sigv4.Request{
		Method:  "PUT",
		RawPath: "/bucket/dir/a%20key", // as on the wire
		Host:    "s3.example.com",
		Header: http.Header{
			"Content-Encoding":             {"aws-chunked"},
			"X-Amz-Decoded-Content-Length": {strconv.Itoa(len(payload))},
			"X-Amz-Trailer":                {"x-amz-checksum-crc32c"},
		},
	}
	h, enc, _ := client.SignStreaming(req, bytes.NewReader(payload), int64(len(payload)), 0, "x-amz-checksum-crc32c", now)
	for k, v := range h {
		req.Header[k] = v
	}
	wire, _ := io.ReadAll(enc)

	// The proxy side.
	v := &sigv4.Verifier{
		Lookup: func(ak string) (string, bool) { return secret, ak == accessKey },
		Region: "us-east-1",
	}
	auth, err := v.Verify(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := auth.Body(bytes.NewReader(wire), int64(len(payload)))
	plain, err := io.ReadAll(body) // a bad chunk or checksum is an error here, never io.EOF
	fmt.Println(auth.PayloadHash, string(plain), err, body.(sigv4.TrailerReader).Trailer().Get("x-amz-checksum-crc32c") != "")

	// A tampered body fails.
	wire[len(wire)/2] ^= 1
	body, _ = auth.Body(bytes.NewReader(wire), int64(len(payload)))
	_, err = io.ReadAll(body)
	var e *sigv4.Error
	fmt.Println(errors.As(err, &e), e.Code, e.Status)

	// Upstream: a fresh signature with the store's credentials.
	store := &sigv4.Signer{AccessKey: "store-" + randomHex(4), SecretKey: randomHex(20), Region: "eu-west-3"}
	up := &sigv4.Request{Method: "PUT", RawPath: req.RawPath, Host: "store.example.com", Header: http.Header{}}
	fmt.Println(len(store.Sign(up, sigv4.UnsignedPayload, now)))
	// Output:
	// STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER hello, s3seal <nil> true
	// true SignatureDoesNotMatch 403
	// 3
}
