package sigv4

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3t "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// verifyingServer is a minimal S3 endpoint that authenticates every request
// with Verifier and reads bodies through Auth.Body: real clients sign, we
// verify.
type verifyingServer struct {
	t       *testing.T
	v       *Verifier
	mu      sync.Mutex
	objects map[string][]byte
	modes   map[string]int // payload modes seen
	trailer map[string]int // trailers seen
}

func (s *verifyingServer) fail(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: "InternalError", Message: err.Error(), Status: 500}
	}
	s.t.Errorf("server: %v\ncanonical request:\n%s", err, e.CanonicalRequest)
	w.WriteHeader(e.Status)
	fmt.Fprintf(w, "<Error><Code>%s</Code><Message>%s</Message></Error>", e.Code, e.Message)
}

func (s *verifyingServer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	target := req.RequestURI
	if i := strings.Index(target, "://"); i >= 0 { // absolute form
		target = target[i+3:]
		target = target[strings.IndexByte(target, '/'):]
	}
	rawPath, rawQuery, _ := strings.Cut(target, "?")
	h := req.Header.Clone()
	if h.Get("Content-Length") == "" && req.ContentLength > 0 {
		h.Set("Content-Length", strconv.FormatInt(req.ContentLength, 10))
	}
	a, err := s.v.Verify(&Request{Method: req.Method, RawPath: rawPath, RawQuery: rawQuery, Host: req.Host, Header: h})
	if err != nil {
		s.fail(w, err)
		return
	}
	n := req.ContentLength
	if d := req.Header.Get("X-Amz-Decoded-Content-Length"); d != "" {
		n, _ = strconv.ParseInt(d, 10, 64)
	}
	rd, err := a.Body(req.Body, n)
	if err != nil {
		s.fail(w, err)
		return
	}
	body, err := io.ReadAll(rd)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mode := a.PayloadHash
	if len(mode) == 64 {
		mode = "sha256"
	}
	if a.Presigned {
		mode = "presigned/" + mode
	}
	s.modes[mode]++
	if tr, ok := rd.(TrailerReader); ok {
		for k := range tr.Trailer() {
			s.trailer[strings.ToLower(k)]++
		}
	}
	if a.ChecksumAlgorithm != "" {
		s.trailer["header:"+a.ChecksumAlgorithm]++
	}
	switch req.Method {
	case "PUT":
		if _, ok := req.URL.Query()["uploadId"]; ok {
			s.t.Errorf("unexpected multipart request %s", target)
		}
		s.objects[rawPath] = body
		sum := md5.Sum(body)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	case "GET", "HEAD":
		obj, ok := s.objects[rawPath]
		if !ok {
			w.WriteHeader(404)
			fmt.Fprint(w, "<Error><Code>NoSuchKey</Code></Error>")
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(obj)))
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		sum := md5.Sum(obj)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
		if req.Method == "GET" {
			w.Write(obj)
		}
	}
}

func startVerifyingServer(t *testing.T) (*verifyingServer, *httptest.Server, string, string) {
	return startVerifyingServerTLS(t, false)
}

func startVerifyingServerTLS(t *testing.T, tls bool) (*verifyingServer, *httptest.Server, string, string) {
	ak, sk := testKeys(t)
	vs := &verifyingServer{
		t:       t,
		v:       &Verifier{Lookup: func(k string) (string, bool) { return sk, k == ak }, Region: "us-east-1", MinChunkSize: S3ChunkMinimum},
		objects: map[string][]byte{},
		modes:   map[string]int{},
		trailer: map[string]int{},
	}
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(vs)
	} else {
		srv = httptest.NewServer(vs)
	}
	t.Cleanup(srv.Close)
	return vs, srv, ak, sk
}

var clientKeys = []string{"plain.bin", "dir/a b+c=d~e.txt", "x//y/./z", "é 日本/🙂", "q?&#%.bin"}

func clientPayload(i, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i*31 + j*7)
	}
	return b
}

