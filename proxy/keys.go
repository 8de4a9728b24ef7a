package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/proxy/s3wire"
)

// Which KMS key encrypts what, and what the client is told about it.
//
// A write (PutObject, CreateMultipartUpload, CopyObject: the operations
// whose Spec.Key is KeyHeaders) uses the bucket's key (Config.BucketKeys,
// else Config.DefaultKeyID) unless the client asks for one with the
// SSE-KMS headers S3 defines:
//
//	x-amz-server-side-encryption: aws:kms
//	x-amz-server-side-encryption-aws-kms-key-id: <key id, ARN or alias>
//
// An identity may name only the keys in its KMSKeys ("*": any); the
// bucket's own key is always allowed, and any other key is refused with
// 403 AccessDenied before anything is read or written. "aws:kms" without a
// key id means the bucket's key, as S3 uses the bucket default then.
//
// "x-amz-server-side-encryption: AES256" (SSE-S3: "let the server pick the
// key") is accepted and served by the bucket's key; the write response
// echoes AES256 so that a client checking that its request was honoured
// sees what it asked for. Every read (GET, HEAD) says what really protects
// the object: aws:kms and the key id from its envelope header, as S3 does
// for an SSE-KMS object.
//
// UploadPart and UploadPartCopy (KeyUpload) take no SSE headers in S3: a
// key chosen at CreateMultipartUpload reaches them in the upload id
// (s3wire.UploadRef).

// AsymmetricKeys are write-only keys (issue #21): RSA key pairs whose
// public half wraps the data keys of new objects (FORMAT.md section 12.3),
// so that an instance without decrypt rights on them writes what it
// cannot read back: ransomware-resistant backup ingestion.
//
// A bucket's key is, in this order: its key in BucketKeys here, its key in
// Config.BucketKeys, DefaultKeyID here, Config.DefaultKeyID. A key a
// client names with SSE headers is a symmetric key.
type AsymmetricKeys struct {
	// KMS wraps data keys with RSA public keys and, with Decrypt, asks the
	// KMS to unwrap them: a kms.Cache over a kms.Asymmetric (one RSA wrap
	// per cached data key). nil: no asymmetric keys; objects written with
	// one are refused to read.
	KMS kms.Client
	// DefaultKeyID, if set, is the key of every bucket that has no
	// mapping of its own: the whole instance is write-only.
	DefaultKeyID string
	// BucketKeys maps bucket names to RSA key ids (ARN, id or alias).
	BucketKeys map[string]string
	// Decrypt says this instance has decrypt rights on the RSA keys (KMS
	// Decrypt): it reads what asymmetric keys wrapped. Off, every read
	// that needs such an object's plaintext or its keys is refused with
	// 403 AccessDenied before any KMS call.
	Decrypt bool
}

func (a *AsymmetricKeys) check(symmetric map[string]string) error {
	if a.KMS == nil && (a.DefaultKeyID != "" || len(a.BucketKeys) > 0 || a.Decrypt) {
		return errors.New("proxy: asymmetric keys need Asymmetric.KMS")
	}
	for b := range a.BucketKeys {
		if _, ok := symmetric[b]; ok {
			return fmt.Errorf("proxy: bucket %s has both a symmetric and an asymmetric key", b)
		}
	}
	return nil
}

// errWriteOnly answers a read this instance cannot do: the object's data
// keys are wrapped with an RSA key it has no decrypt rights on.
var errWriteOnly = s3wire.NewError(http.StatusForbidden, "AccessDenied",
	"Access Denied: the object was "+kms.WriteOnlyMessage+" (s3seal write-only mode; read it through an instance with decrypt rights on its RSA key)")

// keyFor returns the KMS key that protects new objects in bucket.
func (s *Server) keyFor(bucket string) string {
	k, _ := s.bucketKey(bucket)
	return k
}

// bucketKey returns the KMS key that protects new objects in bucket and
// whether it is an asymmetric (write-only) key.
func (s *Server) bucketKey(bucket string) (key string, asym bool) {
	if k, ok := s.cfg.Asymmetric.BucketKeys[bucket]; ok && k != "" {
		return k, true
	}
	if k, ok := s.cfg.BucketKeys[bucket]; ok && k != "" {
		return k, false
	}
	if k := s.cfg.Asymmetric.DefaultKeyID; k != "" {
		return k, true
	}
	return s.cfg.DefaultKeyID, false
}

// canDecryptAsymmetric reports whether this instance reads objects whose
// data keys an RSA key wrapped.
func (s *Server) canDecryptAsymmetric() bool {
	return s.cfg.Asymmetric.KMS != nil && s.cfg.Asymmetric.Decrypt
}

// writeOnly reports whether ki (from an object or part header) is one
// this instance cannot unwrap.
func (s *Server) writeOnly(ki envelope.KeyInfo) bool {
	return ki.Flags&envelope.FlagAsymmetricWrap != 0 && !s.canDecryptAsymmetric()
}

