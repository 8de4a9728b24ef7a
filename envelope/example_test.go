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

// A version 2 multipart upload and a ranged read of the object, minus HTTP
// and KMS: parts sealed to the upload identity, the manifest sealed at
// completion, and the part map verified before any plaintext.
func ExampleMultipartReader() {
	dek := make([]byte, envelope.KeySize) // from the KMS in real life
	_, _ = rand.Read(dek)
	ki := envelope.KeyInfo{KeyID: "alias/bucket-key", Wrapped: []byte("wrapped DEK from the KMS")}
	const bucket, key = "bucket", "big.bin"

	// CreateMultipartUpload: an upload identity, carried in the upload id.
	upload, _ := envelope.NewUploadID()
	// UploadPart ×3, on any instance: each part sealed to (bucket, key, number, upload).
	var stored bytes.Buffer
	for i, text := range []string{strings.Repeat("a", 70000), strings.Repeat("b", 70000), "the end\n"} {
		p, _ := envelope.NewPart(dek, ki, bucket, key, upload, i+1, int64(len(text)))
		_, _ = io.Copy(&stored, p.EncryptReader(strings.NewReader(text)))
		p.Close()
	}
	body := stored.Bytes()
	fetch := func(off int64) (*envelope.PartHeader, error) { return envelope.ParsePartHeader(body[off:]) }

	// CompleteMultipartUpload: the manifest of the parts the store holds,
	// sealed in the (finalized) object header.
	pm, _ := envelope.ReadPartMap(3, int64(len(body)), fetch)
	mf, _ := pm.Manifest(upload)
	meta := &envelope.Meta{Size: -1, Upload: upload, Manifest: mf}
	obj, _ := envelope.NewObject(dek, ki, bucket, key, envelope.LayoutMultipart, meta.Encode())
	obj.Close()

	// GET bytes 139995-140007: sizes, part map and manifest first.
	h, _ := envelope.ParseHeader(obj.HeaderValue())
	o, _ := envelope.Open(h, dek, bucket, key)
	defer o.Close()
	m, _ := envelope.DecodeMeta(o.Meta())
	size, err := o.PlainSize(m, int64(len(body)), `"etag-3"`)
	fmt.Println("size:", size, err)
	pm, _ = envelope.ReadPartMap(3, int64(len(body)), fetch) // cached by ETag and header in real life
	fmt.Println("verify:", pm.Verify(envelope.Version, m))
	f, _ := pm.FetchRange(139995, 13)
	fmt.Println("fetch stored bytes", f.From, "to", f.To-1, "header inline:", f.HeaderInline)
	var first *envelope.PartHeader
	if !f.HeaderInline {
		first, _ = fetch(f.FirstOffset)
	}
	open := func(ph *envelope.PartHeader) (*envelope.Part, error) {
		b, k := m.PartsPath(bucket, key)
		return envelope.OpenPart(ph, dek, b, k, m.Upload)
	}
	got, err := io.ReadAll(envelope.MultipartReader(bytes.NewReader(body[f.From:f.To]), pm, first, 139995, 13, open))
	fmt.Printf("%q %v\n", got, err)
	// Output:
	// size: 140008 <nil>
	// verify: <nil>
	// fetch stored bytes 160128 to 201447 header inline: false
	// "bbbbbthe end\n" <nil>
}
