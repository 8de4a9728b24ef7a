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
	store, _ := SplitPartETag(client)
	return store
}

// Part ETags. When the client sent a Content-MD5 for a part and it verified
// over the plaintext, the part ETag it gets carries that MD5 beside the
// store's part ETag: "<store>-m<plaintext md5 hex>-0". CompleteMultipartUpload
// lists the part ETags again, so it can give the object the ETag S3 would,
// the MD5 of the plaintext part MD5s with "-N" (PlainMultipartETag), which
// is what rclone and other tools compute and compare. The form stays
// visibly not an MD5 (s3cmd compares part ETags with MD5s otherwise) and
// maps back to the store's part ETag like any "-0" ETag.

// partMD5Mark separates the store's part ETag from the plaintext MD5.
const partMD5Mark = "-m"

// ClientPartETag is the ETag a client sees for a part stored with store
// ETag store whose plaintext MD5 is plainMD5 (16 bytes; nil: not known).
func ClientPartETag(store string, plainMD5 []byte) string {
	if len(plainMD5) != md5.Size || store == "" {
		return ClientETag(store)
	}
	quoted := strings.HasPrefix(store, `"`) && strings.HasSuffix(store, `"`) && len(store) >= 2
	inner := store
	if quoted {
		inner = store[1 : len(store)-1]
	}
	return `"` + inner + partMD5Mark + hex.EncodeToString(plainMD5) + `-0"`
}

// SplitPartETag maps a client-supplied ETag back to the store's, and
// returns the plaintext MD5 a part ETag carries (nil if none).
func SplitPartETag(client string) (string, []byte) {
	quoted := strings.HasPrefix(client, `"`) && strings.HasSuffix(client, `"`) && len(client) >= 2
	inner := client
	if quoted {
		inner = client[1 : len(client)-1]
	}
	base, ok := strings.CutSuffix(inner, "-0")
	if !ok {
		return client, nil
	}
	var sum []byte
	if i := len(base) - len(partMD5Mark) - 2*md5.Size; i > 0 && base[i:i+len(partMD5Mark)] == partMD5Mark {
		if b, err := hex.DecodeString(base[i+len(partMD5Mark):]); err == nil {
			base, sum = base[:i], b
		}
	}
	if quoted {
		return `"` + base + `"`, sum
	}
	return base, sum
}

// PlainMultipartETag is the ETag S3 gives an object completed from parts
// with these plaintexts: the MD5 of the parts' binary MD5s, "-N". ok is
// false unless every part ETag carries its plaintext MD5 (ClientPartETag).
func PlainMultipartETag(parts []CompletePart) (string, bool) {
	h := md5.New()
	for _, p := range parts {
		_, sum := SplitPartETag(strings.TrimSpace(p.ETag))
		if sum == nil {
			return "", false
		}
		h.Write(sum)
	}
	return fmt.Sprintf(`"%x-%d"`, h.Sum(nil), len(parts)), true
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

// ETagListNames reports whether a condition value ("*", or a list of
// ETags, weak or strong) names tag.
func ETagListNames(cond, tag string) bool { return etagMatches(cond, tag) }

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

// ObjectETag is the ETag clients see for an object with store ETag
// storeTag whose sealed metadata holds sealed (envelope.Meta.ETag, "" if
// none): the sealed one when it names the same part count, else the
// store's mapped by ClientETag.
func ObjectETag(storeTag, sealed string) string {
	if n := envelope.PartsInETag(sealed); sealed != "" && n > 0 && n == envelope.PartsInETag(storeTag) {
		return `"` + strings.Trim(sealed, `"`) + `"`
	}
	return ClientETag(storeTag)
}
