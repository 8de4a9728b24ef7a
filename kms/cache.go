package kms

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Default cache bounds (see DefaultCacheConfig).
const (
	DefaultCacheMaxAge        = 5 * time.Minute
	DefaultCacheMaxUses       = 1000
	DefaultDecryptMaxEntries  = 1000
	DefaultDecryptMaxAge      = 5 * time.Minute
	defaultSharedCallDeadline = time.Minute
)

// CacheConfig bounds the data-key cache.
//
// A zero count disables that half of the cache (MaxUses 0: every
// GenerateDataKey goes to the KMS; DecryptMaxEntries 0: every Decrypt goes
// to the KMS); a zero duration means the default. The zero CacheConfig is
// therefore a pass-through; start from DefaultCacheConfig.
//
// Security trade-off. With the defaults one data key wraps the object keys
// of up to 1,000 objects (10,000 PUTs cost at most 10 GenerateDataKey
// calls) written within 5 minutes to one bucket. Because every object has
// its own random object key and the data key only seals those 32-byte keys
// (never bulk data), reuse does not weaken the AEAD: 1,000 random 96-bit
// nonces under one key are far below the 2^32 limit. What reuse does cost:
//   - blast radius: a data key leaked from proxy memory opens every object
//     it sealed (at most MaxUses objects / MaxAge / MaxBytes);
//   - revocation latency: the cache does not re-check key state. A key that
//     is disabled, scheduled for deletion or whose grant is revoked keeps
//     working from the cache for at most MaxAge (writes) and DecryptMaxAge
//     (reads), as with the AWS Encryption SDK's caching CMM and S3 Bucket
//     Keys. Call Flush to make a state change take effect at once.
//   - audit granularity: the KMS (and CloudTrail) sees one call per cached
//     key, not one per object.
type CacheConfig struct {
	// MaxAge is how long a generated data key is handed out again.
	MaxAge time.Duration
	// MaxUses is how many GenerateDataKey calls one generated key serves.
	// 0 disables data-key reuse.
	MaxUses int
	// MaxBytes, if > 0, retires a data key once callers have reported
	// (AccountBytes) that many bytes protected under it.
	MaxBytes int64
	// DecryptMaxEntries bounds the LRU of unwrapped keys. 0 disables it.
	DecryptMaxEntries int
	// DecryptMaxAge is how long an unwrapped key is served from the LRU.
	DecryptMaxAge time.Duration
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// DefaultCacheConfig returns the recommended bounds: 5 minutes, 1,000
// uses per data key, no byte limit, 1,000 unwrapped keys for 5 minutes.
func DefaultCacheConfig() CacheConfig {
	return CacheConfig{
		MaxAge:            DefaultCacheMaxAge,
		MaxUses:           DefaultCacheMaxUses,
		DecryptMaxEntries: DefaultDecryptMaxEntries,
		DecryptMaxAge:     DefaultDecryptMaxAge,
	}
}

// CacheStats are the cache's counters since it was created.
type CacheStats struct {
	GenerateHits   uint64 // GenerateDataKey served from the cache
	GenerateMisses uint64 // GenerateDataKey that waited for a KMS call
	DecryptHits    uint64
	DecryptMisses  uint64
	KMSCalls       uint64 // calls this cache made to the inner Client
	Evictions      uint64 // cached keys dropped (and zeroed) before or at expiry
	DataKeys       int    // data keys cached now
	DecryptEntries int    // unwrapped keys cached now
}

// Cache is a Client that reuses generated data keys and remembers unwrapped
// ones. It is safe for concurrent use. Every Plaintext it returns is a
// fresh copy owned by the caller; its own copies are zeroed when evicted.
//
// Concurrent misses for the same (key, context) — or the same wrapped key
// on Decrypt — cause one call to the inner Client (singleflight). That
// shared call runs detached from the first caller's cancellation, bounded
// by its deadline (or one minute), and every waiter still honours its own
// context. Encrypt, ReEncrypt and DescribeKey pass through.
type Cache struct {
	inner Client
	cfg   CacheConfig

	sf singleflight.Group

	mu       sync.Mutex
	gen      map[string]*genEntry // partition key -> current data key
	byWrap   map[string]*genEntry // wrapped blob -> entry, for AccountBytes
	dec      map[[32]byte]*list.Element
	lru      *list.List // of *decEntry, front = most recent
	evicted  atomic.Uint64
	genHits  atomic.Uint64
	genMiss  atomic.Uint64
	decHits  atomic.Uint64
	decMiss  atomic.Uint64
	kmsCalls atomic.Uint64
}

type genEntry struct {
	part    string
	dk      DataKey // owned by the cache
	created time.Time
	uses    int
	bytes   int64
	retired bool
}

type decEntry struct {
	key       [32]byte
	plaintext []byte
	created   time.Time
}

var (
	_ Wrapper          = (*Cache)(nil)
	_ AsymmetricClient = (*Cache)(nil)
)

// NewCache wraps inner with a data-key cache bounded by cfg.
func NewCache(inner Client, cfg CacheConfig) *Cache {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultCacheMaxAge
	}
	if cfg.DecryptMaxAge <= 0 {
		cfg.DecryptMaxAge = DefaultDecryptMaxAge
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cache{
		inner:  inner,
		cfg:    cfg,
		gen:    make(map[string]*genEntry),
		byWrap: make(map[string]*genEntry),
		dec:    make(map[[32]byte]*list.Element),
		lru:    list.New(),
	}
}

// Unwrap returns the wrapped Client.
func (c *Cache) Unwrap() Client { return c.inner }

// Stats returns the counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	nGen, nDec := len(c.gen), c.lru.Len()
	c.mu.Unlock()
	return CacheStats{
		GenerateHits:   c.genHits.Load(),
		GenerateMisses: c.genMiss.Load(),
		DecryptHits:    c.decHits.Load(),
		DecryptMisses:  c.decMiss.Load(),
		KMSCalls:       c.kmsCalls.Load(),
		Evictions:      c.evicted.Load(),
		DataKeys:       nGen,
		DecryptEntries: nDec,
	}
}

