// Package awskms is a kms.Client over AWS KMS (or any endpoint that speaks
// its API) with aws-sdk-go-v2.
//
// Credentials come from the SDK's default chain (environment, shared
// files, SSO, web identity, container and instance roles). SDK-level
// retries are off by default: stack kms.NewRetry in front instead, so that
// one policy (with its metrics) governs retries. AWS exceptions become
// *kms.Error with the same names; HTTP 5xx, timeouts and transport
// failures become retryable codes.
package awskms

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/s3seal/s3seal/kms"
)

// DefaultCallTimeout bounds one KMS call when the caller's context has no
// earlier deadline.
const DefaultCallTimeout = 10 * time.Second

// Config selects the KMS.
type Config struct {
	// Region, e.g. "eu-west-1". Empty: the SDK's default (AWS_REGION,
	// shared config).
	Region string
	// Endpoint is a custom endpoint URL (a KMS-compatible service, a VPC
	// endpoint, moto in tests). Empty: AWS's.
	Endpoint string
	// KeyID is used when a caller passes keyID "" to GenerateDataKey,
	// Encrypt, ReEncrypt (destination) or DescribeKey. Decrypt with "" lets
	// KMS find the key from the ciphertext, as AWS does.
	KeyID string
	// MaxAttempts is the SDK's attempts per call; 0 means 1 (no SDK
	// retries; use kms.NewRetry).
	MaxAttempts int
	// CallTimeout bounds each call; 0 means DefaultCallTimeout.
	CallTimeout time.Duration
	// Credentials overrides the default credential chain if set.
	Credentials aws.CredentialsProvider
	// Profile selects a profile of the shared config and credentials files
	// (as AWS_PROFILE does) if set.
	Profile string
	// HTTPClient overrides the SDK's HTTP client if set.
	HTTPClient aws.HTTPClient
	// FollowARNRegion sends each call about a key named by its ARN to the
	// ARN's region rather than Region: object headers carry ARNs, and
	// data moved between regions names keys of both. A multi-Region key
	// (mrk-) of another region is used by its replica in Region first
	// (the nearest replica; see routes). Off, a key of another region is
	// not found, as in AWS's own clients.
	FollowARNRegion bool
}

// Client is a kms.Client over AWS KMS.
type Client struct {
	api     *awskms.Client
	keyID   string
	timeout time.Duration
	region  string
	follow  bool // FollowARNRegion
}

// route is where one attempt of a call about a key goes: the key id to
// send and the region to sign for ("" is the client's own).
type route struct {
	id, region string
}

// opts are the per-call options that send the attempt to its region.
func (r route) opts() []func(*awskms.Options) {
	if r.region == "" {
		return nil
	}
	return []func(*awskms.Options){func(o *awskms.Options) { o.Region = r.region }}
}

// routes lists where a call about keyID is tried, in order.
//
// A bare key id or alias stays in the client's region. With
// Config.FollowARNRegion a key named by the ARN of another region is used
// in that region (a KMS key lives in one region, and the object headers of
// data moved between regions name keys of both), except a multi-Region
// key (mrk-): its replica in the client's own region holds the same key
// material and decrypts what any related key wrapped, so the call goes
// there first, with the ARN rewritten to this region, and only when no
// usable replica is here (NotFound, AccessDenied) to the ARN's region.
// That is how a proxy reads, in region B, objects whose headers name the
// primary key of region A: no rewrap and no call across regions. With a
// custom Endpoint every attempt still goes there, signed for its region (a
// KMS-compatible service that serves every region, such as moto, tells
// them apart by the signature).
func (c *Client) routes(keyID string) []route {
	a, ok := kms.ParseARN(keyID)
	if !c.follow || !ok || a.Region == c.region {
		return []route{{id: keyID}}
	}
	if kms.IsMultiRegion(keyID) {
		local := a
		local.Region = c.region
		return []route{{id: local.String()}, {id: keyID, region: a.Region}}
	}
	return []route{{id: keyID, region: a.Region}}
}

