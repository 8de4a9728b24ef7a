package proxy

import (
	"strings"

	"github.com/s3seal/s3seal/envelope"
)

// ETags. A store's ETag for a single PUT is the MD5 of the ciphertext, which
// clients would compare to the plaintext's MD5 and fail. So every ETag
// s3seal shows is derived from the store's and is visibly not an MD5: a
// single-part ETag gets "-0" appended (S3 never produces a part count of
// 0), a multipart ETag "<hex>-N" is shown as is. The mapping is reversible,
// so If-Match, If-None-Match and copy conditions keep working.

// clientETag maps a store ETag to the one clients see.
func clientETag(store string) string {
	if store == "" || store == "*" {
		return store
	}
	quoted := strings.HasPrefix(store, `"`) && strings.HasSuffix(store, `"`) && len(store) >= 2
	inner := store
	if quoted {
		inner = store[1 : len(store)-1]
	}
	if envelope.PartsInETag(inner) > 0 {
		return store
	}
	if quoted {
		return `"` + inner + `-0"`
	}
	return inner + "-0"
}

// storeETag maps a client-supplied ETag back to the store's.
func storeETag(client string) string {
	quoted := strings.HasPrefix(client, `"`) && strings.HasSuffix(client, `"`) && len(client) >= 2
	inner := client
	if quoted {
		inner = client[1 : len(client)-1]
	}
	if base, ok := strings.CutSuffix(inner, "-0"); ok {
		if quoted {
			return `"` + base + `"`
		}
		return base
	}
	return client
}

// storeETagList maps a condition header value: "*", one ETag or a comma
// separated list (weak ETags keep their W/ prefix).
func storeETagList(v string) string {
	if strings.TrimSpace(v) == "*" {
		return v
	}
	parts := strings.Split(v, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		weak := strings.HasPrefix(p, "W/")
		p = strings.TrimPrefix(p, "W/")
		p = storeETag(p)
		if weak {
			p = "W/" + p
		}
		parts[i] = p
	}
	return strings.Join(parts, ", ")
}
