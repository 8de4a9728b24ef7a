package sigv4

import (
	"crypto/sha256"
	"encoding/hex"
)

// VerifyPayload verifies a request to a service other than S3 (KMS, STS,
// any AWS JSON or query protocol): those sign the SHA-256 of the whole
// body without sending it in x-amz-content-sha256, so the caller reads the
// body first (it is small; bound it) and passes it here. Only header
// authentication is accepted: query authentication and Signature V2 get
// ErrUnsupportedAlgorithm, a request without an Authorization header
// ErrMissingAuth. If the client also sent x-amz-content-sha256, it must
// be the body's hash (ErrContentSHA256Mismatch). Set Verifier.Service to
// the service's signing name ("kms").
//
// The returned Auth's Body is not for use: the body has been read.
func (v *Verifier) VerifyPayload(r *Request, body []byte) (*Auth, error) {
	authz := lookupHeader(r.Header, "authorization")
	params := parseQuery(r.RawQuery)
	for _, p := range params {
		switch p.name {
		case queryAlgorithm, queryCredential, querySignature, v2QueryAccessKey, v2QuerySignature:
			return nil, clone(ErrUnsupportedAlgorithm)
		}
	}
	switch {
	case len(authz) == 0:
		return nil, clone(ErrMissingAuth)
	case len(authz) > 1:
		return nil, malformedHeader("the Authorization header appears more than once.")
	case isV2Authorization(authz[0]):
		return nil, clone(ErrUnsupportedAlgorithm)
	}
	sum := sha256.Sum256(body)
	return v.verifyHeader(r, authz[0], params, hex.EncodeToString(sum[:]))
}