// try runs call on each route of keyID until one is not refused for want
// of a usable key there.
func try[T any](c *Client, keyID string, call func(r route) (T, error)) (T, error) {
	rs := c.routes(keyID)
	var out T
	var err error
	for i, r := range rs {
		out, err = call(r)
		if err == nil || i == len(rs)-1 {
			break
		}
		if code := kms.ErrorCode(mapError(err)); code != kms.CodeNotFound && code != kms.CodeAccessDenied {
			break
		}
	}
	return out, err
}

var (
	_ kms.Client           = (*Client)(nil)
	_ kms.AsymmetricClient = (*Client)(nil)
)

// New loads the AWS configuration and returns a Client. It makes no call
// to KMS; use DescribeKey to probe.
func New(ctx context.Context, cfg Config) (*Client, error) {
	attempts := cfg.MaxAttempts
	if attempts <= 0 {
		attempts = 1
	}
	opts := []func(*config.LoadOptions) error{config.WithRetryMaxAttempts(attempts)}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("awskms: loading AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("awskms: no region configured (set Region or AWS_REGION)")
	}
	if cfg.HTTPClient != nil {
		// Set after loading: LoadDefaultConfig refuses a plain
		// *http.Client when AWS_CA_BUNDLE is set.
		awsCfg.HTTPClient = cfg.HTTPClient
	}
	api := awskms.NewFromConfig(awsCfg, func(o *awskms.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	timeout := cfg.CallTimeout
	if timeout <= 0 {
		timeout = DefaultCallTimeout
	}
	return &Client{api: api, keyID: cfg.KeyID, timeout: timeout, region: awsCfg.Region, follow: cfg.FollowARNRegion}, nil
}

// API returns the SDK client (for key management in tools and tests).
func (c *Client) API() *awskms.Client { return c.api }

func (c *Client) key(keyID string) (string, error) {
	if keyID != "" {
		return keyID, nil
	}
	if c.keyID == "" {
		return "", &kms.Error{Code: kms.CodeValidation, Message: "no key id given and no default KeyID configured"}
	}
	return c.keyID, nil
}

func (c *Client) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

func ctxMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// GenerateDataKey implements kms.Client. DataKey.KeyID is the key's ARN.
func (c *Client) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (*kms.DataKey, error) {
	id, err := c.key(keyID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	out, err := try(c, id, func(r route) (*awskms.GenerateDataKeyOutput, error) {
		return c.api.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{
			KeyId:             aws.String(r.id),
			KeySpec:           types.DataKeySpecAes256,
			EncryptionContext: ctxMap(encCtx),
		}, r.opts()...)
	})
	if err != nil {
		return nil, mapError(err)
	}
	if len(out.Plaintext) != 32 {
		kms.Zero(out.Plaintext)
		return nil, &kms.Error{Code: kms.CodeInternal, Message: fmt.Sprintf("KMS returned a %d-byte data key", len(out.Plaintext))}
	}
	return &kms.DataKey{KeyID: aws.ToString(out.KeyId), Plaintext: out.Plaintext, Ciphertext: out.CiphertextBlob}, nil
}

// Decrypt implements kms.Client.
func (c *Client) Decrypt(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error) {
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	out, err := try(c, keyID, func(r route) (*awskms.DecryptOutput, error) {
		in := &awskms.DecryptInput{CiphertextBlob: wrapped, EncryptionContext: ctxMap(encCtx)}
		if r.id != "" {
			in.KeyId = aws.String(r.id)
		}
		return c.api.Decrypt(ctx, in, r.opts()...)
	})
	if err != nil {
		return nil, mapError(err)
	}
	return out.Plaintext, nil
}

// Encrypt implements kms.Client.
func (c *Client) Encrypt(ctx context.Context, keyID string, plaintext []byte, encCtx map[string]string) ([]byte, error) {
	id, err := c.key(keyID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	out, err := try(c, id, func(r route) (*awskms.EncryptOutput, error) {
		return c.api.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(r.id), Plaintext: plaintext, EncryptionContext: ctxMap(encCtx)}, r.opts()...)
	})
	if err != nil {
		return nil, mapError(err)
	}
	return out.CiphertextBlob, nil
}

// ReEncrypt implements kms.Client.
func (c *Client) ReEncrypt(ctx context.Context, srcKeyID string, wrapped []byte, srcCtx map[string]string, dstKeyID string, dstCtx map[string]string) ([]byte, string, error) {
	dst, err := c.key(dstKeyID)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	out, err := try(c, dst, func(r route) (*awskms.ReEncryptOutput, error) {
		in := &awskms.ReEncryptInput{
			CiphertextBlob:               wrapped,
			SourceEncryptionContext:      ctxMap(srcCtx),
			DestinationKeyId:             aws.String(r.id),
			DestinationEncryptionContext: ctxMap(dstCtx),
		}
		if srcKeyID != "" {
			// The source key is used in the region the call goes to:
			// a multi-Region source key by its replica there.
			in.SourceKeyId = aws.String(inRegionOf(srcKeyID, r.region, c.region))
		}
		return c.api.ReEncrypt(ctx, in, r.opts()...)
	})
	if err != nil {
		return nil, "", mapError(err)
	}
	return out.CiphertextBlob, aws.ToString(out.KeyId), nil
}

// DescribeKey implements kms.Client. Aliases are not filled in (that takes
// a ListAliases call; DescribeKey is the readiness probe and stays one
// call).
func (c *Client) DescribeKey(ctx context.Context, keyID string) (*kms.KeyMetadata, error) {
	id, err := c.key(keyID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	out, err := try(c, id, func(r route) (*awskms.DescribeKeyOutput, error) {
		return c.api.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(r.id)}, r.opts()...)
	})
	if err != nil {
		return nil, mapError(err)
	}
	m := out.KeyMetadata
	if m == nil {
		return nil, &kms.Error{Code: kms.CodeInternal, Message: "DescribeKey returned no metadata"}
	}
	md := &kms.KeyMetadata{
		KeyID:        aws.ToString(m.KeyId),
		Arn:          aws.ToString(m.Arn),
		Description:  aws.ToString(m.Description),
		CreationDate: aws.ToTime(m.CreationDate),
		KeyState:     kms.KeyState(m.KeyState),
		DeletionDate: aws.ToTime(m.DeletionDate),
	}
	md.KeySpec, md.KeyUsage, md.EncryptionAlgorithms = string(m.KeySpec), string(m.KeyUsage), algorithms(m.EncryptionAlgorithms)
	return md, nil
}

