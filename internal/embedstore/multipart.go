package embedstore

import (
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
)

func (s *Store) createUpload(q *request) error {
	hdr, err := requestHeaders(q.r.Header)
	if err != nil {
		return err
	}
	tags, err := requestTags(q.r.Header)
	if err != nil {
		return err
	}
	id := newID()
	err = s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketsBkt).Get([]byte(q.bucket)) == nil {
			return errNoSuchBucket
		}
		if _, err := tx.CreateBucket(partBkt(id)); err != nil {
			return err
		}
		return putJSON(tx.Bucket(uploadsBkt), []byte(id), upload{Bucket: q.bucket, Key: q.key, Initiated: s.now().UTC(), Header: hdr, Tags: tags})
	})
	if err != nil {
		return err
	}
	return writeXML(q.w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
		NS       string   `xml:"xmlns,attr"`
		Bucket   string
		Key      string
		UploadId string
	}{NS: s3xmlns, Bucket: q.bucket, Key: q.key, UploadId: id})
}

// readUpload reads the request's upload, which must be for its object.
func readUpload(tx *bolt.Tx, q *request) (*upload, error) {
	id := q.q.Get("uploadId")
	u, ok, err := getJSON[upload](tx.Bucket(uploadsBkt), []byte(id))
	if err != nil {
		return nil, err
	}
	if !ok || u.Bucket != q.bucket || u.Key != q.key {
		if tx.Bucket(bucketsBkt).Get([]byte(q.bucket)) == nil {
			return nil, errNoSuchBucket
		}
		return nil, errNoSuchUpload
	}
	return u, nil
}

func partNumber(q *request) (int, error) {
	pn, err := strconv.Atoi(q.q.Get("partNumber"))
	if err != nil || pn < 1 || pn > maxParts {
		return 0, errInvalidArgument("Part number must be an integer between 1 and 10000, inclusive")
	}
	return pn, nil
}

// commitPart indexes seg as part pn of the request's upload, replacing
// (and removing) an earlier upload of that part.
func (s *Store) commitPart(q *request, pn int, seg segment) error {
	var old *part
	err := s.db.Update(func(tx *bolt.Tx) error {
		if _, err := readUpload(tx, q); err != nil {
			return err
		}
		b := tx.Bucket(partBkt(q.q.Get("uploadId")))
		prev, ok, err := getJSON[part](b, partKey(pn))
		if err != nil {
			return err
		}
		if ok {
			old = prev
		}
		return putJSON(b, partKey(pn), part{segment: seg, Modified: s.now().UTC()})
	})
	if err != nil {
		s.removeData([]segment{seg})
		return err
	}
	if old != nil {
		s.removeData([]segment{old.segment})
	}
	return nil
}

func (s *Store) uploadPart(q *request) error {
	pn, err := partNumber(q)
	if err != nil {
		return err
	}
	if q.r.ContentLength < 0 {
		return errMissingLength
	}
	if err := s.db.View(func(tx *bolt.Tx) error { _, err := readUpload(tx, q); return err }); err != nil {
		return err
	}
	seg, err := s.writeBody(q)
	if err != nil {
		return err
	}
	if err := s.commitPart(q, pn, seg); err != nil {
		return err
	}
	q.w.Header().Set("ETag", `"`+seg.MD5+`"`)
	q.w.WriteHeader(http.StatusOK)
	return nil
}

