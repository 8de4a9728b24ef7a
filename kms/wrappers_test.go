package kms_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3seal/s3seal/kms"
)

// fakeKMS is an in-memory Client that counts calls. Wrapped keys are
// random handles; the context is checked on Decrypt.
type fakeKMS struct {
	mu       sync.Mutex
	keys     map[string]fakeEntry
	gen, dec atomic.Int64
	delay    time.Duration
	// fail, if set, is consulted before each call.
	fail func() error
}

type fakeEntry struct {
	pt     []byte
	keyID  string
	encCtx string
}

func newFake() *fakeKMS { return &fakeKMS{keys: map[string]fakeEntry{}} }

func ctxString(m map[string]string) string { b, _ := json.Marshal(m); return string(b) }

func (f *fakeKMS) before() error {
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	if f.fail != nil {
		return f.fail()
	}
	return nil
}

func (f *fakeKMS) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (*kms.DataKey, error) {
	f.gen.Add(1)
	if err := f.before(); err != nil {
		return nil, err
	}
	if keyID == "disabled" {
		return nil, &kms.Error{Code: kms.CodeDisabled, Message: "disabled"}
	}
	pt := make([]byte, 32)
	rand.Read(pt)
	ct := make([]byte, 16)
	rand.Read(ct)
	f.mu.Lock()
	f.keys[string(ct)] = fakeEntry{pt: bytes.Clone(pt), keyID: "id-" + keyID, encCtx: ctxString(encCtx)}
	f.mu.Unlock()
	return &kms.DataKey{KeyID: "id-" + keyID, Plaintext: pt, Ciphertext: ct}, nil
}