func algorithms(in []types.EncryptionAlgorithmSpec) []string {
	var out []string
	for _, a := range in {
		out = append(out, string(a))
	}
	return out
}

// GetPublicKey implements kms.AsymmetricClient. PublicKey.KeyID is the
// key's ARN.
func (c *Client) GetPublicKey(ctx context.Context, keyID string) (*kms.PublicKey, error) {
	id, err := c.key(keyID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	out, err := try(c, id, func(r route) (*awskms.GetPublicKeyOutput, error) {
		return c.api.GetPublicKey(ctx, &awskms.GetPublicKeyInput{KeyId: aws.String(r.id)}, r.opts()...)
	})
	if err != nil {
		return nil, mapError(err)
	}
	kid := aws.ToString(out.KeyId)
	if a, ok := kms.ParseARN(id); ok && a.Resource == "key/"+kid {
		// AWS answers with the ARN, moto with the bare id: object headers
		// should name the key by ARN (FollowARNRegion reads it).
		kid = id
	}
	return &kms.PublicKey{KeyID: kid, KeySpec: string(out.KeySpec), KeyUsage: string(out.KeyUsage),
		EncryptionAlgorithms: algorithms(out.EncryptionAlgorithms), DER: out.PublicKey}, nil
}

// DecryptAsymmetric implements kms.AsymmetricClient: Decrypt with the
// algorithm and the key id, and no encryption context (AWS refuses one
// for asymmetric keys).
func (c *Client) DecryptAsymmetric(ctx context.Context, keyID, alg string, ct []byte) ([]byte, error) {
	if keyID == "" {
		return nil, &kms.Error{Code: kms.CodeValidation, Message: "KeyId is required to decrypt with an asymmetric key"}
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	out, err := try(c, keyID, func(r route) (*awskms.DecryptOutput, error) {
		return c.api.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: ct, KeyId: aws.String(r.id),
			EncryptionAlgorithm: types.EncryptionAlgorithmSpec(alg)}, r.opts()...)
	})
	if err != nil {
		return nil, mapError(err)
	}
	return out.Plaintext, nil
}

