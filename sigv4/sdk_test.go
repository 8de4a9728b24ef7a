package sigv4

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkv4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Round trips against the reference signer of aws-sdk-go-v2, configured as
// its S3 client does (no path escaping: the path is signed as sent).

var keyPieces = []string{
	"a", "Z", "0", "photos", " ", "  ", "é", "日本", "🙂", "/", "//", "./", "../", "%2F",
	"+", "=", "~", "-", "_", ".", "!", "$", "'", "(", ")", "*", ",", ";", ":", "@", "&", "?", "#", "%",
	"[", "]", "{", "}", "^", "`", "|", "\\", "\"", "<", ">",
}

// randKey builds an S3 object key from tricky pieces.
func randKey(rng *rand.Rand) string {
	var b strings.Builder
	for range 1 + rng.IntN(8) {
		b.WriteString(keyPieces[rng.IntN(len(keyPieces))])
	}
	return b.String()
}

// pathSafe are the bytes a client may leave unescaped in a path.
const pathSafe = "!$&'()*+,;=:@"

// encodePath escapes a key the way different clients do: unreserved bytes
// and '/' raw, other bytes escaped, some sub-delims left raw at random, and
// '/' sometimes escaped as %2F.
func encodePath(rng *rand.Rand, key string) string {
	var b []byte
	rawSubDelims := rng.IntN(2) == 0
	escSlash := rng.IntN(4) == 0
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case unreserved(c), c == '/' && !escSlash, rawSubDelims && strings.IndexByte(pathSafe, c) >= 0:
			b = append(b, c)
		default:
			b = append(b, '%', hexUpper[c>>4], hexUpper[c&15])
		}
	}
	return string(b)
}

var queryNames = []string{"prefix", "delimiter", "list-type", "uploads", "partNumber", "uploadId",
	"max-keys", "marker", "x-id", "versionId", "acl", "tagging", "continuation-token", "start-after"}

// encodeQueryPart escapes a query name or value; spaces become '+' or %20,
// and some safe bytes ('/', '=', '~', ':') may stay raw, as clients do.
func encodeQueryPart(rng *rand.Rand, s string) string {
	plus := rng.IntN(2) == 0
	raw := rng.IntN(2) == 0
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case unreserved(c):
			b = append(b, c)
		case c == ' ' && plus:
			b = append(b, '+')
		case raw && (c == '/' || c == ':' || c == '@' || c == '!' || c == '$' || c == '\'' || c == '(' || c == ')' || c == '*' || c == ','):
			b = append(b, c)
		default:
			b = append(b, '%', hexUpper[c>>4], hexUpper[c&15])
		}
	}
	return string(b)
}

func randQuery(rng *rand.Rand) string {
	var parts []string
	for range rng.IntN(5) {
		var name string
		if rng.IntN(3) == 0 {
			name = randKey(rng)
		} else {
			name = queryNames[rng.IntN(len(queryNames))]
		}
		name = encodeQueryPart(rng, name)
		switch rng.IntN(4) {
		case 0:
			parts = append(parts, name) // no '='
		case 1:
			parts = append(parts, name+"=")
		default:
			parts = append(parts, name+"="+encodeQueryPart(rng, randKey(rng)))
		}
	}
	return strings.Join(parts, "&")
}

func randHeaderValue(rng *rand.Rand) string {
	pieces := []string{"v", "x y", "  ", " a  b ", "é", "=", ",", ";", "\"q\"", "1", "text/plain"}
	var b strings.Builder
	for range 1 + rng.IntN(4) {
		b.WriteString(pieces[rng.IntN(len(pieces))])
	}
	if strings.TrimSpace(b.String()) == "" {
		b.WriteString("z")
	}
	return b.String()
}

var hosts = []string{"s3.example.com", "bucket.s3.example.com:8443", "127.0.0.1:9000", "[::1]:9000"}
var regions = []string{"us-east-1", "eu-west-3", "ap-southeast-2"}

type sdkCase struct {
	method, host, rawPath, rawQuery, region, payload string
	header                                           http.Header
	now                                              time.Time
}

func randSDKCase(rng *rand.Rand, presign bool) sdkCase {
	c := sdkCase{
		method:  []string{"GET", "PUT", "HEAD", "DELETE", "POST"}[rng.IntN(5)],
		host:    hosts[rng.IntN(len(hosts))],
		rawPath: "/bucket-" + string(rune('a'+rng.IntN(26))) + "/" + encodePath(rng, randKey(rng)),
		region:  regions[rng.IntN(len(regions))],
		header:  http.Header{},
		now:     time.Unix(1_600_000_000+rng.Int64N(400_000_000), 0).UTC(),
	}
	if rng.IntN(8) == 0 {
		c.rawPath = "/" // service-level request
	}
	c.rawQuery = randQuery(rng)
	switch rng.IntN(3) {
	case 0:
		c.payload = UnsignedPayload
	case 1:
		c.payload = EmptySHA256
	default:
		c.payload = sha256Hex([]byte(randKey(rng)))
	}
	for range rng.IntN(4) {
		name := "X-Amz-Meta-" + []string{"A", "Mtime", "Md5chksum", "S3cmd-Attrs"}[rng.IntN(4)]
		c.header.Add(name, randHeaderValue(rng)) // may repeat: values joined with ','
	}
	if rng.IntN(2) == 0 {
		c.header.Set("Content-Type", randHeaderValue(rng))
	}
	if !presign {
		if rng.IntN(3) == 0 {
			c.header.Set("Content-Md5", "1B2M2Y8AsgTpgAmY7PhCfg==")
		}
		if rng.IntN(3) == 0 {
			c.header.Set("X-Amz-Storage-Class", "STANDARD_IA")
		}
		if rng.IntN(3) == 0 {
			c.header.Set("X-Amz-Copy-Source", "/src/"+encodePath(rng, randKey(rng)))
		}
	}
	return c
}

