package embedstore

import (
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
)

type listMode int

const (
	listV1 listMode = iota
	listV2
	listVersions
)

// listParams are the query parameters each kind of listing takes.
var listParams = map[listMode][]string{
	listV1:       {"prefix", "delimiter", "marker", "max-keys", "encoding-type"},
	listV2:       {"list-type", "prefix", "delimiter", "continuation-token", "start-after", "max-keys", "encoding-type", "fetch-owner"},
	listVersions: {"versions", "prefix", "delimiter", "key-marker", "version-id-marker", "max-keys", "encoding-type"},
}

type listEntry struct {
	key    string
	obj    *object // nil for a common prefix
	prefix bool
}

// listPage walks the bucket's index in key order: keys under prefix after
// start, rolled up at delimiter into common prefixes (a common prefix not
// after start is skipped whole), at most maxKeys entries. truncated
// reports whether more entries follow.
func (s *Store) listPage(bucket, prefix, delimiter, start string, maxKeys int) (entries []listEntry, truncated bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(objBkt(bucket))
		if b == nil {
			return errNoSuchBucket
		}
		c := b.Cursor()
		var k, v []byte
		if start >= prefix {
			k, v = c.Seek([]byte(start))
			if k != nil && string(k) == start {
				k, v = c.Next()
			}
		} else {
			k, v = c.Seek([]byte(prefix))
		}
		for k != nil && strings.HasPrefix(string(k), prefix) {
			key := string(k)
			if delimiter != "" {
				if i := strings.Index(key[len(prefix):], delimiter); i >= 0 {
					cp := key[:len(prefix)+i+len(delimiter)]
					if cp > start || start == "" {
						if len(entries) == maxKeys {
							truncated = true
							return nil
						}
						entries = append(entries, listEntry{key: cp, prefix: true})
					}
					// Past every key under cp: keys are UTF-8, which
					// never holds the byte 0xff.
					k, v = c.Seek([]byte(cp + "\xff"))
					continue
				}
			}
			if len(entries) == maxKeys {
				truncated = true
				return nil
			}
			var obj object
			if err := json.Unmarshal(v, &obj); err != nil {
				return err
			}
			entries = append(entries, listEntry{key: key, obj: &obj})
			k, v = c.Next()
		}
		return nil
	})
	return entries, truncated, err
}

type listContents struct {
	Key          string
	LastModified string
	ETag         string
	Size         int64
	StorageClass string
	Owner        *owner `xml:",omitempty"`
}

type listVersion struct {
	Key          string
	VersionId    string
	IsLatest     bool
	LastModified string
	ETag         string
	Size         int64
	StorageClass string
	Owner        owner
}

type commonPrefix struct{ Prefix string }

