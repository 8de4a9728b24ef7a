package load

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/s3seal/s3seal/internal/testenv"
)

// rawClient is a cheap S3 client for many concurrent workers: plain
// net/http with SigV4 headers from the AWS SDK's signer and unsigned
// payloads, so that the client side hashes nothing (the machine's two
// cores are for the proxy and MinIO).
type rawClient struct {
	endpoint string
	creds    aws.Credentials
	signer   *v4.Signer
	http     *http.Client
}

func newRawClient(endpoint, access, secret string, conns int) *rawClient {
	return &rawClient{
		endpoint: endpoint,
		creds:    aws.Credentials{AccessKeyID: access, SecretAccessKey: secret},
		signer:   v4.NewSigner(),
		http: &http.Client{Transport: &http.Transport{
			MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: 30 * time.Second,
			DisableCompression: true,
		}},
	}
}

// do signs and sends a request; path is /bucket/key as it goes on the
// wire, query already encoded.
func (c *rawClient) do(ctx context.Context, method, path, query string, body io.Reader, size int64) (*http.Response, error) {
	u := c.endpoint + path
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
	} else if method == http.MethodPut || method == http.MethodPost {
		req.ContentLength = 0
		req.Body = http.NoBody
	}
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	if err := c.signer.SignHTTP(ctx, c.creds, req, "UNSIGNED-PAYLOAD", "s3", testenv.Region, time.Now()); err != nil {
		return nil, err
	}
	return c.http.Do(req)
}

// statusError is an answer the client did not expect.
type statusError struct {
	op     string
	status int
	code   string
	body   string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s: %d %s %.200s", e.op, e.status, e.code, e.body)
}

// retriable reports a 503 SlowDown, which every SDK retries.
func retriable(err error) bool {
	var se *statusError
	return errors.As(err, &se) && se.status == http.StatusServiceUnavailable && se.code == "SlowDown"
}

// call sends a request whose answer is small (an error or XML), reads it
// and checks its status.
func (c *rawClient) call(ctx context.Context, op, method, path, query string, body io.Reader, size int64, want int) ([]byte, http.Header, error) {
	resp, err := c.do(ctx, method, path, query, body, size)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: reading the answer: %w", op, err)
	}
	if resp.StatusCode != want {
		return nil, nil, statusErr(op, resp.StatusCode, b)
	}
	return b, resp.Header, nil
}

func statusErr(op string, status int, body []byte) error {
	var e struct{ Code string }
	_ = xml.Unmarshal(body, &e)
	return &statusError{op: op, status: status, code: e.Code, body: string(body)}
}

// stream is an object's content: a ChaCha8 key stream from a seed, so a
// worker holds only (seed, size) per object and compares what it reads
// back as it goes.
func stream(seed uint64) *rand.ChaCha8 {
	var k [32]byte
	binary.LittleEndian.PutUint64(k[:], seed)
	k = sha256.Sum256(k[:])
	return rand.NewChaCha8(k)
}

// compareStream reads r to its end and counts the bytes that differ from
// seed's stream and how many were read.
func compareStream(r io.Reader, seed uint64) (read, mismatched int64, err error) {
	want := stream(seed)
	got := make([]byte, 64<<10)
	exp := make([]byte, 64<<10)
	for {
		n, err := r.Read(got)
		if n > 0 {
			want.Read(exp[:n])
			if !bytes.Equal(got[:n], exp[:n]) {
				for i := range n {
					if got[i] != exp[i] {
						mismatched++
					}
				}
			}
			read += int64(n)
		}
		if err == io.EOF {
			return read, mismatched, nil
		}
		if err != nil {
			return read, mismatched, err
		}
	}
}

func objectPath(bucket, key string) string {
	return "/" + bucket + "/" + (&url.URL{Path: key}).EscapedPath()
}

// listResult is what ListObjectsV2 says, keys and sizes only.
type listResult struct {
	Contents []struct {
		Key  string
		Size int64
	}
	IsTruncated bool
}

func (c *rawClient) list(ctx context.Context, bucket, prefix string) (map[string]int64, error) {
	q := "list-type=2&prefix=" + url.QueryEscape(prefix)
	b, _, err := c.call(ctx, "LIST", http.MethodGet, "/"+bucket, q, nil, 0, http.StatusOK)
	if err != nil {
		return nil, err
	}
	var lr listResult
	if err := xml.Unmarshal(b, &lr); err != nil {
		return nil, fmt.Errorf("LIST: %w", err)
	}
	if lr.IsTruncated {
		return nil, errors.New("LIST: truncated (a worker keeps fewer objects than a page)")
	}
	m := map[string]int64{}
	for _, o := range lr.Contents {
		m[o.Key] = o.Size
	}
	return m, nil
}

// multipartPut uploads size bytes of seed's stream in parts of partSize.
func (c *rawClient) multipartPut(ctx context.Context, bucket, key string, seed uint64, size, partSize int64) error {
	p := objectPath(bucket, key)
	b, _, err := c.call(ctx, "CreateMultipartUpload", http.MethodPost, p, "uploads=", nil, 0, http.StatusOK)
	if err != nil {
		return err
	}
	var init struct{ UploadId string }
	if err := xml.Unmarshal(b, &init); err != nil || init.UploadId == "" {
		return fmt.Errorf("CreateMultipartUpload: no upload id in %.200s", b)
	}
	uid := url.QueryEscape(init.UploadId)
	src := stream(seed)
	var done strings.Builder
	done.WriteString("<CompleteMultipartUpload>")
	for n, off := 1, int64(0); off < size; n, off = n+1, off+partSize {
		ps := min(partSize, size-off)
		_, h, err := c.call(ctx, "UploadPart", http.MethodPut, p, "partNumber="+strconv.Itoa(n)+"&uploadId="+uid, io.LimitReader(src, ps), ps, http.StatusOK)
		if err != nil {
			c.abort(p, uid)
			return err
		}
		fmt.Fprintf(&done, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", n, h.Get("ETag"))
	}
	done.WriteString("</CompleteMultipartUpload>")
	body := done.String()
	b, _, err = c.call(ctx, "CompleteMultipartUpload", http.MethodPost, p, "uploadId="+uid, strings.NewReader(body), int64(len(body)), http.StatusOK)
	if err != nil {
		c.abort(p, uid)
		return err
	}
	if !bytes.Contains(b, []byte("CompleteMultipartUploadResult")) {
		return fmt.Errorf("CompleteMultipartUpload: %.300s", b)
	}
	return nil
}

func (c *rawClient) abort(path, uid string) {
	resp, err := c.do(context.Background(), http.MethodDelete, path, "uploadId="+uid, nil, 0)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