// Flush drops and zeroes every cached key, so that the next call of each
// kind goes to the KMS (use it after disabling a key or on shutdown).
func (c *Cache) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.gen {
		c.retireLocked(e)
	}
	for c.lru.Len() > 0 {
		c.removeDecLocked(c.lru.Back())
	}
}

// AccountBytes reports that n more bytes were protected under the data key
// whose wrapped form is wrapped. Once the total reaches MaxBytes the key is
// no longer handed out. Unknown keys are ignored.
func (c *Cache) AccountBytes(wrapped []byte, n int64) {
	if c.cfg.MaxBytes <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byWrap[string(wrapped)]; ok {
		e.bytes += n
		if e.bytes >= c.cfg.MaxBytes {
			c.retireLocked(e)
		}
	}
}

// GenerateDataKey hands out the cached data key for (keyID, encCtx) while it
// is within its bounds, and otherwise asks the inner Client for a new one.
func (c *Cache) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (*DataKey, error) {
	if c.cfg.MaxUses <= 0 {
		c.genMiss.Add(1)
		c.kmsCalls.Add(1)
		return c.inner.GenerateDataKey(ctx, keyID, encCtx)
	}
	part := partitionKey(keyID, encCtx)
	missed := false
	for round := 0; ; round++ {
		if round == 3 {
			// Concurrent callers keep using up fresh keys (or the clock
			// expires them at once): stop sharing.
			c.genMiss.Add(1)
			c.kmsCalls.Add(1)
			return c.inner.GenerateDataKey(ctx, keyID, encCtx)
		}
		if dk := c.takeGen(part); dk != nil {
			if missed {
				c.genMiss.Add(1)
			} else {
				c.genHits.Add(1)
			}
			return dk, nil
		}
		missed = true
		ch := c.sf.DoChan("g"+part, func() (any, error) {
			sctx, cancel := sharedContext(ctx)
			defer cancel()
			c.kmsCalls.Add(1)
			dk, err := c.inner.GenerateDataKey(sctx, keyID, encCtx)
			if err != nil {
				return nil, err
			}
			c.putGen(part, dk, encCtx)
			return nil, nil
		})
		select {
		case <-ctx.Done():
			c.genMiss.Add(1)
			return nil, ctx.Err()
		case r := <-ch:
			if r.Err != nil {
				c.genMiss.Add(1)
				return nil, r.Err
			}
		}
		// Loop: take a use of the entry just inserted. If concurrent
		// callers used it up first, the next round fetches another.
	}
}

