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
	// GetPublicKey and AsymmetricDecrypt (a Decrypt with an RSA key's
	// private half) are AWS's "asymmetric requests", priced apart.
	GetPublicKey, AsymmetricDecrypt uint64
}

// Total is the sum over the calls.
func (s MeterStats) Total() uint64 {
	return s.GenerateDataKey + s.Decrypt + s.Encrypt + s.ReEncrypt + s.DescribeKey + s.GetPublicKey + s.AsymmetricDecrypt
}

// Meter is a Client that counts the calls made to the Client below it,
// successful or not. Stacked right above the backend (under Retry), it
// counts every request the KMS sees: the figure the cost report needs.
type Meter struct {
	inner                                           Client
	generate, decrypt, encrypt, reencrypt, describe atomic.Uint64
	getPublic, asymDecrypt                          atomic.Uint64
}

var (
	_ Wrapper          = (*Meter)(nil)
	_ AsymmetricClient = (*Meter)(nil)
)

// NewMeter wraps inner with request counters.
func NewMeter(inner Client) *Meter { return &Meter{inner: inner} }

// Unwrap returns the Client below.
func (m *Meter) Unwrap() Client { return m.inner }

// Stats returns the counts so far.
func (m *Meter) Stats() MeterStats {
	return MeterStats{GenerateDataKey: m.generate.Load(), Decrypt: m.decrypt.Load(), Encrypt: m.encrypt.Load(),
		ReEncrypt: m.reencrypt.Load(), DescribeKey: m.describe.Load(),
		GetPublicKey: m.getPublic.Load(), AsymmetricDecrypt: m.asymDecrypt.Load()}
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

// GetPublicKey implements AsymmetricClient.
func (m *Meter) GetPublicKey(ctx context.Context, keyID string) (*PublicKey, error) {
	a, err := asymOf(m.inner)
	if err != nil {
		return nil, err
	}
	m.getPublic.Add(1)
	return a.GetPublicKey(ctx, keyID)
}

// DecryptAsymmetric implements AsymmetricClient.
func (m *Meter) DecryptAsymmetric(ctx context.Context, keyID, alg string, ct []byte) ([]byte, error) {
	a, err := asymOf(m.inner)
	if err != nil {
		return nil, err
	}
	m.asymDecrypt.Add(1)
	return a.DecryptAsymmetric(ctx, keyID, alg, ct)
}
