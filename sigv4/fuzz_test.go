package sigv4

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// Seeds beyond f.Add live in testdata/fuzz/<FuzzName>/.

func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/20150830/r/s/aws4_request,SignedHeaders=host,Signature=")
	f.Add("AWS4-HMAC-SHA256 ")
	f.Add("AWS AKID:sig")
	f.Add("AWS4-HMAC-SHA256 Credential=, SignedHeaders=;;, Signature==")
	f.Fuzz(func(t *testing.T, h string) {
		c, names, sig, err := ParseAuthorization(h)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code == "" || e.Status == 0 {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if c.AccessKey == "" || len(c.Date) != 8 || c.Region == "" || c.Service == "" || len(names) == 0 {
			t.Fatalf("accepted incomplete header %q: %+v %q", h, c, names)
		}
		for _, n := range names {
			if n == "" || strings.ToLower(n) != n || strings.ContainsAny(n, ";, :") {
				t.Fatalf("bad signed header name %q", n)
			}
		}
		// Re-serialized in the canonical form, it parses to the same.
		h2 := Algorithm + " Credential=" + c.AccessKey + "/" + c.Date + "/" + c.Region + "/" + c.Service + "/aws4_request, SignedHeaders=" +
			strings.Join(names, ";") + ", Signature=" + sig
		c2, names2, sig2, err := ParseAuthorization(h2)
		if err != nil || c2 != c || !slices.Equal(names, names2) || sig2 != sig {
			t.Fatalf("round trip of %q: %q -> %+v %q %q %v", h, h2, c2, names2, sig2, err)
		}
	})
}

func FuzzCanonicalQuery(f *testing.F) {
	for _, s := range []string{
		"", "a=b", "b=2&a=1&a=0", "uploads", "prefix=photos%2F2006%2F&delimiter=%2F",
		"a+b=c+d", "%zz=%4", "x=%E1%88%B4&=&&=v", "k==v=", "Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
		"X-Amz-Signature=abc&X-Amz-Date=1", "a;b=c", "%2B=%20",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		canon := CanonicalQuery(raw)
		// The canonical form is its own canonical form.
		if again := CanonicalQuery(canon); again != canon {
			t.Fatalf("not idempotent: %q -> %q -> %q", raw, canon, again)
		}
		// Only unreserved bytes, '%XX', '=' and '&' appear.
		for i := 0; i < len(canon); i++ {
			c := canon[i]
			switch {
			case unreserved(c), c == '=', c == '&':
			case c == '%' && i+2 < len(canon) && strings.IndexByte(hexUpper, canon[i+1]) >= 0 && strings.IndexByte(hexUpper, canon[i+2]) >= 0:
			default:
				t.Fatalf("byte %q at %d in %q", c, i, canon)
			}
		}
		// Differential: where net/url parses the query without error, the
		// result equals the SDK's construction (url.ParseQuery, encode,
		// sort by key then value).
		vals, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		type kv struct{ k, v string }
		var pairs []kv
		for k, vs := range vals {
			for _, v := range vs {
				pairs = append(pairs, kv{string(appendURIEncode(nil, k)), string(appendURIEncode(nil, v))})
			}
		}
		slices.SortFunc(pairs, func(a, b kv) int {
			if c := strings.Compare(a.k, b.k); c != 0 {
				return c
			}
			return strings.Compare(a.v, b.v)
		})
		var want []string
		for _, p := range pairs {
			want = append(want, p.k+"="+p.v)
		}
		if w := strings.Join(want, "&"); w != canon {
			t.Fatalf("query %q: ours %q, net/url %q", raw, canon, w)
		}
	})
}

func FuzzPresignedQuery(f *testing.F) {
	fx := newFixture(f)
	good := fx.presigned(baseRequest(), time.Hour)
	f.Add(good.RawQuery)
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=00")
	f.Add("X-Amz-Expires=-1&X-Amz-Expires=99999999999999999999")
	f.Add("X-Amz-Credential=%2F%2F%2F%2F&X-Amz-Signature")
	f.Fuzz(func(t *testing.T, raw string) {
		if _, err := parsePresigned(parseQuery(raw)); err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != 400 {
				t.Fatalf("error %v", err)
			}
		}
		r := *good
		r.RawQuery = raw
		a, err := fx.v.Verify(&r)
		if err == nil {
			// Only a query carrying the genuine signature over the same
			// canonical query can pass.
			if CanonicalQuery(raw) != CanonicalQuery(good.RawQuery) || !a.Presigned {
				t.Fatalf("accepted forged query %q", raw)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Code == "" {
			t.Fatalf("untyped error %v", err)
		}
	})
}

// FuzzChunkedDecoder feeds arbitrary bodies to the aws-chunked decoder in
// each mode: it must not panic, must fail with a typed error or decode, and
// must never return more bytes than declared.
func FuzzChunkedDecoder(f *testing.F) {
	fx := newFixture(f)
	payload := []byte("hello, aws-chunked world")
	auths := map[streamMode]*Auth{}
	for _, m := range []streamMode{
		{"signed", true, ""}, {"signed-crc32c", true, "x-amz-checksum-crc32c"},
		{"unsigned-crc32", false, "x-amz-checksum-crc32"}, {"unsigned", false, ""},
	} {
		r, body := fx.streamRequest(f, m, payload, 7)
		a, err := fx.v.Verify(r)
		if err != nil {
			f.Fatal(err)
		}
		auths[m] = a
		f.Add(body)
	}
	f.Add([]byte("0\r\n\r\n"))
	f.Add([]byte("ffffffffffffffff;chunk-signature=\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		for m, a := range auths {
			for _, n := range []int64{-1, int64(len(payload))} {
				rd, err := a.Body(bytes.NewReader(body), n)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(io.LimitReader(rd, int64(len(body))+1))
				if int64(len(got)) > int64(len(body)) || n >= 0 && int64(len(got)) > n {
					t.Fatalf("%s: decoded %d bytes from %d", m.name, len(got), len(body))
				}
				if err != nil {
					var e *Error
					if !errors.As(err, &e) || e.Code == "" {
						t.Fatalf("%s: untyped error %v", m.name, err)
					}
					continue
				}
				if m.signed && !bytes.Equal(got, payload) {
					t.Fatalf("%s: signed stream decoded to %q", m.name, got)
				}
				if m.checksum != "" && !bytes.Equal(got, payload) {
					// A checksum collision is possible in principle, but not
					// for the fuzzer within a run.
					t.Fatalf("%s: checksummed stream decoded to %q", m.name, got)
				}
			}
		}
	})
}