// uploadPartCopy makes a part from a range of another object. A range that
// is exactly one of the source's data files (one part of a multipart
// object, or a whole single object) is a hard link: no data is copied.
func (s *Store) uploadPartCopy(q *request) error {
	pn, err := partNumber(q)
	if err != nil {
		return err
	}
	if err := s.db.View(func(tx *bolt.Tx) error { _, err := readUpload(tx, q); return err }); err != nil {
		return err
	}
	sb, sk, err := copySource(q.r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	var seg segment
	for attempt := 0; ; attempt++ {
		seg, err = s.copyRange(q.r.Header, sb, sk)
		if err == nil || !errors.Is(err, fs.ErrNotExist) || attempt == 3 {
			break
		}
	}
	if err != nil {
		return err
	}
	if err := s.commitPart(q, pn, seg); err != nil {
		return err
	}
	return writeXML(q.w, http.StatusOK, struct {
		XMLName      xml.Name `xml:"CopyPartResult"`
		NS           string   `xml:"xmlns,attr"`
		LastModified string
		ETag         string
	}{NS: s3xmlns, LastModified: s.now().UTC().Format(timeFormat), ETag: `"` + seg.MD5 + `"`})
}

func (s *Store) copyRange(h http.Header, bucket, key string) (segment, error) {
	var src *object
	if err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		src, err = readObject(tx, bucket, key)
		return err
	}); err != nil {
		return segment{}, err
	}
	if err := copyConditions(h, src); err != nil {
		return segment{}, err
	}
	off, n := int64(0), src.Size
	if v := h.Get("X-Amz-Copy-Source-Range"); v != "" {
		var first, last int64
		if _, err := fmt.Sscanf(v, "bytes=%d-%d", &first, &last); err != nil || first < 0 || last < first {
			return segment{}, errInvalidArgument("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
		}
		if last >= src.Size {
			return segment{}, errInvalidRange
		}
		off, n = first, last-first+1
	}
	var at int64
	for _, g := range src.Segments {
		if at == off && g.Size == n {
			return s.linkData(g)
		}
		at += g.Size
	}
	files, err := s.openSegments(src.Segments)
	if err != nil {
		return segment{}, err
	}
	defer closeAll(files)
	return s.writeData(segmentReader(src.Segments, files, off, n), n)
}

// dropUpload removes an upload's records and returns its parts' data.
func dropUpload(tx *bolt.Tx, id string) ([]segment, error) {
	var segs []segment
	if b := tx.Bucket(partBkt(id)); b != nil {
		if err := b.ForEach(func(k, v []byte) error {
			var p part
			if err := jsonUnmarshal(v, &p); err != nil {
				return err
			}
			segs = append(segs, p.segment)
			return nil
		}); err != nil {
			return nil, err
		}
		if err := tx.DeleteBucket(partBkt(id)); err != nil {
			return nil, err
		}
	}
	return segs, tx.Bucket(uploadsBkt).Delete([]byte(id))
}

func (s *Store) abortUpload(q *request) error {
	var segs []segment
	err := s.db.Update(func(tx *bolt.Tx) error {
		if _, err := readUpload(tx, q); err != nil {
			return err
		}
		var err error
		segs, err = dropUpload(tx, q.q.Get("uploadId"))
		return err
	})
	if err != nil {
		return err
	}
	s.removeData(segs)
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}

