// Package sigv4 verifies AWS Signature Version 4 on client requests and signs
// upstream requests, with one canonicalizer for both, S3 flavour. It also
// verifies Signature Version 2 (sigv2.go), which default clients still use
// for presigned URLs, when Verifier.AllowV2 is set and FIPS 140-3 mode is
// off (V2 is HMAC-SHA1, which that mode does not approve); upstream requests
// are always signed with V4.
//
//   - The canonical URI is the path exactly as the client sent it: already
//     escaped, never re-encoded, never normalized (S3 keys may contain "//",
//     "./" and "%2F").
//   - The canonical query is built from the raw query: split on '&', each part
//     on its first '=' (no '=' means an empty value), names and values decoded
//     ('+' is a space, a '%' not followed by two hex digits stands for itself)
//     and re-encoded with only A-Za-z0-9-._~ left as is, sorted by encoded
//     name then encoded value.
//   - Header values are trimmed, inner runs of spaces collapsed, repeated
//     headers joined with ','.
//
// Verification covers the Authorization header, presigned URLs (query
// authentication) and, through Auth.Body, the payload: a hex SHA-256,
// UNSIGNED-PAYLOAD, and aws-chunked streaming with signed chunks
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, -TRAILER) or unsigned chunks with a
// checksum trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER). Failures are *Error
// values carrying the S3 error code and HTTP status.
//
// Choices where S3 and MinIO differ or are not documented:
//   - A header-authenticated request without x-amz-content-sha256 is taken to
//     have an empty body (its payload hash is that of ""), as MinIO does; AWS
//     refuses it. The body is then checked to be empty.
//   - Verifier.Region empty accepts any region in the credential scope.
//   - Every x-amz-* header present must be signed, and host must be
//     (AccessDenied, "There were headers present in the request which were
//     not signed", with HeadersNotSigned).
//   - Session tokens (X-Amz-Security-Token) are signed data only: Lookup maps
//     access keys to secrets, there is no STS.
//
// Use:
//
//	v := &sigv4.Verifier{Lookup: secrets, Region: "us-east-1"} // one per process
//	auth, err := v.Verify(&sigv4.Request{Method, RawPath, RawQuery, Host, Header})
//	// err is an *Error: render Code, Message, Status (and its details) as S3 XML.
//	body, err := auth.Body(clientBody, decodedLength)
//	// read body to io.EOF; any other error (an *Error) means: discard, abort.
//
//	s := &sigv4.Signer{AccessKey, SecretKey, Region: "eu-west-3"} // upstream
//	for k, v := range s.Sign(upstreamReq, sigv4.UnsignedPayload, time.Now()) { set k, v }
//
// Upstream bodies can be framed with NewUnsignedChunkEncoder (an unsigned
// aws-chunked body with a checksum trailer, STREAMING-UNSIGNED-PAYLOAD-TRAILER)
// or Signer.SignStreaming (signed chunks); ChunkedLength gives their exact
// Content-Length up front.
//
// The Request must carry the headers exactly as the client sent them, all of
// them (Content-Length, Content-Type, Content-MD5 and Expect included: a
// client may have signed any of them; "Expect: 100-continue" is assumed when
// signed but consumed by the server), and the path and query as they were on
// the wire.
//
// Body also verifies Content-MD5 and a x-amz-checksum-* header or trailer
// (crc32, crc32c, crc64nvme, sha1, sha256) over the payload, failing with
// BadDigest. Bytes are passed on before the check that covers them ends (a
// chunk's signature at the chunk's end, a hash or checksum at the body's end):
// the caller must not commit anything before io.EOF.
//
// The package knows nothing of HTTP servers: callers fill a Request from
// whatever server they run.
package sigv4