func (c sdkCase) httpRequest(t *testing.T, query string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(c.method, "https://"+c.host+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = "//" + c.host + c.rawPath
	req.URL.RawQuery = query
	req.Header = c.header.Clone()
	return req
}

func newSDKSigner() *sdkv4.Signer {
	return sdkv4.NewSigner(func(o *sdkv4.SignerOptions) { o.DisableURIPathEscaping = true })
}

const sdkCases = 2000

func TestSDKHeaderRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	creds := aws.Credentials{AccessKeyID: "AKIDTEST" + randAlnum(rng, 12), SecretAccessKey: randAlnum(rng, 40)}
	sdk := newSDKSigner()
	v := &Verifier{Lookup: func(ak string) (string, bool) {
		return creds.SecretAccessKey, ak == creds.AccessKeyID
	}}
	for i := range sdkCases {
		c := randSDKCase(rng, false)
		v.Now = func() time.Time { return c.now.Add(time.Duration(rng.IntN(1800)-900) * time.Second) }

		// SDK signs, we verify.
		req := c.httpRequest(t, c.rawQuery)
		req.Header.Set("X-Amz-Content-Sha256", c.payload)
		if err := sdk.SignHTTP(context.Background(), creds, req, c.payload, "s3", c.region, c.now); err != nil {
			t.Fatal(err)
		}
		r := &Request{Method: c.method, RawPath: c.rawPath, RawQuery: c.rawQuery, Host: c.host, Header: req.Header}
		a, err := v.Verify(r)
		if err != nil {
			var e *Error
			errors.As(err, &e)
			t.Fatalf("case %d: %s %s?%s: verify SDK signature: %v\ncanonical:\n%s", i, c.method, c.rawPath, c.rawQuery, err, e.CanonicalRequest)
		}
		if a.AccessKey != creds.AccessKeyID || a.PayloadHash != c.payload || a.Region != c.region {
			t.Fatalf("case %d: auth %+v", i, a)
		}

		// We sign, the SDK's Authorization must be identical.
		s := &Signer{AccessKey: creds.AccessKeyID, SecretKey: creds.SecretAccessKey, Region: c.region}
		ours := s.Sign(&Request{Method: c.method, RawPath: c.rawPath, RawQuery: c.rawQuery, Host: c.host, Header: c.header}, c.payload, c.now)
		if got, want := ours.Get("Authorization"), req.Header.Get("Authorization"); got != want {
			t.Fatalf("case %d: %s %s?%s\nours: %s\nSDK:  %s", i, c.method, c.rawPath, c.rawQuery, got, want)
		}
		if ours.Get("X-Amz-Date") != req.Header.Get("X-Amz-Date") || ours.Get("X-Amz-Content-Sha256") != c.payload {
			t.Fatalf("case %d: headers %v", i, ours)
		}
	}
}

func TestSDKPresignRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	creds := aws.Credentials{AccessKeyID: "AKIDTEST" + randAlnum(rng, 12), SecretAccessKey: randAlnum(rng, 40)}
	sdk := newSDKSigner()
	v := &Verifier{Lookup: func(ak string) (string, bool) {
		return creds.SecretAccessKey, ak == creds.AccessKeyID
	}}
	for i := range sdkCases {
		c := randSDKCase(rng, true)
		expires := time.Duration(1+rng.IntN(604800)) * time.Second
		v.Now = func() time.Time { return c.now.Add(time.Duration(rng.Int64N(int64(expires)))) }
		q := c.rawQuery
		if q != "" {
			q += "&"
		}
		q += "X-Amz-Expires=" + strconv.FormatInt(int64(expires/time.Second), 10)
		req := c.httpRequest(t, q)
		uri, hdr, err := sdk.PresignHTTP(context.Background(), creds, req, UnsignedPayload, "s3", c.region, c.now)
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatal(err)
		}
		_, rawQuery, _ := strings.Cut(uri, "?")
		h := hdr.Clone()
		h.Del("Host")
		r := &Request{Method: c.method, RawPath: c.rawPath, RawQuery: rawQuery, Host: u.Host, Header: h}
		a, err := v.Verify(r)
		if err != nil {
			var e *Error
			errors.As(err, &e)
			t.Fatalf("case %d: %s: verify SDK presigned URL: %v\ncanonical:\n%s", i, uri, err, e.CanonicalRequest)
		}
		if !a.Presigned || a.PayloadHash != UnsignedPayload {
			t.Fatalf("case %d: auth %+v", i, a)
		}

		// Our presigned URL carries the SDK's signature (the parameters may
		// come in another order) and verifies.
		s := &Signer{AccessKey: creds.AccessKeyID, SecretKey: creds.SecretAccessKey, Region: c.region}
		ours := s.Presign(&Request{Method: c.method, RawPath: c.rawPath, RawQuery: c.rawQuery, Host: c.host, Header: c.header},
			expires, c.now)
		sdkSig := rawQuery[strings.LastIndex(rawQuery, "X-Amz-Signature="):]
		if !strings.HasSuffix(ours, "&"+sdkSig) {
			t.Fatalf("case %d: ours %s\nSDK %s", i, ours, rawQuery)
		}
		r.RawQuery = ours
		if _, err := v.Verify(r); err != nil {
			t.Fatalf("case %d: verify our presigned URL: %v", i, err)
		}
	}
}

func randAlnum(rng *rand.Rand, n int) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+"
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[rng.IntN(len(chars))]
	}
	return string(b)
}
