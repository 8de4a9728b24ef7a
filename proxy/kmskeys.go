package proxy

import (
	"context"
	"slices"
	"strings"

	"github.com/s3seal/s3seal/kms"
)

// Which KMS key encrypts what, and what the client is told about it.
//
// A write (PutObject, CreateMultipartUpload, CopyObject) uses the bucket's
// key (Config.BucketKeys, else Config.DefaultKeyID) unless the client asks
// for one with the SSE-KMS headers S3 defines:
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
// UploadPart and UploadPartCopy take no SSE headers in S3: a key chosen at
// CreateMultipartUpload reaches them in the upload id (uploadid.go).

const (
	hdrSSE          = "X-Amz-Server-Side-Encryption"
	hdrSSEKeyID     = "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"
	hdrSSEContext   = "X-Amz-Server-Side-Encryption-Context"
	sseKMS          = "aws:kms"
	sseAES256       = "AES256"
	userValueSSEKey = "s3seal.sse.key"
	userValueSSEAlg = "s3seal.sse.alg"
)

// writeKey returns the KMS key a write to bucket uses and the SSE algorithm
// to echo, after checking the client's SSE headers and that its identity
// may use the key it names.
func (s *Server) writeKey(r *request, bucket string) (keyID, alg string, err error) {
	bucketKey := s.keyFor(bucket)
	if uk := r.upload.keyID; uk != "" && (r.op == opUploadPart || r.op == opUploadPartCopy) {
		if !sameKey(uk, bucketKey) && !s.keyAllowed(r, uk) {
			return "", "", errAccessDenied
		}
		return uk, sseKMS, nil
	}
	if !sseHeadersApply(r.op) {
		return bucketKey, sseKMS, nil
	}
	sse := r.header.Get(hdrSSE)
	requested := strings.TrimSpace(r.header.Get(hdrSSEKeyID))
	if r.header.Get(hdrSSEContext) != "" {
		return "", "", errNotImplemented("x-amz-server-side-encryption-context: s3seal binds every data key to the bucket and cannot add a client's encryption context")
	}
	switch sse {
	case "":
		if requested != "" {
			return "", "", errInvalidArgument("Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms")
		}
		return bucketKey, sseKMS, nil
	case sseAES256:
		if requested != "" {
			return "", "", errInvalidArgument("Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms")
		}
		return bucketKey, sseAES256, nil
	case sseKMS:
		if requested == "" || sameKey(requested, bucketKey) {
			return bucketKey, sseKMS, nil
		}
		if !s.keyAllowed(r, requested) {
			return "", "", errAccessDenied
		}
		return requested, sseKMS, nil
	case "aws:kms:dsse":
		return "", "", errNotImplemented("dual-layer server-side encryption (aws:kms:dsse)")
	}
	return "", "", errInvalidArgument("The encryption method specified is not supported")
}

// sseHeadersApply reports whether S3 honours SSE request headers for op.
func sseHeadersApply(o op) bool {
	switch o {
	case opPutObject, opCreateMultipart, opCopyObject:
		return true
	}
	return false
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

// noteSSE records the key (and algorithm) to echo in a successful
// response; the last call wins, so a copy reports its destination's key.
func noteSSE(r *request, keyID, alg string) {
	r.ctx.SetUserValue(userValueSSEKey, keyID)
	r.ctx.SetUserValue(userValueSSEAlg, alg)
}

// echoSSE adds the SSE headers S3 sends for an SSE-KMS object to a
// successful response.
func (s *Server) echoSSE(r *request) {
	ctx := r.ctx
	if st := ctx.Response.StatusCode(); st < 200 || st > 299 {
		return
	}
	keyID, _ := ctx.UserValue(userValueSSEKey).(string)
	alg, _ := ctx.UserValue(userValueSSEAlg).(string)
	if keyID == "" {
		return
	}
	ctx.Response.Header.Set(hdrSSE, alg)
	if alg == sseKMS {
		ctx.Response.Header.Set(hdrSSEKeyID, keyID)
	}
}