// completeUpload makes the object from the listed parts: their data files
// become the object's, in one index transaction; unlisted parts go.
func (s *Store) completeUpload(q *request) error {
	var req struct {
		Parts []struct {
			PartNumber int
			ETag       string
		} `xml:"Part"`
	}
	if err := q.decodeXML(&req, 4<<20); err != nil {
		return err
	}
	if len(req.Parts) == 0 {
		return errMalformedXML
	}
	for i := 1; i < len(req.Parts); i++ {
		if req.Parts[i].PartNumber <= req.Parts[i-1].PartNumber {
			return errInvalidPartOrder
		}
	}
	id := q.q.Get("uploadId")
	var obj *object
	var garbage []segment
	err := s.db.Update(func(tx *bolt.Tx) error {
		u, err := readUpload(tx, q)
		if err != nil {
			return err
		}
		parts := tx.Bucket(partBkt(id))
		sums := make([]byte, 0, 16*len(req.Parts))
		obj = &object{Modified: s.now().UTC(), Header: u.Header, Tags: u.Tags, Parts: len(req.Parts)}
		for i, rp := range req.Parts {
			p, ok, err := getJSON[part](parts, partKey(rp.PartNumber))
			if err != nil {
				return err
			}
			if !ok || strings.Trim(rp.ETag, `" `) != p.MD5 {
				return errInvalidPart
			}
			if p.Size < minPartSize && i < len(req.Parts)-1 {
				return errEntityTooSmall
			}
			sum, _ := hex.DecodeString(p.MD5)
			sums = append(sums, sum...)
			obj.Segments = append(obj.Segments, p.segment)
			obj.Size += p.Size
		}
		total := newMD5()
		total.Write(sums)
		obj.ETag = hex.EncodeToString(total.Sum(nil)) + "-" + strconv.Itoa(len(req.Parts))
		b := tx.Bucket(objBkt(q.bucket))
		cur, ok, err := getJSON[object](b, []byte(q.key))
		if err != nil {
			return err
		}
		if !ok {
			cur = nil
		}
		if err := writeConditions(q.r.Header, cur); err != nil {
			return err
		}
		all, err := dropUpload(tx, id)
		if err != nil {
			return err
		}
		for _, g := range all {
			if !slices.ContainsFunc(obj.Segments, func(o segment) bool { return o.File == g.File }) {
				garbage = append(garbage, g)
			}
		}
		if cur != nil {
			garbage = append(garbage, cur.Segments...)
		}
		return putJSON(b, []byte(q.key), obj)
	})
	if err != nil {
		return err
	}
	s.removeData(garbage)
	return writeXML(q.w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
		NS       string   `xml:"xmlns,attr"`
		Location string
		Bucket   string
		Key      string
		ETag     string
	}{NS: s3xmlns, Location: "/" + q.bucket + "/" + q.key, Bucket: q.bucket, Key: q.key, ETag: `"` + obj.ETag + `"`})
}

