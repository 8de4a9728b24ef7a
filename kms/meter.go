package kms

import (
	"context"
	"sync/atomic"
)

// MeterStats counts the requests a KMS received, by call: what AWS KMS
// bills (a price per 10,000 requests), every attempt of a retried call
// included.
type MeterStats struct {
	GenerateDataKey, Decrypt, Encrypt, ReEncrypt, DescribeKey uint64
}

// Total is the sum over the calls.
func (s MeterStats) Total() uint64 {
	return s.GenerateDataKey + s.Decrypt + s.Encrypt + s.ReEncrypt + s.DescribeKey
}

// Meter is a Client that counts the calls made to the Client below it,
// successful or not. Stacked right above the backend (under Retry), it
// counts every request the KMS sees: the figure the cost report needs.
type Meter struct {
	inner                                           Client
	generate, decrypt, encrypt, reencrypt, describe atomic.Uint64
}

var _ Wrapper = (*Meter)(nil)

// NewMeter wraps inner with request counters.
func NewMeter(inner Client) *Meter { return &Meter{inner: inner} }

// Unwrap returns the Client below.
func (m *Meter) Unwrap() Client { return m.inner }

// Stats returns the counts so far.
func (m *Meter) Stats() MeterStats {
	return MeterStats{GenerateDataKey: m.generate.Load(), Decrypt: m.decrypt.Load(), Encrypt: m.encrypt.Load(),
		ReEncrypt: m.reencrypt.Load(), DescribeKey: m.describe.Load()}
}

// GenerateDataKey implements Client.
func (m *Meter) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (*DataKey, error) {
	m.generate.Add(1)
	return m.inner.GenerateDataKey(ctx, keyID, encCtx)
}

// Decrypt implements Client.
func (m *Meter) Decrypt(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error) {
	m.decrypt.Add(1)
	return m.inner.Decrypt(ctx, keyID, wrapped, encCtx)
}

// Encrypt implements Client.
func (m *Meter) Encrypt(ctx context.Context, keyID string, plaintext []byte, encCtx map[string]string) ([]byte, error) {
	m.encrypt.Add(1)
	return m.inner.Encrypt(ctx, keyID, plaintext, encCtx)
}

// ReEncrypt implements Client.
func (m *Meter) ReEncrypt(ctx context.Context, srcKeyID string, wrapped []byte, srcCtx map[string]string, dstKeyID string, dstCtx map[string]string) ([]byte, string, error) {
	m.reencrypt.Add(1)
	return m.inner.ReEncrypt(ctx, srcKeyID, wrapped, srcCtx, dstKeyID, dstCtx)
}

// DescribeKey implements Client.
func (m *Meter) DescribeKey(ctx context.Context, keyID string) (*KeyMetadata, error) {
	m.describe.Add(1)
	return m.inner.DescribeKey(ctx, keyID)
}