// unwrap returns the data key of a header's key info, from the KMS that
// wrapped it, for the object at bucket.
func (s *Server) unwrap(ctx context.Context, ki envelope.KeyInfo, bucket string) ([]byte, error) {
	client := s.kms
	if ki.Flags&envelope.FlagAsymmetricWrap != 0 {
		if !s.canDecryptAsymmetric() {
			return nil, errWriteOnly
		}
		client = s.cfg.Asymmetric.KMS
	}
	dek, err := client.Decrypt(ctx, ki.KeyID, ki.Wrapped, kms.BucketContext(bucket))
	if err != nil {
		return nil, s3wire.FromKMSError(err)
	}
	return dek, nil
}

// dataKey is a data key for a new header, and the flag its header needs.
type dataKey struct {
	*kms.DataKey
	flags envelope.Flags // FlagAsymmetricWrap for an RSA-wrapped key
}

// keyInfo is what a header sealed under d records.
func (d *dataKey) keyInfo() envelope.KeyInfo {
	return envelope.KeyInfo{KeyID: d.KeyID, Wrapped: d.Ciphertext, Flags: d.flags}
}

// config makes the objects and parts sealed under d: format version 2, or
// 3 for an RSA-wrapped key.
func (d *dataKey) config() envelope.Config { return envelope.Config{Flags: d.flags} }

// resealable reports whether a header of format version v can be resealed
// under d: the asymmetric-wrap flag exists from version 3 on, and a
// reseal keeps the version (its keys derive from it).
func (d *dataKey) resealable(v int) error {
	if d.flags != 0 && v < envelope.FlagsVersion {
		return s3wire.NotImplemented(fmt.Sprintf("copying a format version %d object to a bucket with a write-only (asymmetric) key: its header cannot carry the asymmetric flag without re-encrypting the object; download and upload it instead", v))
	}
	return nil
}

// writeKey returns the KMS key a write to bucket uses and the SSE algorithm
// to echo, after checking the client's SSE headers and that its identity
// may use the key it names.
func (s *Server) writeKey(r *request, bucket string) (keyID, alg string, err error) {
	bucketKey := s.keyFor(bucket)
	switch r.spec.Key {
	case s3wire.KeyBucket:
		return bucketKey, s3wire.SSEKMS, nil
	case s3wire.KeyUpload:
		uk := r.upload.KeyID
		if uk == "" {
			return bucketKey, s3wire.SSEKMS, nil
		}
		if !sameKey(uk, bucketKey) && !s.keyAllowed(r, uk) {
			return "", "", s3wire.ErrAccessDenied
		}
		return uk, s3wire.SSEKMS, nil
	}
	sse := r.header.Get(s3wire.HeaderSSE)
	requested := strings.TrimSpace(r.header.Get(s3wire.HeaderSSEKeyID))
	if r.header.Get(s3wire.HeaderSSEContext) != "" {
		return "", "", s3wire.NotImplemented("x-amz-server-side-encryption-context: s3seal binds every data key to the bucket and cannot add a client's encryption context")
	}
	switch sse {
	case "":
		if requested != "" {
			return "", "", s3wire.InvalidArgument("Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms")
		}
		return bucketKey, s3wire.SSEKMS, nil
	case s3wire.SSEAES256:
		if requested != "" {
			return "", "", s3wire.InvalidArgument("Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms")
		}
		return bucketKey, s3wire.SSEAES256, nil
	case s3wire.SSEKMS:
		if requested == "" || sameKey(requested, bucketKey) {
			return bucketKey, s3wire.SSEKMS, nil
		}
		if !s.keyAllowed(r, requested) {
			return "", "", s3wire.ErrAccessDenied
		}
		return requested, s3wire.SSEKMS, nil
	case "aws:kms:dsse":
		return "", "", s3wire.NotImplemented("dual-layer server-side encryption (aws:kms:dsse)")
	}
	return "", "", s3wire.InvalidArgument("The encryption method specified is not supported")
}

// keyAllowed reports whether the request's identity may name key.
func (s *Server) keyAllowed(r *request, key string) bool {
	if r.auth == nil || r.auth.AccessKey == "" {
		return false
	}
	id, ok := s.cfg.Identities.Lookup(r.auth.AccessKey)
	if !ok {
		return false
	}
	return id.allowsKey(key)
}

// allowsKey reports whether the identity may ask for key by name. A key
// listed by id also allows its ARN, and an alias its alias ARN.
func (id *Identity) allowsKey(key string) bool {
	if slices.Contains(id.KMSKeys, "*") || slices.Contains(id.KMSKeys, key) {
		return true
	}
	if short := arnResource(key); short != "" {
		return slices.Contains(id.KMSKeys, short)
	}
	return false
}

// sameKey reports whether a and b name the same key: equal, or one the
// ARN of the other's id or alias.
func sameKey(a, b string) bool {
	return a == b || arnResource(a) == b || arnResource(b) == a
}

// arnResource returns "ID" for "arn:aws:kms:region:account:key/ID" and
// "alias/NAME" for an alias ARN, or "" if key is no KMS ARN.
func arnResource(key string) string {
	if !strings.HasPrefix(key, "arn:") {
		return ""
	}
	parts := strings.SplitN(key, ":", 6)
	if len(parts) != 6 || parts[2] != "kms" {
		return ""
	}
	res := parts[5]
	if id, ok := strings.CutPrefix(res, "key/"); ok {
		return id
	}
	if strings.HasPrefix(res, "alias/") {
		return res
	}
	return ""
}