// takeGen returns a copy of the partition's data key and counts a use, or
// nil if there is no live entry.
func (c *Cache) takeGen(part string) *DataKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.gen[part]
	if !ok {
		return nil
	}
	if c.cfg.Now().Sub(e.created) >= c.cfg.MaxAge || e.uses >= c.cfg.MaxUses ||
		(c.cfg.MaxBytes > 0 && e.bytes >= c.cfg.MaxBytes) {
		c.retireLocked(e)
		return nil
	}
	e.uses++
	dk := &DataKey{
		KeyID:      e.dk.KeyID,
		Plaintext:  bytes.Clone(e.dk.Plaintext),
		Ciphertext: bytes.Clone(e.dk.Ciphertext),
	}
	if e.uses >= c.cfg.MaxUses {
		c.retireLocked(e)
	}
	return dk
}

func (c *Cache) putGen(part string, dk *DataKey, encCtx map[string]string) {
	now := c.cfg.Now()
	e := &genEntry{
		part:    part,
		dk:      DataKey{KeyID: dk.KeyID, Plaintext: dk.Plaintext, Ciphertext: dk.Ciphertext},
		created: now,
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.gen[part]; ok {
		c.retireLocked(old)
	}
	c.gen[part] = e
	c.byWrap[string(dk.Ciphertext)] = e
	// Seed the decrypt cache: the first GETs of objects written with this
	// key need not call the KMS.
	if c.cfg.DecryptMaxEntries > 0 {
		c.putDecLocked(decryptKey(dk.KeyID, dk.Ciphertext, encCtx), bytes.Clone(dk.Plaintext), now)
	}
}

func (c *Cache) retireLocked(e *genEntry) {
	if e.retired {
		return
	}
	e.retired = true
	if c.gen[e.part] == e {
		delete(c.gen, e.part)
	}
	if c.byWrap[string(e.dk.Ciphertext)] == e {
		delete(c.byWrap, string(e.dk.Ciphertext))
	}
	Zero(e.dk.Plaintext)
	c.evicted.Add(1)
}

// Decrypt serves unwrapped keys from a bounded LRU keyed by (keyID, wrapped
// key, encryption context).
func (c *Cache) Decrypt(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error) {
	if c.cfg.DecryptMaxEntries <= 0 {
		c.decMiss.Add(1)
		c.kmsCalls.Add(1)
		return c.inner.Decrypt(ctx, keyID, wrapped, encCtx)
	}
	k := decryptKey(keyID, wrapped, encCtx)
	if pt := c.getDec(k); pt != nil {
		c.decHits.Add(1)
		return pt, nil
	}
	c.decMiss.Add(1)
	for round := 0; ; round++ {
		if round == 2 {
			// The LRU churns faster than waiters can read it: stop sharing.
			c.kmsCalls.Add(1)
			return c.inner.Decrypt(ctx, keyID, wrapped, encCtx)
		}
		ch := c.sf.DoChan("d"+string(k[:]), func() (any, error) {
			sctx, cancel := sharedContext(ctx)
			defer cancel()
			c.kmsCalls.Add(1)
			pt, err := c.inner.Decrypt(sctx, keyID, wrapped, encCtx)
			if err != nil {
				return nil, err
			}
			c.mu.Lock()
			c.putDecLocked(k, pt, c.cfg.Now())
			c.mu.Unlock()
			return nil, nil
		})
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case r := <-ch:
			if r.Err != nil {
				return nil, r.Err
			}
		}
		if pt := c.getDec(k); pt != nil {
			return pt, nil
		}
	}
}

