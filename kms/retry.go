package kms

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Default retry bounds (see RetryConfig).
const (
	DefaultRetryMaxElapsed = 20 * time.Second
	DefaultRetryBaseDelay  = 25 * time.Millisecond
	DefaultRetryMaxDelay   = 2 * time.Second
)

// RetryConfig bounds retries. Zero fields take the defaults.
type RetryConfig struct {
	// MaxElapsed is the total time one call may spend, attempts and waits
	// included; no retry starts after it (default 20s). The caller's
	// context deadline, if earlier, wins.
	MaxElapsed time.Duration
	// BaseDelay is the backoff before the first retry's jitter (25ms).
	BaseDelay time.Duration
	// MaxDelay caps the backoff (2s).
	MaxDelay time.Duration
	// Rand returns a float in [0, 1) for the full jitter; math/rand/v2 if
	// nil. It must be safe for concurrent use.
	Rand func() float64
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// RetryStats are the retry wrapper's counters.
type RetryStats struct {
	Calls   uint64 // calls made by callers
	Retries uint64 // extra attempts made
	GaveUp  uint64 // calls that failed with a retryable error at the end
}

// Retry is a Client that retries transient failures (Retryable errors:
// throttling, KMS 5xx, timeouts) with exponential backoff and full jitter:
// before attempt n+1 it sleeps rand·min(MaxDelay, BaseDelay·2^n). It gives
// up with the last error when the next sleep would pass MaxElapsed or the
// context's deadline, and returns at once when the context ends.
// Non-retryable errors (disabled key, bad ciphertext, ...) return at once.
type Retry struct {
	inner Client
	cfg   RetryConfig

	calls, retries, gaveUp atomic.Uint64
}

var _ Wrapper = (*Retry)(nil)

// NewRetry wraps inner with retries bounded by cfg.
func NewRetry(inner Client, cfg RetryConfig) *Retry {
	if cfg.MaxElapsed <= 0 {
		cfg.MaxElapsed = DefaultRetryMaxElapsed
	}
	if cfg.BaseDelay <= 0 {
		cfg.BaseDelay = DefaultRetryBaseDelay
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = DefaultRetryMaxDelay
	}
	if cfg.MaxDelay < cfg.BaseDelay {
		cfg.MaxDelay = cfg.BaseDelay
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Retry{inner: inner, cfg: cfg}
}

// Unwrap returns the wrapped Client.
func (r *Retry) Unwrap() Client { return r.inner }

// Stats returns the counters.
func (r *Retry) Stats() RetryStats {
	return RetryStats{Calls: r.calls.Load(), Retries: r.retries.Load(), GaveUp: r.gaveUp.Load()}
}

func (r *Retry) do(ctx context.Context, op func(context.Context) error) error {
	r.calls.Add(1)
	start := r.cfg.Now()
	deadline := start.Add(r.cfg.MaxElapsed)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	backoff := r.cfg.BaseDelay
	for {
		err := op(ctx)
		if err == nil || !Retryable(err) {
			return err
		}
		if ctx.Err() != nil {
			return err
		}
		sleep := time.Duration(r.cfg.Rand() * float64(backoff))
		if r.cfg.Now().Add(sleep).After(deadline) {
			r.gaveUp.Add(1)
			return err
		}
		if sleep > 0 {
			t := time.NewTimer(sleep)
			select {
			case <-ctx.Done():
				t.Stop()
				return err
			case <-t.C:
			}
		}
		backoff = min(backoff*2, r.cfg.MaxDelay)
		r.retries.Add(1)
	}
}

// GenerateDataKey retries inner.GenerateDataKey.
func (r *Retry) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (dk *DataKey, err error) {
	err = r.do(ctx, func(ctx context.Context) (e error) {
		dk, e = r.inner.GenerateDataKey(ctx, keyID, encCtx)
		return e
	})
	return dk, err
}

// Decrypt retries inner.Decrypt.
func (r *Retry) Decrypt(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) (pt []byte, err error) {
	err = r.do(ctx, func(ctx context.Context) (e error) {
		pt, e = r.inner.Decrypt(ctx, keyID, wrapped, encCtx)
		return e
	})
	return pt, err
}

// Encrypt retries inner.Encrypt.
func (r *Retry) Encrypt(ctx context.Context, keyID string, plaintext []byte, encCtx map[string]string) (ct []byte, err error) {
	err = r.do(ctx, func(ctx context.Context) (e error) {
		ct, e = r.inner.Encrypt(ctx, keyID, plaintext, encCtx)
		return e
	})
	return ct, err
}

// ReEncrypt retries inner.ReEncrypt.
func (r *Retry) ReEncrypt(ctx context.Context, srcKeyID string, wrapped []byte, srcCtx map[string]string, dstKeyID string, dstCtx map[string]string) (ct []byte, dst string, err error) {
	err = r.do(ctx, func(ctx context.Context) (e error) {
		ct, dst, e = r.inner.ReEncrypt(ctx, srcKeyID, wrapped, srcCtx, dstKeyID, dstCtx)
		return e
	})
	return ct, dst, err
}

// DescribeKey retries inner.DescribeKey.
func (r *Retry) DescribeKey(ctx context.Context, keyID string) (md *KeyMetadata, err error) {
	err = r.do(ctx, func(ctx context.Context) (e error) {
		md, e = r.inner.DescribeKey(ctx, keyID)
		return e
	})
	return md, err
}

// GetPublicKey retries the inner GetPublicKey.
func (r *Retry) GetPublicKey(ctx context.Context, keyID string) (pk *PublicKey, err error) {
	a, err := asymOf(r.inner)
	if err != nil {
		return nil, err
	}
	err = r.do(ctx, func(ctx context.Context) (e error) {
		pk, e = a.GetPublicKey(ctx, keyID)
		return e
	})
	return pk, err
}

// DecryptAsymmetric retries the inner DecryptAsymmetric.
func (r *Retry) DecryptAsymmetric(ctx context.Context, keyID, alg string, ct []byte) (pt []byte, err error) {
	a, err := asymOf(r.inner)
	if err != nil {
		return nil, err
	}
	err = r.do(ctx, func(ctx context.Context) (e error) {
		pt, e = a.DecryptAsymmetric(ctx, keyID, alg, ct)
		return e
	})
	return pt, err
}