// TestMinioGoClient: minio-go signs (streaming signed chunks over plain
// HTTP, presigned URLs), we verify.
func TestMinioGoClient(t *testing.T) {
	vs, srv, ak, sk := startVerifyingServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	c, err := minio.New(host, &minio.Options{Creds: miniocreds.NewStaticV4(ak, sk, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := minio.New(host, &minio.Options{Creds: miniocreds.NewStaticV4(ak, sk, ""), Region: "us-east-1", TrailingHeaders: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, key := range clientKeys {
		for _, size := range []int{0, 1, 65536, 200_001} {
			payload := clientPayload(i, size)
			for j, opts := range []minio.PutObjectOptions{
				{},
				{SendContentMd5: true},
				{Checksum: minio.ChecksumCRC32C},
				{Checksum: minio.ChecksumCRC64NVME},
				{Checksum: minio.ChecksumSHA256},
			} {
				opts.DisableMultipart = true
				cl := c
				if j >= 2 {
					cl = ct
				}
				if _, err := cl.PutObject(ctx, "bucket", key, bytes.NewReader(payload), int64(size), opts); err != nil {
					t.Fatalf("put %q (%d bytes): %v", key, size, err)
				}
				obj, err := c.GetObject(ctx, "bucket", key, minio.GetObjectOptions{})
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(obj)
				if err != nil || !bytes.Equal(got, payload) {
					t.Fatalf("get %q: %d bytes, %v", key, len(got), err)
				}
			}
		}
		u, err := c.PresignedGetObject(ctx, "bucket", key, time.Hour, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(u.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("presigned GET %s: %s", u, resp.Status)
		}
	}
	t.Logf("payload modes verified: %v; checksums: %v", vs.modes, vs.trailer)
	if vs.modes[StreamingPayload] == 0 || vs.modes["presigned/"+UnsignedPayload] == 0 {
		t.Errorf("expected signed streaming and presigned requests, saw %v", vs.modes)
	}
}

// TestAWSSDKClient: aws-sdk-go-v2's S3 client signs (with its default
// checksums), we verify. Over plain HTTP it signs the payload's SHA-256; over
// TLS it sends STREAMING-UNSIGNED-PAYLOAD-TRAILER with a checksum trailer.
func TestAWSSDKClient(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run("tls="+strconv.FormatBool(tls), func(t *testing.T) { testAWSSDKClient(t, tls) })
	}
}

func testAWSSDKClient(t *testing.T, tls bool) {
	vs, srv, ak, sk := startVerifyingServerTLS(t, tls)
	c := s3.New(s3.Options{
		Region:       "us-east-1",
		Credentials:  awscreds.NewStaticCredentialsProvider(ak, sk, ""),
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		HTTPClient:   srv.Client(),
	})
	ctx := context.Background()
	for i, key := range clientKeys {
		for _, size := range []int{0, 1, 65536, 200_001} {
			payload := clientPayload(i, size)
			for _, alg := range []string{"", "CRC32C", "CRC64NVME", "SHA256"} {
				in := &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key), Body: bytes.NewReader(payload)}
				if alg != "" {
					in.ChecksumAlgorithm = s3types(alg)
				}
				if _, err := c.PutObject(ctx, in); err != nil {
					t.Fatalf("put %q (%d bytes, %s): %v", key, size, alg, err)
				}
				out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key)})
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(out.Body)
				out.Body.Close()
				if err != nil || !bytes.Equal(got, payload) {
					t.Fatalf("get %q: %d bytes, %v", key, len(got), err)
				}
			}
		}
		p, err := s3.NewPresignClient(c).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(p.Method, p.URL, nil)
		for k, v := range p.SignedHeader {
			if k != "Host" {
				req.Header[k] = v
			}
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("presigned GET %s: %s", p.URL, resp.Status)
		}
	}
	t.Logf("payload modes verified: %v; checksums: %v", vs.modes, vs.trailer)
	if vs.modes["presigned/"+UnsignedPayload] == 0 {
		t.Errorf("no presigned request verified: %v", vs.modes)
	}
	if tls && vs.modes[StreamingUnsignedTrailer] == 0 {
		t.Errorf("no unsigned-trailer upload over TLS: %v", vs.modes)
	}
}

func s3types(alg string) s3t.ChecksumAlgorithm { return s3t.ChecksumAlgorithm(alg) }