func (c *Cache) getDec(k [32]byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.dec[k]
	if !ok {
		return nil
	}
	e := el.Value.(*decEntry)
	if c.cfg.Now().Sub(e.created) >= c.cfg.DecryptMaxAge {
		c.removeDecLocked(el)
		return nil
	}
	c.lru.MoveToFront(el)
	return bytes.Clone(e.plaintext)
}

func (c *Cache) putDecLocked(k [32]byte, pt []byte, now time.Time) {
	if el, ok := c.dec[k]; ok {
		c.removeDecLocked(el)
	}
	c.dec[k] = c.lru.PushFront(&decEntry{key: k, plaintext: pt, created: now})
	for c.lru.Len() > c.cfg.DecryptMaxEntries {
		c.removeDecLocked(c.lru.Back())
	}
}

func (c *Cache) removeDecLocked(el *list.Element) {
	e := c.lru.Remove(el).(*decEntry)
	delete(c.dec, e.key)
	Zero(e.plaintext)
	c.evicted.Add(1)
}

// Encrypt passes through.
func (c *Cache) Encrypt(ctx context.Context, keyID string, plaintext []byte, encCtx map[string]string) ([]byte, error) {
	c.kmsCalls.Add(1)
	return c.inner.Encrypt(ctx, keyID, plaintext, encCtx)
}

// ReEncrypt passes through.
func (c *Cache) ReEncrypt(ctx context.Context, srcKeyID string, wrapped []byte, srcCtx map[string]string, dstKeyID string, dstCtx map[string]string) ([]byte, string, error) {
	c.kmsCalls.Add(1)
	return c.inner.ReEncrypt(ctx, srcKeyID, wrapped, srcCtx, dstKeyID, dstCtx)
}

// DescribeKey passes through (it is how readiness probes reach the KMS).
func (c *Cache) DescribeKey(ctx context.Context, keyID string) (*KeyMetadata, error) {
	c.kmsCalls.Add(1)
	return c.inner.DescribeKey(ctx, keyID)
}

// sharedContext detaches a singleflight call from its first caller's
// cancellation (other waiters depend on it) but keeps that caller's values
// and deadline, or a minute if it has none.
func sharedContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Now().Add(defaultSharedCallDeadline)
	}
	return context.WithDeadline(context.WithoutCancel(ctx), d)
}

// canonicalContext serializes an encryption context unambiguously: the
// pairs sorted by key, each string length-prefixed.
func canonicalContext(encCtx map[string]string) []byte {
	keys := make([]string, 0, len(encCtx))
	for k := range encCtx {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		v := encCtx[k]
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

func partitionKey(keyID string, encCtx map[string]string) string {
	b := binary.AppendUvarint(nil, uint64(len(keyID)))
	b = append(b, keyID...)
	return string(append(b, canonicalContext(encCtx)...))
}

// decryptKey hashes (keyID, wrapped, context) into the LRU's map key.
func decryptKey(keyID string, wrapped []byte, encCtx map[string]string) [32]byte {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(keyID)))])
	h.Write([]byte(keyID))
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(wrapped)))])
	h.Write(wrapped)
	h.Write(canonicalContext(encCtx))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// GetPublicKey passes through (an Asymmetric below keeps the keys it
// wraps with).
func (c *Cache) GetPublicKey(ctx context.Context, keyID string) (*PublicKey, error) {
	a, err := asymOf(c.inner)
	if err != nil {
		return nil, err
	}
	c.kmsCalls.Add(1)
	return a.GetPublicKey(ctx, keyID)
}

// DecryptAsymmetric passes through, uncached: callers wanting the cache
// call Decrypt on a Cache over an Asymmetric.
func (c *Cache) DecryptAsymmetric(ctx context.Context, keyID, alg string, ct []byte) ([]byte, error) {
	a, err := asymOf(c.inner)
	if err != nil {
		return nil, err
	}
	c.kmsCalls.Add(1)
	return a.DecryptAsymmetric(ctx, keyID, alg, ct)
}
