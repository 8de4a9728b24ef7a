// Package sigv4 verifies AWS Signature Version 4 on client requests and signs
// upstream requests, with one canonicalizer for both, S3 flavour:
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
// The package knows nothing of HTTP servers: callers fill a Request from
// whatever server they run.
package sigv4
