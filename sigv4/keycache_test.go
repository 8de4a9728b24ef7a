package sigv4

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestKeyCache(t *testing.T) {
	var c keyCache
	sc := scope{"20261123", "us-east-1", "s3"}
	k1 := c.get("AK", "secret-1", sc)
	if k1 != deriveKey("secret-1", sc) {
		t.Fatal("wrong key")
	}
	// A rotated secret is never served the old key.
	if k2 := c.get("AK", "secret-2", sc); k2 == k1 || k2 != deriveKey("secret-2", sc) {
		t.Fatal("stale key after secret change")
	}
	// Bounded: filling past the limit starts over.
	for i := range keyCacheMax + 10 {
		c.get("AK"+strconv.Itoa(i), "s", sc)
	}
	if n := len(c.m); n > keyCacheMax {
		t.Fatalf("cache holds %d keys", n)
	}
}

func TestVerifyConcurrent(t *testing.T) {
	f := newFixture(t)
	f.v.Region = ""
	var reqs []*Request
	for i := range 20 {
		s := &Signer{AccessKey: f.ak, SecretKey: f.sk, Region: "region-" + strconv.Itoa(i%5)}
		r := baseRequest()
		c := *r
		c.Header = r.Header.Clone()
		for k, v := range s.Sign(r, UnsignedPayload, t0.Add(time.Duration(i)*time.Minute)) {
			c.Header[k] = v
		}
		reqs = append(reqs, &c)
	}
	f.v.MaxSkew = time.Hour
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				r := reqs[(g+i)%len(reqs)]
				a, err := f.v.Verify(r)
				if err != nil {
					t.Error(err)
					return
				}
				if a.Region != "region-"+strconv.Itoa(((g+i)%len(reqs))%5) {
					t.Errorf("region %s", a.Region)
					return
				}
			}
		}()
	}
	wg.Wait()
}
