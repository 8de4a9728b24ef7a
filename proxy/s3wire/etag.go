package s3wire

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/s3seal/s3seal/envelope"
)

// ETags. A store's ETag for a single PUT is the MD5 of the ciphertext, which
// clients would compare to the plaintext's MD5 and fail. So every ETag
// s3seal shows is derived from the store's and is visibly not an MD5: a
// single-part ETag gets "-0" appended (S3 never produces a part count of
// 0), a multipart ETag "<hex>-N" is shown as is. The mapping is reversible,
// so If-Match, If-None-Match and copy conditions keep working.

// ClientETag maps a store ETag to the one clients see.
func ClientETag(store string) string {
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

// StoreETag maps a client-supplied ETag back to the store's.
func StoreETag(client string) string {
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
		p = StoreETag(p)
		if weak {
			p = "W/" + p
		}
		parts[i] = p
	}
	return strings.Join(parts, ", ")
}

// etagMatches reports whether a condition ("*", or a list of ETags, weak
// or strong) names tag.
func etagMatches(cond, tag string) bool {
	tag = strings.Trim(tag, `"`)
	for _, c := range strings.Split(cond, ",") {
		c = strings.Trim(strings.TrimPrefix(strings.TrimSpace(c), "W/"), `"`)
		if c == "*" || c == tag {
			return true
		}
	}
	return false
}

// MultipartETag is the store ETag S3 gives an object completed from parts
// with these (client) ETags: the MD5 of their binary MD5s, "-N".
func MultipartETag(parts []CompletePart) (string, bool) {
	h := md5.New()
	for _, p := range parts {
		sum, err := hex.DecodeString(strings.Trim(StoreETag(strings.TrimSpace(p.ETag)), `"`))
		if err != nil || len(sum) != md5.Size {
			return "", false
		}
		h.Write(sum)
	}
	return fmt.Sprintf(`"%x-%d"`, h.Sum(nil), len(parts)), true
}