func (s *Store) listObjects(q *request, mode listMode) error {
	if err := q.only(listParams[mode]...); err != nil {
		return err
	}
	maxKeys := defaultMaxKeys
	if v := q.q.Get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errInvalidArgument("Argument maxKeys must be an integer between 0 and 2147483647")
		}
		maxKeys = min(n, defaultMaxKeys)
	}
	enc := q.q.Get("encoding-type")
	if enc != "" && enc != "url" {
		return errInvalidArgument("Invalid Encoding Method specified in Request")
	}
	encode := func(v string) string {
		if enc == "url" {
			return s3URLEncode(v)
		}
		return v
	}
	prefix, delimiter := q.q.Get("prefix"), q.q.Get("delimiter")
	var start string
	switch mode {
	case listV1:
		start = q.q.Get("marker")
	case listV2:
		start = q.q.Get("start-after")
		if tok := q.q.Get("continuation-token"); tok != "" {
			b, err := base64.RawURLEncoding.DecodeString(tok)
			if err != nil {
				return errInvalidArgument("The continuation token provided is incorrect")
			}
			start = string(b)
		}
	case listVersions:
		start = q.q.Get("key-marker")
	}
	entries, truncated, err := s.listPage(q.bucket, prefix, delimiter, start, maxKeys)
	if err != nil {
		return err
	}
	var contents []listContents
	var versions []listVersion
	var prefixes []commonPrefix
	for _, e := range entries {
		if e.prefix {
			prefixes = append(prefixes, commonPrefix{encode(e.key)})
			continue
		}
		sc := cmpOr(e.obj.Header["X-Amz-Storage-Class"], "STANDARD")
		mod := e.obj.Modified.UTC().Format(timeFormat)
		etag := `"` + e.obj.ETag + `"`
		if mode == listVersions {
			versions = append(versions, listVersion{Key: encode(e.key), VersionId: "null", IsLatest: true, LastModified: mod,
				ETag: etag, Size: e.obj.Size, StorageClass: sc, Owner: storeOwner})
			continue
		}
		c := listContents{Key: encode(e.key), LastModified: mod, ETag: etag, Size: e.obj.Size, StorageClass: sc}
		if mode == listV1 || q.q.Get("fetch-owner") == "true" {
			o := storeOwner
			c.Owner = &o
		}
		contents = append(contents, c)
	}
	last := ""
	if len(entries) > 0 {
		last = entries[len(entries)-1].key
	}
	encType := ""
	if enc == "url" {
		encType = "url"
	}
	var delim *string
	if delimiter != "" {
		d := encode(delimiter)
		delim = &d
	}
	switch mode {
	case listV1:
		res := struct {
			XMLName        xml.Name `xml:"ListBucketResult"`
			NS             string   `xml:"xmlns,attr"`
			Name           string
			Prefix         string
			Marker         string
			NextMarker     string `xml:",omitempty"`
			MaxKeys        int
			Delimiter      *string `xml:",omitempty"`
			IsTruncated    bool
			EncodingType   string `xml:",omitempty"`
			Contents       []listContents
			CommonPrefixes []commonPrefix
		}{NS: s3xmlns, Name: q.bucket, Prefix: encode(prefix), Marker: encode(start), MaxKeys: maxKeys, Delimiter: delim,
			IsTruncated: truncated, EncodingType: encType, Contents: contents, CommonPrefixes: prefixes}
		if truncated && delimiter != "" {
			res.NextMarker = encode(last)
		}
		return writeXML(q.w, http.StatusOK, res)
	case listV2:
		res := struct {
			XMLName               xml.Name `xml:"ListBucketResult"`
			NS                    string   `xml:"xmlns,attr"`
			Name                  string
			Prefix                string
			StartAfter            string `xml:",omitempty"`
			ContinuationToken     string `xml:",omitempty"`
			NextContinuationToken string `xml:",omitempty"`
			KeyCount              int
			MaxKeys               int
			Delimiter             *string `xml:",omitempty"`
			IsTruncated           bool
			EncodingType          string `xml:",omitempty"`
			Contents              []listContents
			CommonPrefixes        []commonPrefix
		}{NS: s3xmlns, Name: q.bucket, Prefix: encode(prefix), StartAfter: encode(q.q.Get("start-after")),
			ContinuationToken: q.q.Get("continuation-token"), KeyCount: len(entries), MaxKeys: maxKeys, Delimiter: delim,
			IsTruncated: truncated, EncodingType: encType, Contents: contents, CommonPrefixes: prefixes}
		if truncated {
			res.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(last))
		}
		return writeXML(q.w, http.StatusOK, res)
	default:
		res := struct {
			XMLName             xml.Name `xml:"ListVersionsResult"`
			NS                  string   `xml:"xmlns,attr"`
			Name                string
			Prefix              string
			KeyMarker           string
			VersionIdMarker     string
			NextKeyMarker       string `xml:",omitempty"`
			NextVersionIdMarker string `xml:",omitempty"`
			MaxKeys             int
			Delimiter           *string `xml:",omitempty"`
			IsTruncated         bool
			EncodingType        string        `xml:",omitempty"`
			Versions            []listVersion `xml:"Version"`
			CommonPrefixes      []commonPrefix
		}{NS: s3xmlns, Name: q.bucket, Prefix: encode(prefix), KeyMarker: encode(start), VersionIdMarker: q.q.Get("version-id-marker"),
			MaxKeys: maxKeys, Delimiter: delim, IsTruncated: truncated, EncodingType: encType, Versions: versions, CommonPrefixes: prefixes}
		if truncated {
			res.NextKeyMarker, res.NextVersionIdMarker = encode(last), "null"
		}
		return writeXML(q.w, http.StatusOK, res)
	}
}

// s3URLEncode encodes a key for encoding-type=url as S3 and MinIO do:
// url.QueryEscape's rules ("+" for a space), except that "/" and "*" stay
// as they are and "~" is encoded.
func s3URLEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '/', c == '*':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