func (f *fakeKMS) Decrypt(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error) {
	f.dec.Add(1)
	if err := f.before(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	e, ok := f.keys[string(wrapped)]
	f.mu.Unlock()
	if !ok || e.encCtx != ctxString(encCtx) || (keyID != "" && keyID != e.keyID) {
		return nil, &kms.Error{Code: kms.CodeInvalidCiphertext, Message: "bad"}
	}
	return bytes.Clone(e.pt), nil
}

func (f *fakeKMS) Encrypt(ctx context.Context, keyID string, plaintext []byte, encCtx map[string]string) ([]byte, error) {
	return nil, errors.New("not implemented")
}

func (f *fakeKMS) ReEncrypt(ctx context.Context, srcKeyID string, wrapped []byte, srcCtx map[string]string, dstKeyID string, dstCtx map[string]string) ([]byte, string, error) {
	return nil, "", errors.New("not implemented")
}

func (f *fakeKMS) DescribeKey(ctx context.Context, keyID string) (*kms.KeyMetadata, error) {
	if err := f.before(); err != nil {
		return nil, err
	}
	return &kms.KeyMetadata{KeyID: "id-" + keyID, KeyState: kms.KeyEnabled}, nil
}

var _ kms.Client = (*fakeKMS)(nil)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestCacheDefaults10000Puts(t *testing.T) {
	f := newFake()
	c := kms.NewCache(f, kms.DefaultCacheConfig())
	ctx := context.Background()
	seen := map[string]bool{}
	for i := range 10000 {
		dk, err := c.GenerateDataKey(ctx, "k", kms.BucketContext("b"))
		if err != nil {
			t.Fatal(i, err)
		}
		seen[string(dk.Ciphertext)] = true
	}
	if n := f.gen.Load(); n > 10 || n < 1 {
		t.Fatalf("10,000 GenerateDataKey made %d inner calls, want 1..10", n)
	}
	if len(seen) != int(f.gen.Load()) {
		t.Fatalf("%d distinct data keys for %d inner calls", len(seen), f.gen.Load())
	}
	st := c.Stats()
	if st.GenerateHits+st.GenerateMisses != 10000 || st.KMSCalls != uint64(f.gen.Load()) {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("10,000 PUTs -> %d GenerateDataKey calls; stats %+v", f.gen.Load(), st)
}

func TestCachePartitions(t *testing.T) {
	f := newFake()
	c := kms.NewCache(f, kms.DefaultCacheConfig())
	ctx := context.Background()
	a1, _ := c.GenerateDataKey(ctx, "k", kms.BucketContext("a"))
	b1, _ := c.GenerateDataKey(ctx, "k", kms.BucketContext("b"))
	a2, _ := c.GenerateDataKey(ctx, "k", kms.BucketContext("a"))
	o1, _ := c.GenerateDataKey(ctx, "other", kms.BucketContext("a"))
	if !bytes.Equal(a1.Ciphertext, a2.Ciphertext) {
		t.Fatal("same key and context should reuse the data key")
	}
	if bytes.Equal(a1.Ciphertext, b1.Ciphertext) || bytes.Equal(a1.Ciphertext, o1.Ciphertext) {
		t.Fatal("different context or key must not share a data key")
	}
	// Ambiguity check: {"a":"b,c"} vs {"a":"b","c":...} style collisions.
	x, _ := c.GenerateDataKey(ctx, "k", map[string]string{"a": "1\x00b"})
	y, _ := c.GenerateDataKey(ctx, "k", map[string]string{"a": "1", "b": ""})
	if bytes.Equal(x.Ciphertext, y.Ciphertext) {
		t.Fatal("distinct contexts collided")
	}
	if f.gen.Load() != 5 {
		t.Fatalf("inner calls %d, want 5", f.gen.Load())
	}
}

func TestCacheReturnsCopies(t *testing.T) {
	f := newFake()
	c := kms.NewCache(f, kms.DefaultCacheConfig())
	ctx := context.Background()
	d1, _ := c.GenerateDataKey(ctx, "k", nil)
	want := bytes.Clone(d1.Plaintext)
	kms.Zero(d1.Plaintext)
	d1.Ciphertext[0] ^= 0xff
	d2, _ := c.GenerateDataKey(ctx, "k", nil)
	if !bytes.Equal(d2.Plaintext, want) {
		t.Fatal("zeroing a returned plaintext changed the cached key")
	}
	if bytes.Equal(d2.Ciphertext, d1.Ciphertext) {
		t.Fatal("ciphertext slice shared with the caller")
	}
	p1, err := c.Decrypt(ctx, d2.KeyID, d2.Ciphertext, nil)
	if err != nil || !bytes.Equal(p1, want) {
		t.Fatal("decrypt", err)
	}
	kms.Zero(p1)
	p2, err := c.Decrypt(ctx, d2.KeyID, d2.Ciphertext, nil)
	if err != nil || !bytes.Equal(p2, want) {
		t.Fatal("zeroing a decrypted plaintext changed the cached key", err)
	}
	if f.dec.Load() != 0 {
		t.Fatalf("decrypt of a key the cache generated went to the KMS %d times", f.dec.Load())
	}
}

func TestCacheMaxAgeAndUses(t *testing.T) {
	f := newFake()
	clk := &clock{t: time.Unix(1e9, 0)}
	c := kms.NewCache(f, kms.CacheConfig{MaxAge: time.Minute, MaxUses: 3, Now: clk.Now})
	ctx := context.Background()
	for range 7 {
		if _, err := c.GenerateDataKey(ctx, "k", nil); err != nil {
			t.Fatal(err)
		}
	}
	if f.gen.Load() != 3 { // 3+3+1
		t.Fatalf("MaxUses 3: 7 calls made %d inner calls, want 3", f.gen.Load())
	}
	clk.Add(time.Minute)
	c.GenerateDataKey(ctx, "k", nil)
	if f.gen.Load() != 4 {
		t.Fatalf("after MaxAge: %d inner calls, want 4", f.gen.Load())
	}
	if c.Stats().Evictions < 3 {
		t.Fatalf("evictions %d", c.Stats().Evictions)
	}
}

func TestCacheMaxBytes(t *testing.T) {
	f := newFake()
	cfg := kms.DefaultCacheConfig()
	cfg.MaxBytes = 100
	c := kms.NewCache(f, cfg)
	ctx := context.Background()
	d1, _ := c.GenerateDataKey(ctx, "k", nil)
	c.AccountBytes(d1.Ciphertext, 60)
	d2, _ := c.GenerateDataKey(ctx, "k", nil)
	if !bytes.Equal(d1.Ciphertext, d2.Ciphertext) {
		t.Fatal("under MaxBytes: want reuse")
	}
	c.AccountBytes(d2.Ciphertext, 40)
	d3, _ := c.GenerateDataKey(ctx, "k", nil)
	if bytes.Equal(d1.Ciphertext, d3.Ciphertext) {
		t.Fatal("at MaxBytes: want a new key")
	}
}

func TestCacheConcurrentCold(t *testing.T) {
	f := newFake()
	f.delay = 50 * time.Millisecond
	c := kms.NewCache(f, kms.DefaultCacheConfig())
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	start := make(chan struct{})
	for range 1000 {
		wg.Go(func() {
			<-start
			_, err := c.GenerateDataKey(ctx, "k", kms.BucketContext("b"))
			if err != nil {
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := f.gen.Load(); n != 1 {
		t.Fatalf("1,000 concurrent cold callers made %d inner calls, want 1", n)
	}
}

func TestCacheConcurrentColdDecrypt(t *testing.T) {
	f := newFake()
	dk, _ := f.GenerateDataKey(context.Background(), "k", nil)
	f.delay = 50 * time.Millisecond
	c := kms.NewCache(f, kms.DefaultCacheConfig())
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range 200 {
		wg.Go(func() {
			pt, err := c.Decrypt(context.Background(), dk.KeyID, dk.Ciphertext, nil)
			if err != nil || !bytes.Equal(pt, dk.Plaintext) {
				bad.Add(1)
			}
		})
	}
	wg.Wait()
	if bad.Load() != 0 || f.dec.Load() != 1 {
		t.Fatalf("bad %d, inner decrypts %d (want 0, 1)", bad.Load(), f.dec.Load())
	}
}

func TestCacheDisabledPassThrough(t *testing.T) {
	f := newFake()
	c := kms.NewCache(f, kms.CacheConfig{})
	ctx := context.Background()
	for range 20 {
		dk, err := c.GenerateDataKey(ctx, "k", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Decrypt(ctx, dk.KeyID, dk.Ciphertext, nil); err != nil {
			t.Fatal(err)
		}
	}
	if f.gen.Load() != 20 || f.dec.Load() != 20 {
		t.Fatalf("disabled cache: %d generate, %d decrypt inner calls, want 20, 20", f.gen.Load(), f.dec.Load())
	}
}

func TestCacheDecryptLRU(t *testing.T) {
	f := newFake()
	clk := &clock{t: time.Unix(1e9, 0)}
	src := kms.NewCache(f, kms.CacheConfig{}) // to mint keys without seeding
	var dks []*kms.DataKey
	for i := range 5 {
		dk, _ := src.GenerateDataKey(context.Background(), "k", kms.BucketContext(fmt.Sprint(i)))
		dks = append(dks, dk)
	}
	c := kms.NewCache(f, kms.CacheConfig{DecryptMaxEntries: 2, DecryptMaxAge: time.Minute, Now: clk.Now})
	ctx := context.Background()
	dec := func(i int) {
		t.Helper()
		pt, err := c.Decrypt(ctx, dks[i].KeyID, dks[i].Ciphertext, kms.BucketContext(fmt.Sprint(i)))
		if err != nil || !bytes.Equal(pt, dks[i].Plaintext) {
			t.Fatal(i, err)
		}
	}
	base := f.dec.Load()
	dec(0)
	dec(1)
	dec(0) // hit
	dec(2) // evicts 1 (LRU)
	dec(0) // hit
	dec(1) // miss
	if got := f.dec.Load() - base; got != 4 {
		t.Fatalf("inner decrypts %d, want 4", got)
	}
	clk.Add(time.Minute)
	dec(1) // expired
	if got := f.dec.Load() - base; got != 5 {
		t.Fatalf("after DecryptMaxAge: inner decrypts %d, want 5", got)
	}
	// Wrong context is never served from the cache.
	if _, err := c.Decrypt(ctx, dks[1].KeyID, dks[1].Ciphertext, kms.BucketContext("x")); kms.ErrorCode(err) != kms.CodeInvalidCiphertext {
		t.Fatalf("wrong context: %v", err)
	}
	if st := c.Stats(); st.DecryptEntries > 2 {
		t.Fatalf("LRU holds %d entries, bound 2", st.DecryptEntries)
	}
}

func TestCacheErrorsNotCached(t *testing.T) {
	f := newFake()
	c := kms.NewCache(f, kms.DefaultCacheConfig())
	for range 3 {
		if _, err := c.GenerateDataKey(context.Background(), "disabled", nil); kms.ErrorCode(err) != kms.CodeDisabled {
			t.Fatal(err)
		}
	}
	if f.gen.Load() != 3 {
		t.Fatalf("errors cached: %d calls", f.gen.Load())
	}
}

func TestCacheHonoursCallerContext(t *testing.T) {
	f := newFake()
	f.delay = 200 * time.Millisecond
	c := kms.NewCache(f, kms.DefaultCacheConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.GenerateDataKey(ctx, "k", nil)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 150*time.Millisecond {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
}

// throttler fails about half its calls with ThrottlingException.
type throttler struct {
	mu  sync.Mutex
	rnd *mrand.Rand
}

func (th *throttler) fail() error {
	th.mu.Lock()
	defer th.mu.Unlock()
	if th.rnd.IntN(2) == 0 {
		return &kms.Error{Code: kms.CodeThrottling, Message: "slow down"}
	}
	return nil
}

func TestRetryThrottling(t *testing.T) {
	f := newFake()
	th := &throttler{rnd: mrand.New(mrand.NewPCG(1, 2))}
	f.fail = th.fail
	r := kms.NewRetry(f, kms.RetryConfig{MaxElapsed: 10 * time.Second, BaseDelay: time.Microsecond, MaxDelay: time.Millisecond})
	ctx := context.Background()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 8 {
		wg.Go(func() {
			for range 100 {
				dk, err := r.GenerateDataKey(ctx, "k", nil)
				if err != nil {
					failed.Add(1)
					continue
				}
				if _, err := r.Decrypt(ctx, dk.KeyID, dk.Ciphertext, nil); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	st := r.Stats()
	if failed.Load() != 0 {
		t.Fatalf("%d calls failed; stats %+v", failed.Load(), st)
	}
	if st.Retries < 400 || st.Calls != 1600 {
		t.Fatalf("stats %+v: expected ~1600 retries for 1600 calls at 50%% throttling", st)
	}
	t.Logf("retry stats %+v", st)
}

func TestRetryCacheThrottling(t *testing.T) {
	f := newFake()
	th := &throttler{rnd: mrand.New(mrand.NewPCG(3, 4))}
	f.fail = th.fail
	c := kms.NewCache(kms.NewRetry(f, kms.RetryConfig{BaseDelay: time.Microsecond, MaxDelay: time.Millisecond}),
		kms.CacheConfig{MaxUses: 10})
	for i := range 500 {
		if _, err := c.GenerateDataKey(context.Background(), "k", nil); err != nil {
			t.Fatal(i, err)
		}
	}
}

func TestRetryNonRetryableAndDeadline(t *testing.T) {
	f := newFake()
	r := kms.NewRetry(f, kms.RetryConfig{BaseDelay: time.Millisecond})
	if _, err := r.GenerateDataKey(context.Background(), "disabled", nil); kms.ErrorCode(err) != kms.CodeDisabled || f.gen.Load() != 1 {
		t.Fatalf("non-retryable: %v after %d calls", err, f.gen.Load())
	}
	f.fail = func() error { return &kms.Error{Code: kms.CodeUnavailable, Message: "down"} }
	r = kms.NewRetry(f, kms.RetryConfig{MaxElapsed: 200 * time.Millisecond, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond})
	start := time.Now()
	_, err := r.DescribeKey(context.Background(), "k")
	el := time.Since(start)
	if kms.ErrorCode(err) != kms.CodeUnavailable || el > 400*time.Millisecond || r.Stats().GaveUp != 1 || r.Stats().Retries < 5 {
		t.Fatalf("err %v after %v, stats %+v", err, el, r.Stats())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	r = kms.NewRetry(f, kms.RetryConfig{MaxElapsed: time.Minute, BaseDelay: 5 * time.Millisecond})
	start = time.Now()
	_, err = r.DescribeKey(ctx, "k")
	if err == nil || time.Since(start) > 200*time.Millisecond {
		t.Fatalf("ctx deadline not honoured: %v after %v", err, time.Since(start))
	}
}

func TestAudit(t *testing.T) {
	f := newFake()
	var buf bytes.Buffer
	a := kms.NewAudit(f, &buf, nil)
	ctx := kms.WithCaller(context.Background(), "AKIDEXAMPLE", "photos", "cat.jpg")
	dk, err := a.GenerateDataKey(ctx, "k", kms.BucketContext("photos"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Decrypt(ctx, dk.KeyID, dk.Ciphertext, kms.BucketContext("other")); err == nil {
		t.Fatal("want error")
	}
	a.DescribeKey(context.Background(), "k")
	out := buf.String()
	for _, secret := range [][]byte{dk.Plaintext, dk.Ciphertext} {
		for _, enc := range []string{fmt.Sprintf("%x", secret), b64(secret), string(secret)} {
			if strings.Contains(out, enc) {
				t.Fatal("audit log contains key material or a wrapped key")
			}
		}
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	var evs []kms.AuditEvent
	for sc.Scan() {
		var ev kms.AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3:\n%s", len(evs), out)
	}
	e := evs[0]
	if e.EventName != "GenerateDataKey" || e.EventSource != "kms.amazonaws.com" || e.UserIdentity.PrincipalID != "AKIDEXAMPLE" ||
		e.RequestParameters.KeyID != "k" || e.RequestParameters.EncryptionContext["s3seal:bucket"] != "photos" ||
		e.ErrorCode != "" || len(e.Resources) != 1 || e.Resources[0].ARN != "id-k" || e.AdditionalEventData["object"] != "cat.jpg" {
		t.Fatalf("event %+v", e)
	}
	if _, err := time.Parse(time.RFC3339, e.EventTime); err != nil {
		t.Fatal(err)
	}
	if evs[1].EventName != "Decrypt" || evs[1].ErrorCode != kms.CodeInvalidCiphertext {
		t.Fatalf("event %+v", evs[1])
	}
	if evs[2].UserIdentity.PrincipalID != "" || !evs[2].ReadOnly {
		t.Fatalf("event %+v", evs[2])
	}
	if a.Stats().Events != 3 {
		t.Fatal(a.Stats())
	}
	var w kms.Wrapper = a
	if w.Unwrap() != kms.Client(f) {
		t.Fatal("Unwrap")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestAuditWriteErrorCounted(t *testing.T) {
	a := kms.NewAudit(newFake(), failWriter{}, func(context.Context) string { return "me" })
	if _, err := a.GenerateDataKey(context.Background(), "k", nil); err != nil {
		t.Fatal(err)
	}
	if a.Stats().WriteErrors != 1 {
		t.Fatal(a.Stats())
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestCacheStress(t *testing.T) {
	f := newFake()
	cfg := kms.DefaultCacheConfig()
	cfg.MaxUses, cfg.DecryptMaxEntries = 7, 5
	c := kms.NewCache(f, cfg)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				ec := kms.BucketContext(fmt.Sprint((g + i) % 3))
				dk, err := c.GenerateDataKey(ctx, "k", ec)
				if err != nil {
					t.Error(err)
					return
				}
				want := bytes.Clone(dk.Plaintext)
				pt, err := c.Decrypt(ctx, dk.KeyID, dk.Ciphertext, ec)
				if err != nil || !bytes.Equal(pt, want) {
					t.Errorf("decrypt: %v", err)
					return
				}
				kms.Zero(dk.Plaintext)
				kms.Zero(pt)
				if i%50 == 0 {
					c.Flush()
				}
			}
		})
	}
	wg.Wait()
	if st := c.Stats(); st.DecryptEntries > 5 {
		t.Fatalf("stats %+v", st)
	}
}

func BenchmarkCacheGenerateHit(b *testing.B) {
	c := kms.NewCache(newFake(), kms.CacheConfig{MaxUses: 1 << 62})
	ctx := context.Background()
	ec := kms.BucketContext("bench")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			dk, err := c.GenerateDataKey(ctx, "k", ec)
			if err != nil {
				b.Fatal(err)
			}
			kms.Zero(dk.Plaintext)
		}
	})
}

func BenchmarkCacheDecryptHit(b *testing.B) {
	f := newFake()
	dk, _ := f.GenerateDataKey(context.Background(), "k", nil)
	c := kms.NewCache(f, kms.DefaultCacheConfig())
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			pt, err := c.Decrypt(ctx, dk.KeyID, dk.Ciphertext, nil)
			if err != nil {
				b.Fatal(err)
			}
			kms.Zero(pt)
		}
	})
}
