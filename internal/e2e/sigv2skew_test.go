package e2e

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/sigv4"
)

// TestSignatureV2HeaderSkew: a request with V2 header authentication
// ("Authorization: AWS key:signature") dated outside S3's 15 minutes, by
// Date or by x-amz-date, gets S3's 403 RequestTimeTooSkewed, from s3seal
// as from MinIO straight; one inside the window is served.
func TestSignatureV2HeaderSkew(t *testing.T) {
	skipV2InFIPSMode(t)
	p := startProxy(t)
	bucket := newBucket(t, "v2skew")
	type target struct{ name, endpoint, ak, sk string }
	targets := []target{{"s3seal", p.Endpoint, p.AccessKey, p.SecretKey}}
	if store.Name == "minio" {
		// The reference: MinIO answers V2 header auth itself.
		targets = append(targets, target{"minio", store.Endpoint, store.AccessKey, store.SecretKey})
	}
	for _, tg := range targets {
		for _, c := range []struct {
			name       string
			method     string
			header     string
			off        time.Duration
			wantStatus int
			wantCode   string
		}{
			{"date-now", "GET", "Date", 0, 404, "NoSuchKey"},
			{"date-14min-ago", "GET", "Date", -14 * time.Minute, 404, "NoSuchKey"},
			{"date-16min-ago", "GET", "Date", -16 * time.Minute, 403, "RequestTimeTooSkewed"},
			{"date-16min-ahead", "GET", "Date", 16 * time.Minute, 403, "RequestTimeTooSkewed"},
			{"date-1day-ago", "GET", "Date", -24 * time.Hour, 403, "RequestTimeTooSkewed"},
			{"x-amz-date-16min-ago", "GET", "X-Amz-Date", -16 * time.Minute, 403, "RequestTimeTooSkewed"},
			{"x-amz-date-now", "GET", "X-Amz-Date", 0, 404, "NoSuchKey"},
			{"put-date-16min-ago", "PUT", "Date", -16 * time.Minute, 403, "RequestTimeTooSkewed"},
			{"put-x-amz-date-20min-ahead", "PUT", "X-Amz-Date", 20 * time.Minute, 403, "RequestTimeTooSkewed"},
			{"put-date-now", "PUT", "Date", 0, 200, ""},
		} {
			t.Run(tg.name+"/"+c.name, func(t *testing.T) {
				u, _ := url.Parse(tg.endpoint)
				path := "/" + bucket + "/missing-key"
				var reqBody io.Reader
				h := http.Header{}
				if c.method == "PUT" {
					path = "/" + bucket + "/" + tg.name + "-" + c.name
					reqBody = strings.NewReader("hello")
					h.Set("Content-Type", "text/plain")
				}
				h.Set(c.header, time.Now().Add(c.off).UTC().Format(http.TimeFormat))
				sts := sigv4.StringToSignV2(&sigv4.Request{Method: c.method, RawPath: path, Header: h}, "")
				req, _ := http.NewRequest(c.method, u.Scheme+"://"+u.Host+path, reqBody)
				for k, v := range h {
					req.Header[k] = v
				}
				req.Header.Set("Authorization", "AWS "+tg.ak+":"+sigv4.SignV2(tg.sk, []byte(sts)))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				var e struct{ Code, Message string }
				_ = xml.Unmarshal(body, &e)
				if resp.StatusCode != c.wantStatus || e.Code != c.wantCode {
					t.Errorf("%d %s (%s), want %d %s\n%s", resp.StatusCode, e.Code, e.Message, c.wantStatus, c.wantCode, string(first(body, 600)))
				}
				if c.wantCode == "RequestTimeTooSkewed" && !strings.Contains(string(body), "<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>") && tg.name == "s3seal" {
					t.Errorf("no MaxAllowedSkewMilliseconds in %s", body)
				}
			})
		}
	}
}
