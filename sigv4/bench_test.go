package sigv4

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func benchRequest() *Request {
	return &Request{
		Method:   "PUT",
		RawPath:  "/bucket/some/fairly/long/object%20key/with%2Fescapes.tar.gz",
		RawQuery: "partNumber=7&uploadId=VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA",
		Host:     "s3.eu-west-3.amazonaws.com",
		Header: http.Header{
			"Content-Type":                 {"application/octet-stream"},
			"Content-Length":               {"5242880"},
			"Content-Md5":                  {"1B2M2Y8AsgTpgAmY7PhCfg=="},
			"User-Agent":                   {"aws-sdk-go-v2/1.30.0 os/linux lang/go#1.26 md/GOOS#linux md/GOARCH#amd64"},
			"X-Amz-Meta-Mtime":             {"1700000000.123456789"},
			"X-Amz-Storage-Class":          {"STANDARD"},
			"X-Amz-Sdk-Checksum-Algorithm": {"CRC32C"},
		},
	}
}

func BenchmarkCanonicalRequest(b *testing.B) {
	r := benchRequest()
	names := []string{"content-md5", "content-type", "host", "x-amz-content-sha256", "x-amz-date",
		"x-amz-meta-mtime", "x-amz-sdk-checksum-algorithm", "x-amz-storage-class"}
	r.Header.Set("X-Amz-Content-Sha256", UnsignedPayload)
	r.Header.Set("X-Amz-Date", "20261123T200000Z")
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		q := appendCanonicalQuery(nil, parseQuery(r.RawQuery), "")
		buf = appendCanonicalRequest(buf[:0], r.Method, canonicalURI(r.RawPath), q, names, requestHeaders{r}, UnsignedPayload)
	}
}

func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	r := f.signed(benchRequest(), UnsignedPayload)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPresigned(b *testing.B) {
	f := newFixture(b)
	r := f.presigned(benchRequest(), 3600e9)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	f := newFixture(b)
	r := benchRequest()
	b.ReportAllocs()
	for b.Loop() {
		f.signer.Sign(r, UnsignedPayload, f.now)
	}
}

const benchPayload = 16 << 20

// drain reads rd to the end through a 256 KiB buffer, as a proxy would.
func drain(b *testing.B, rd io.Reader, buf []byte) {
	for {
		_, err := rd.Read(buf)
		if err == io.EOF {
			return
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChunkedDecode(b *testing.B) {
	f := newFixture(b)
	payload := bytes.Repeat([]byte("s3seal benchmark payload 0123456789abcdef"), benchPayload/41+1)[:benchPayload]
	for _, m := range []streamMode{
		{"signed", true, ""},
		{"signed-crc32c", true, "x-amz-checksum-crc32c"},
		{"signed-crc64nvme", true, "x-amz-checksum-crc64nvme"},
		{"unsigned-crc32c", false, "x-amz-checksum-crc32c"},
		{"unsigned-crc64nvme", false, "x-amz-checksum-crc64nvme"},
		{"unsigned-sha256", false, "x-amz-checksum-sha256"},
	} {
		for _, chunk := range []int{64 << 10, 1 << 20} {
			b.Run(m.name+"/chunk"+strconv.Itoa(chunk>>10)+"KiB", func(b *testing.B) {
				r, body := f.streamRequest(b, m, payload, chunk)
				a, err := f.v.Verify(r)
				if err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, 256<<10)
				b.SetBytes(benchPayload)
				b.ReportAllocs()
				defer cpuMBps(b, benchPayload)()
				for b.Loop() {
					rd, err := a.Body(bytes.NewReader(body), benchPayload)
					if err != nil {
						b.Fatal(err)
					}
					drain(b, rd, buf)
				}
			})
		}
	}
}

func BenchmarkBodySHA256(b *testing.B) {
	f := newFixture(b)
	payload := bytes.Repeat([]byte{7}, benchPayload)
	sum := sha256.Sum256(payload)
	a, err := f.v.Verify(f.signed(benchRequest(), hex.EncodeToString(sum[:])))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	b.SetBytes(benchPayload)
	defer cpuMBps(b, benchPayload)()
	for b.Loop() {
		rd, _ := a.Body(bytes.NewReader(payload), benchPayload)
		drain(b, rd, buf)
	}
}

// BenchmarkSHA256 is the floor: crypto/sha256 alone over the same bytes.
func BenchmarkSHA256(b *testing.B) {
	payload := bytes.Repeat([]byte{7}, benchPayload)
	b.SetBytes(benchPayload)
	h := sha256.New()
	defer cpuMBps(b, benchPayload)()
	for b.Loop() {
		h.Reset()
		h.Write(payload)
		h.Sum(nil)
	}
}

// cpuMBps reports throughput per second of process CPU time ("cpu-MB/s"),
// which a machine shared with other work disturbs much less than wall-clock
// MB/s. Call as defer cpuMBps(b, bytesPerOp)().
func cpuMBps(b *testing.B, perOp int64) func() {
	start := cpuTime()
	return func() {
		if d := cpuTime() - start; d > 0 && b.N > 0 {
			b.ReportMetric(float64(perOp)*float64(b.N)/1e6/d.Seconds(), "cpu-MB/s")
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