// inRegionOf rewrites a multi-Region key ARN to the region a call goes to
// (callRegion, or own when that is ""); other key ids are kept.
func inRegionOf(keyID, callRegion, own string) string {
	if callRegion == "" {
		callRegion = own
	}
	a, ok := kms.ParseARN(keyID)
	if !ok || !kms.IsMultiRegion(keyID) || a.Region == callRegion {
		return keyID
	}
	a.Region = callRegion
	return a.String()
}

// codeAliases maps error codes AWS (or compatible services) use besides
// the KMS exception names to ours.
var codeAliases = map[string]string{
	"Throttling":                          kms.CodeThrottling,
	"ThrottledException":                  kms.CodeThrottling,
	"TooManyRequestsException":            kms.CodeThrottling,
	"RequestLimitExceeded":                kms.CodeThrottling,
	"InternalFailure":                     kms.CodeInternal,
	"InternalError":                       kms.CodeInternal,
	"ServiceUnavailable":                  kms.CodeUnavailable,
	"ServiceUnavailableException":         kms.CodeUnavailable,
	"RequestTimeout":                      kms.CodeUnavailable,
	"RequestTimeoutException":             kms.CodeUnavailable,
	"UnrecognizedClientException":         kms.CodeAccessDenied,
	"InvalidSignatureException":           kms.CodeAccessDenied,
	"IncompleteSignatureException":        kms.CodeAccessDenied,
	"MissingAuthenticationTokenException": kms.CodeAccessDenied,
	"ExpiredTokenException":               kms.CodeAccessDenied,
	"InvalidClientTokenId":                kms.CodeAccessDenied,
	"SignatureDoesNotMatch":               kms.CodeAccessDenied,
	"InvalidArnException":                 kms.CodeNotFound,
}

// mapError turns an SDK error into a *kms.Error.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		if c, ok := codeAliases[code]; ok {
			code = c
		}
		if code == "" || code == "UnknownError" {
			code = kms.CodeInternal
		}
		var re *smithyhttp.ResponseError
		if _, known := knownCodes[code]; !known && errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
			// A 5xx with an unfamiliar code is still a server fault.
			code = kms.CodeInternal
		}
		return &kms.Error{Code: code, Message: ae.ErrorMessage(), Err: err}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
		return &kms.Error{Code: kms.CodeInternal, Message: fmt.Sprintf("HTTP %d", re.HTTPStatusCode()), Err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &kms.Error{Code: kms.CodeUnavailable, Message: "KMS call did not complete", Err: err}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return &kms.Error{Code: kms.CodeUnavailable, Message: "cannot reach KMS", Err: err}
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return &kms.Error{Code: kms.CodeUnavailable, Message: "cannot reach KMS", Err: err}
	}
	return &kms.Error{Code: "ClientError", Message: "KMS request failed", Err: err}
}

var knownCodes = map[string]struct{}{
	kms.CodeDisabled: {}, kms.CodeInvalidState: {}, kms.CodeNotFound: {}, kms.CodeAccessDenied: {},
	kms.CodeInvalidCiphertext: {}, kms.CodeThrottling: {}, kms.CodeInternal: {}, kms.CodeUnavailable: {},
	kms.CodeKeyUnavailable: {}, kms.CodeIncorrectKey: {}, kms.CodeInvalidKeyUsage: {},
	kms.CodeAlreadyExists: {}, kms.CodeValidation: {}, kms.CodeLimitExceeded: {}, kms.CodeUnsupportedOper: {},
}