func (s *Store) listParts(q *request) error {
	maxP := 1000
	if v := q.q.Get("max-parts"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errInvalidArgument("Argument max-parts must be an integer between 0 and 2147483647")
		}
		maxP = min(n, 1000)
	}
	marker, _ := strconv.Atoi(q.q.Get("part-number-marker"))
	type partXML struct {
		PartNumber   int
		LastModified string
		ETag         string
		Size         int64
	}
	res := struct {
		XMLName              xml.Name `xml:"ListPartsResult"`
		NS                   string   `xml:"xmlns,attr"`
		Bucket               string
		Key                  string
		UploadId             string
		Initiator            owner
		Owner                owner
		StorageClass         string
		PartNumberMarker     int
		NextPartNumberMarker int
		MaxParts             int
		IsTruncated          bool
		Parts                []partXML `xml:"Part"`
	}{NS: s3xmlns, Bucket: q.bucket, Key: q.key, UploadId: q.q.Get("uploadId"), Initiator: storeOwner, Owner: storeOwner,
		PartNumberMarker: marker, MaxParts: maxP}
	err := s.db.View(func(tx *bolt.Tx) error {
		u, err := readUpload(tx, q)
		if err != nil {
			return err
		}
		res.StorageClass = cmpOr(u.Header["X-Amz-Storage-Class"], "STANDARD")
		c := tx.Bucket(partBkt(res.UploadId)).Cursor()
		for k, v := c.Seek(partKey(marker + 1)); k != nil; k, v = c.Next() {
			var p part
			if err := jsonUnmarshal(v, &p); err != nil {
				return err
			}
			if len(res.Parts) == maxP {
				res.IsTruncated = true
				break
			}
			n, _ := strconv.Atoi(string(k))
			res.Parts = append(res.Parts, partXML{PartNumber: n, LastModified: p.Modified.Format(timeFormat), ETag: `"` + p.MD5 + `"`, Size: p.Size})
			res.NextPartNumberMarker = n
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeXML(q.w, http.StatusOK, res)
}

func (s *Store) listUploads(q *request) error {
	if err := q.only("uploads", "prefix", "delimiter", "key-marker", "upload-id-marker", "max-uploads", "encoding-type"); err != nil {
		return err
	}
	maxU := 1000
	if v := q.q.Get("max-uploads"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errInvalidArgument("Argument max-uploads must be an integer between 0 and 2147483647")
		}
		maxU = min(n, 1000)
	}
	prefix, delimiter := q.q.Get("prefix"), q.q.Get("delimiter")
	keyMarker, idMarker := q.q.Get("key-marker"), q.q.Get("upload-id-marker")
	enc := q.q.Get("encoding-type") == "url"
	encode := func(v string) string {
		if enc {
			return s3URLEncode(v)
		}
		return v
	}
	type item struct {
		id string
		u  upload
	}
	var all []item
	err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketsBkt).Get([]byte(q.bucket)) == nil {
			return errNoSuchBucket
		}
		return tx.Bucket(uploadsBkt).ForEach(func(k, v []byte) error {
			var u upload
			if err := jsonUnmarshal(v, &u); err != nil {
				return err
			}
			if u.Bucket == q.bucket && strings.HasPrefix(u.Key, prefix) {
				all = append(all, item{string(k), u})
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	slices.SortFunc(all, func(a, b item) int {
		if c := strings.Compare(a.u.Key, b.u.Key); c != 0 {
			return c
		}
		if c := a.u.Initiated.Compare(b.u.Initiated); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	type uploadXML struct {
		Key          string
		UploadId     string
		Initiator    owner
		Owner        owner
		StorageClass string
		Initiated    string
	}
	res := struct {
		XMLName            xml.Name `xml:"ListMultipartUploadsResult"`
		NS                 string   `xml:"xmlns,attr"`
		Bucket             string
		KeyMarker          string
		UploadIdMarker     string
		NextKeyMarker      string
		NextUploadIdMarker string
		Prefix             string
		Delimiter          string `xml:",omitempty"`
		MaxUploads         int
		IsTruncated        bool
		EncodingType       string      `xml:",omitempty"`
		Uploads            []uploadXML `xml:"Upload"`
		CommonPrefixes     []commonPrefix
	}{NS: s3xmlns, Bucket: q.bucket, KeyMarker: encode(keyMarker), UploadIdMarker: idMarker, Prefix: encode(prefix),
		Delimiter: encode(delimiter), MaxUploads: maxU}
	if enc {
		res.EncodingType = "url"
	}
	seen := map[string]bool{}
	count := 0
	for _, it := range all {
		if keyMarker != "" && (it.u.Key < keyMarker || it.u.Key == keyMarker && (idMarker == "" || it.id <= idMarker)) {
			continue
		}
		if delimiter != "" {
			if i := strings.Index(it.u.Key[len(prefix):], delimiter); i >= 0 {
				cp := it.u.Key[:len(prefix)+i+len(delimiter)]
				if seen[cp] || cp <= keyMarker {
					continue
				}
				if count == maxU {
					res.IsTruncated = true
					break
				}
				seen[cp] = true
				res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{encode(cp)})
				res.NextKeyMarker, res.NextUploadIdMarker = encode(cp), ""
				count++
				continue
			}
		}
		if count == maxU {
			res.IsTruncated = true
			break
		}
		res.Uploads = append(res.Uploads, uploadXML{Key: encode(it.u.Key), UploadId: it.id, Initiator: storeOwner, Owner: storeOwner,
			StorageClass: cmpOr(it.u.Header["X-Amz-Storage-Class"], "STANDARD"), Initiated: it.u.Initiated.Format(timeFormat)})
		res.NextKeyMarker, res.NextUploadIdMarker = encode(it.u.Key), it.id
		count++
	}
	return writeXML(q.w, http.StatusOK, res)
}
