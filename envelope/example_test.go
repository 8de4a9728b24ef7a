package envelope_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"strings"

	"github.com/s3seal/s3seal/envelope"
)

// The PutObject / GetObject flow of the proxy, minus HTTP and KMS.
func Example() {
	dek := make([]byte, envelope.KeySize) // from kms GenerateDataKey in real life
	_, _ = rand.Read(dek)
	ki := envelope.KeyInfo{KeyID: "alias/bucket-key", Wrapped: []byte("wrapped DEK from the KMS")}
	plain := strings.Repeat("hello, s3seal\n", 10000)

	// PUT: header value into x-amz-meta-s3seal, body of CiphertextSize bytes.
	obj, err := envelope.NewObject(dek, ki, "bucket", "dir/hello.txt", envelope.LayoutSingle, []byte(`{"md5":"..."}`))
	if err != nil {
		panic(err)
	}
	headerValue := obj.HeaderValue()
	var stored bytes.Buffer
	if _, err := io.Copy(&stored, obj.EncryptReader(strings.NewReader(plain), int64(len(plain)))); err != nil {
		panic(err)
	}
	obj.Close()
	fmt.Println("stored size:", stored.Len(), "=", envelope.CiphertextSize(int64(len(plain))))

	// GET bytes 70000-70012: parse the header, unwrap its DEK, open, fetch the
	// segment-aligned stored range, decrypt.
	h, err := envelope.ParseHeader(headerValue)
	if err != nil {
		panic(err)
	}
	fmt.Println("key id:", h.KeyInfo().KeyID)
	o, err := envelope.Open(h, dek, "bucket", "dir/hello.txt")
	if err != nil {
		panic(err)
	}
	defer o.Close()
	plainLen, _ := envelope.PlaintextSize(int64(stored.Len()))
	cOff, cLen := envelope.CipherRange(plainLen, 70000, 13)
	fmt.Println("fetch stored bytes", cOff, "to", cOff+cLen-1)
	got, err := io.ReadAll(o.DecryptReader(bytes.NewReader(stored.Bytes()[cOff:cOff+cLen]), plainLen, 70000, 13))
	fmt.Printf("%q %v\n", got, err)
	// Output:
	// stored size: 140048 = 140048
	// key id: alias/bucket-key
	// fetch stored bytes 65552 to 131103
	// "hello, s3seal" <nil>
}