// kmsContext is the context of a KMS call made for r: it names the caller
// and the object for the audit log.
func kmsContext(r *request, bucket, key string) context.Context {
	who := "anonymous"
	if r.auth != nil && r.auth.AccessKey != "" {
		who = r.auth.AccessKey
	}
	return kms.WithCaller(r.std, who, bucket, key)
}

// newDataKey fetches a (usually cached) data key for bucket, under the key
// the request asks for if it may, and records what the response will say
// protects the object.
func (s *Server) newDataKey(r *request, bucket string) (*dataKey, error) {
	keyID, alg, err := s.writeKey(r, bucket)
	if err != nil {
		return nil, err
	}
	client, flags := s.kms, envelope.Flags(0)
	if bk, asym := s.bucketKey(bucket); asym && sameKey(keyID, bk) {
		client, flags = s.cfg.Asymmetric.KMS, envelope.FlagAsymmetricWrap
	}
	dk, err := client.GenerateDataKey(kmsContext(r, bucket, r.t.Key), keyID, kms.BucketContext(bucket))
	if err != nil {
		return nil, s3wire.FromKMSError(err)
	}
	r.sse = sse{alg: alg, keyID: dk.KeyID}
	return &dataKey{DataKey: dk, flags: flags}, nil
}

// sealNew makes the envelope of a new object at the request's path, its
// object key sealed under a (usually cached) data key of the bucket.
func (s *Server) sealNew(r *request, layout envelope.Layout, meta *envelope.Meta) (*envelope.Object, error) {
	return s.sealNewFlags(r, layout, meta, 0)
}

// sealNewFlags is sealNew for an object with format version 3 flags
// (envelope.FlagCompressed: meta says how).
func (s *Server) sealNewFlags(r *request, layout envelope.Layout, meta *envelope.Meta, flags envelope.Flags) (*envelope.Object, error) {
	dk, err := s.newDataKey(r, r.t.Bucket)
	if err != nil {
		return nil, err
	}
	defer kms.Zero(dk.Plaintext)
	cfg := dk.config()
	cfg.Flags |= flags // the body's flags (compression) beside the key's
	if flags&envelope.FlagCompressed != 0 {
		cfg.Level = s.comp.cfg.level(r.t.Bucket)
	}
	obj, err := cfg.NewObject(dk.Plaintext, dk.keyInfo(), r.t.Bucket, r.t.Key, layout, meta.Encode())
	if err != nil {
		return nil, sealError(err)
	}
	return obj, nil
}

// sealError reports a failure to build an envelope header: too much
// metadata is the client's doing, anything else ours.
func sealError(err error) error {
	if errors.Is(err, envelope.ErrTooLarge) {
		e := *s3wire.ErrMetadataTooLarge
		e.Cause = err
		return &e
	}
	return s3wire.Internal(err)
}

// openSealed unwraps the data key named in an object's envelope header and
// opens the header for (bucket, key).
func (s *Server) openSealed(r *request, headerValue, bucket, key string) (*envelope.Object, *envelope.Meta, error) {
	if headerValue == "" {
		return nil, nil, s3wire.ErrNotSealed
	}
	h, err := envelope.ParseHeader(headerValue)
	if err != nil {
		return nil, nil, s3wire.Damaged(fmt.Errorf("envelope header: %w", err))
	}
	dek, err := s.unwrap(kmsContext(r, bucket, key), h.KeyInfo(), bucket)
	if err != nil {
		return nil, nil, err
	}
	defer kms.Zero(dek)
	obj, err := envelope.Open(h, dek, bucket, key)
	if err != nil {
		return nil, nil, s3wire.Damaged(fmt.Errorf("open envelope for %s/%s: %w", bucket, key, err))
	}
	m, err := envelope.DecodeMeta(obj.Meta())
	if err != nil {
		obj.Close()
		return nil, nil, s3wire.Damaged(err)
	}
	return obj, m, nil
}

// partOpener opens the parts of an object for envelope.MultipartReader:
// it unwraps each part's data key (the KMS cache makes that one call per
// data key, not per part) and opens the part for the path and upload the
// parts are bound to.
func (s *Server) partOpener(r *request, bucket, key string, meta *envelope.Meta) envelope.PartOpener {
	pb, pk := meta.PartsPath(bucket, key)
	ctx := kmsContext(r, pb, pk)
	return func(ph *envelope.PartHeader) (*envelope.Part, error) {
		dek, err := s.unwrap(ctx, ph.KeyInfo(), pb)
		if err != nil {
			return nil, err
		}
		defer kms.Zero(dek)
		part, err := envelope.OpenPart(ph, dek, pb, pk, meta.Upload)
		if err != nil {
			return nil, s3wire.Damaged(fmt.Errorf("open part %d of %s/%s: %w", ph.PartNumber(), pb, pk, err))
		}
		return part, nil
	}
}
