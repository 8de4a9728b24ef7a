package proxy

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/proxy/checksum"
	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/s3seal/s3seal/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// S3 checksums of multipart objects, over the plaintext. The store sees
// only ciphertext, so none of this goes to it: CreateMultipartUpload's
// algorithm and type are sealed into the pending header (Meta.
// ChecksumAlgorithm, ChecksumType), and the object's checksum is computed
// at completion from the part checksums the client lists in its Complete
// body (each verified over the part's plaintext when the part was
// uploaded, but not remembered by the proxy: a client that lists other
// values gets a checksum of its own making) and sealed into the finalized
// header, where HEAD, GET and GetObjectAttributes read it.

// createChecksum reads CreateMultipartUpload's x-amz-checksum-algorithm and
// x-amz-checksum-type, with S3's defaults and refusals.
func createChecksum(h http.Header) (checksum.Algorithm, checksum.Type, error) {
	av, tv := h.Get("X-Amz-Checksum-Algorithm"), h.Get("X-Amz-Checksum-Type")
	if av == "" {
		if tv != "" {
			return "", "", s3wire.InvalidRequest("The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.")
		}
		return "", "", nil
	}
	alg, ok := checksum.ParseAlgorithm(av)
	if !ok {
		return "", "", s3wire.InvalidRequest("Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
	}
	typ := checksum.DefaultType(alg)
	if tv != "" {
		if typ, ok = checksum.ParseType(tv); !ok {
			return "", "", s3wire.InvalidRequest("Value for x-amz-checksum-type header is invalid.")
		}
	}
	if !checksum.Allowed(alg, typ) {
		return "", "", s3wire.InvalidRequest(fmt.Sprintf("The %s checksum type cannot be used with the %s checksum algorithm.",
			typ, strings.ToLower(string(alg))))
	}
	return alg, typ, nil
}

// completeWant is what a CompleteMultipartUpload request says of the
// object's checksum: the x-amz-checksum-* header (the whole object's
// checksum, not the XML body's) and x-amz-checksum-type.
type completeWant struct {
	alg   checksum.Algorithm // "" if no checksum header
	value string
	typ   checksum.Type // "" if no type header
	// kept is set by finalize: the finalized header's sealed metadata,
	// with the checksum kept (if any).
	kept *envelope.Meta
}

// takeCompleteChecksum moves Complete's x-amz-checksum-* header out of the
// request's body checks (it is the object's, and would never match the XML)
// into a completeWant.
func takeCompleteChecksum(r *request) (*completeWant, error) {
	w := &completeWant{}
	if name := r.auth.ChecksumAlgorithm; name != "" {
		w.alg, _ = checksum.FromHeader(name)
		w.value = r.auth.ChecksumValue
		r.auth.ChecksumAlgorithm, r.auth.ChecksumValue = "", ""
		b64, _ := checksum.SplitParts(w.value)
		if _, err := checksum.Decode(w.alg, b64); err != nil {
			return w, s3wire.InvalidRequest("Value for " + name + " header is invalid.")
		}
	}
	if tv := r.header.Get("X-Amz-Checksum-Type"); tv != "" {
		typ, ok := checksum.ParseType(tv)
		if !ok {
			return w, s3wire.InvalidRequest("Value for x-amz-checksum-type header is invalid.")
		}
		w.typ = typ
	}
	return w, nil
}

// partSums decodes the parts' checksums of algorithm a from the Complete
// body, with sizes (plaintext) from size(i); InvalidRequest names the
// first part without one, as S3 does.
func partSums(a checksum.Algorithm, parts []s3wire.CompletePart, size func(i int) int64) ([]checksum.Part, error) {
	out := make([]checksum.Part, len(parts))
	for i, p := range parts {
		v := p.Get(a.Header())
		if v == "" {
			return nil, s3wire.InvalidRequest(fmt.Sprintf("The upload was created using a %s checksum. The complete request must include the checksum for each part. It was missing for part %d in the request.",
				strings.ToLower(string(a)), p.PartNumber))
		}
		sum, err := checksum.Decode(a, v)
		if err != nil {
			return nil, s3wire.InvalidRequest(fmt.Sprintf("Invalid %s checksum for part %d.", a.Element(), p.PartNumber))
		}
		out[i] = checksum.Part{Sum: sum, Size: size(i)}
	}
	return out, nil
}

// errChecksumMismatch is S3's answer to a Complete whose whole-object
// checksum (or type) is not the object's.
func errChecksumMismatch(a checksum.Algorithm) error {
	return s3wire.NewError(http.StatusBadRequest, "BadDigest",
		"The "+string(a)+" you specified did not match the calculated checksum.")
}

// matches compares the client's expected value with the computed one; a
// composite value may come with or without its "-N".
func (w completeWant) matches(got string) bool {
	if w.value == got {
		return true
	}
	b64, n := checksum.SplitParts(w.value)
	gb64, gn := checksum.SplitParts(got)
	return b64 == gb64 && (n == 0 || n == gn)
}

// precheck checks a Complete's own checksum claims before the store
// completes the upload, so that a mismatch leaves the upload as it was (as
// on S3): the header's whole-object checksum against the one computed from
// the listed part checksums. A FULL_OBJECT CRC needs the parts' plaintext
// sizes, which ListParts gives (the store's word only: finalize recomputes
// with the sizes from the authenticated part headers). The Create's
// algorithm and type are sealed in the pending header, which only the
// completed object shows: finalize checks against those.
func (s *Server) precheck(r *request, w *completeWant, parts []s3wire.CompletePart) error {
	if w.alg == "" {
		return nil // a type alone asks for the upload's checksum, checked in finalize
	}
	// Without a type, the value's form tells: "-N" is COMPOSITE; a bare
	// CRC32 or CRC32C value could be either, and may match either.
	types := []checksum.Type{w.typ}
	if w.typ == "" {
		types = []checksum.Type{checksum.DefaultType(w.alg)}
		if _, n := checksum.SplitParts(w.value); n == 0 && w.alg != checksum.CRC64NVME && checksum.Allowed(w.alg, checksum.FullObject) {
			types = []checksum.Type{checksum.Composite, checksum.FullObject}
		}
	}
	var sizes []int64 // plaintext part sizes, listed once if a FULL_OBJECT needs them
	for _, typ := range types {
		if !checksum.Allowed(w.alg, typ) {
			return s3wire.InvalidRequest(fmt.Sprintf("The %s checksum type cannot be used with the %s checksum algorithm.",
				typ, strings.ToLower(string(w.alg))))
		}
		if typ == checksum.FullObject && sizes == nil && r.upload.Compress != "" {
			// A compressed part's stored size does not give its plaintext
			// size (FORMAT.md 12.2.3): finalize checks the value with the
			// sizes from the part headers.
			return nil
		}
		if typ == checksum.FullObject && sizes == nil {
			listed, err := s.listPartSizes(r)
			var e *s3wire.Error
			if errors.As(err, &e) && e.Code == "NoSuchUpload" {
				// A retried Complete whose upload the store completed
				// already: finalize checks the value, with the sizes
				// from the part headers.
				return nil
			}
			if err != nil {
				return err
			}
			sizes = make([]int64, len(parts))
			for i, p := range parts {
				n, ok := listed[p.PartNumber]
				if !ok {
					return nil // the store's Complete will answer InvalidPart
				}
				sizes[i] = n
			}
		}
		sums, err := partSums(w.alg, parts, func(i int) int64 {
			if sizes == nil {
				return 0 // COMPOSITE: sizes do not matter
			}
			return sizes[i]
		})
		if err != nil {
			return err
		}
		got, err := checksum.Object(w.alg, typ, sums)
		if err != nil {
			return s3wire.Internal(err)
		}
		if w.matches(got) {
			return nil
		}
	}
	return errChecksumMismatch(w.alg)
}

// listPartSizes asks the store for the upload's parts: part number to
// plaintext size.
func (s *Server) listPartSizes(r *request) (map[int]int64, error) {
	sizes := map[int]int64{}
	marker := 0
	for {
		q := "uploadId=" + url.QueryEscape(r.upload.StoreID)
		if marker > 0 {
			q += "&part-number-marker=" + strconv.Itoa(marker)
		}
		var page struct {
			Parts []struct {
				PartNumber int   `xml:"PartNumber"`
				Size       int64 `xml:"Size"`
			} `xml:"Part"`
			IsTruncated bool `xml:"IsTruncated"`
			Next        int  `xml:"NextPartNumberMarker"`
		}
		if err := s.up.DoXML(upstream.NewRequest(http.MethodGet, r.t.RawPath, q), &page); err != nil {
			return nil, err
		}
		for _, p := range page.Parts {
			sizes[p.PartNumber] = p.Size - envelope.PartOverhead
		}
		if !page.IsTruncated || page.Next <= marker {
			return sizes, nil
		}
		marker = page.Next
	}
}

// keepChecksum computes the finalized object's checksum from the Complete
// body (part checksums) and the part map (authenticated plaintext sizes),
// with the algorithm and type sealed at CreateMultipartUpload, or those of
// the Complete request when the Create named none, and puts it in meta. An
// upload with neither keeps no checksum.
//
// It runs after the store has completed the upload, when S3 would have
// refused a Complete that disagrees with its Create (another algorithm or
// type, a part without a checksum). Refusing now would leave an object
// that no reader accepts in place of the key's previous one, so such an
// object is finalized without a checksum, and dropped says why. A
// whole-object checksum that is not the computed one fails (err):
// precheck refused it already unless the store's ListParts disagreed with
// the parts' authenticated headers.
func keepChecksum(meta *envelope.Meta, w completeWant, parts []s3wire.CompletePart, pm *envelope.PartMap) (dropped string, err error) {
	alg, _ := checksum.ParseAlgorithm(meta.ChecksumAlgorithm)
	typ, _ := checksum.ParseType(meta.ChecksumType)
	meta.ChecksumAlgorithm, meta.ChecksumType, meta.Checksum = "", "", nil
	switch {
	case alg == "" && w.alg == "":
		return "", nil
	case alg == "":
		alg, typ = w.alg, w.typ
		if typ == "" {
			typ = checksum.DefaultType(alg)
			if _, n := checksum.SplitParts(w.value); n == 0 && checksum.Allowed(alg, checksum.FullObject) {
				typ = checksum.FullObject
			}
		}
	case w.alg != "" && w.alg != alg:
		return fmt.Sprintf("created with %s, completed with %s", alg, w.alg), nil
	}
	if typ == "" {
		typ = checksum.DefaultType(alg)
	}
	if w.typ != "" && w.typ != typ {
		return fmt.Sprintf("created as %s, completed as %s", typ, w.typ), nil
	}
	sums, err := partSums(alg, parts, func(i int) int64 { _, _, n, _ := pm.Part(i); return n })
	if err != nil {
		return err.Error(), nil
	}
	got, err := checksum.Object(alg, typ, sums)
	if err != nil {
		return "", s3wire.Internal(err)
	}
	if w.value != "" && !w.matches(got) {
		if w.typ == "" {
			// precheck matched it as the other type of a bare CRC value.
			return fmt.Sprintf("the Complete's %s value is of another type than the upload's %s", alg, typ), nil
		}
		return "", s3wire.Damaged(fmt.Errorf("the %s checksum of the completed parts is not the one checked before completion: the store's part list disagrees with the parts", alg))
	}
	meta.Checksum = map[string]string{alg.Header(): got}
	meta.ChecksumType = string(typ)
	return "", nil
}

// checksumType is the type of the checksum sealed in meta.
func checksumType(meta *envelope.Meta) string {
	if meta.ChecksumType != "" {
		return meta.ChecksumType
	}
	return string(checksum.FullObject)
}

// sealedAttributes reads what GetObjectAttributes' Checksum and
// ObjectParts come from, for the object version of store ETag storeTag:
// its sealed metadata (one HEAD; the store's checksums are of the
// ciphertext) and, for a multipart object, its part map verified against
// the sealed manifest (cached per version, as for a read).
func (s *Server) sealedAttributes(r *request, storeTag string) (*envelope.Meta, *envelope.PartMap, error) {
	rq := &readReq{bucket: r.t.Bucket, key: r.t.Key, rawPath: r.t.RawPath, query: s3wire.DropParam(r.storeQuery, "attributes")}
	head := upstream.NewRequest(http.MethodHead, rq.rawPath, rq.query)
	head.Header.Set("If-Match", storeTag)
	resp, err := s.up.Do(head)
	if err != nil {
		return nil, nil, s3wire.Internal(err)
	}
	defer fasthttp.ReleaseResponse(resp)
	if st := resp.StatusCode(); st != http.StatusOK {
		return nil, nil, s3wire.Internal(fmt.Errorf("GetObjectAttributes: HEAD of the object answered %d (replaced meanwhile?)", st))
	}
	hv := string(resp.Header.Peek(s3wire.SealHeader))
	obj, meta, err := s.openSealed(r, hv, r.t.Bucket, r.t.Key)
	if err != nil {
		return nil, nil, err
	}
	defer obj.Close()
	stored := int64(resp.Header.ContentLength())
	if _, err := obj.PlainSize(meta, stored, storeTag); err != nil {
		return nil, nil, s3wire.Damaged(fmt.Errorf("%s/%s: %w", r.t.Bucket, r.t.Key, err))
	}
	if envelope.PartsInETag(storeTag) == 0 {
		return meta, nil, nil
	}
	pm, err := s.partMap(rq, storeTag, hv, stored, obj.Version(), meta)
	if err != nil {
		return nil, nil, err
	}
	return meta, pm, nil
}

// checksumElement is GetObjectAttributes' <Checksum> element for meta's
// checksum; nil when it has none. S3 shows a composite checksum here
// without its "-N".
func checksumElement(meta *envelope.Meta) []byte {
	if len(meta.Checksum) == 0 {
		return nil
	}
	el := struct {
		XMLName xml.Name `xml:"Checksum"`
		s3wire.Checksums
	}{}
	plain := map[string]string{}
	for k, v := range meta.Checksum {
		plain[k], _ = checksum.SplitParts(v)
	}
	el.Set(plain, checksumType(meta))
	b, _ := xml.Marshal(el) // cannot fail: strings
	return b
}

// objectPartsElement is GetObjectAttributes' <ObjectParts> element from a
// verified part map: part numbers and plaintext sizes, paged by the
// x-amz-max-parts and x-amz-part-number-marker headers as S3 pages them.
// The parts' checksums are not kept (a part header has no room for them).
func objectPartsElement(pm *envelope.PartMap, h http.Header) ([]byte, error) {
	maxParts, marker := 1000, 0
	if v := h.Get("X-Amz-Max-Parts"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, s3wire.InvalidArgument("Argument max-parts must be an integer between 0 and 2147483647")
		}
		maxParts = min(n, 1000)
	}
	if v := h.Get("X-Amz-Part-Number-Marker"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, s3wire.InvalidArgument("Argument part-number-marker must be an integer between 0 and 2147483647")
		}
		marker = n
	}
	type part struct {
		PartNumber int   `xml:"PartNumber"`
		Size       int64 `xml:"Size"`
	}
	el := struct {
		XMLName              xml.Name `xml:"ObjectParts"`
		TotalPartsCount      int      `xml:"PartsCount"` // S3 names it so in XML
		PartNumberMarker     int      `xml:"PartNumberMarker"`
		NextPartNumberMarker int      `xml:"NextPartNumberMarker"`
		MaxParts             int      `xml:"MaxParts"`
		IsTruncated          bool     `xml:"IsTruncated"`
		Parts                []part   `xml:"Part"`
	}{TotalPartsCount: pm.Parts(), PartNumberMarker: marker, MaxParts: maxParts}
	for i := range pm.Parts() {
		num, _, size, _ := pm.Part(i)
		if num <= marker {
			continue
		}
		if len(el.Parts) == maxParts {
			el.IsTruncated = true
			break
		}
		el.Parts = append(el.Parts, part{PartNumber: num, Size: size})
		el.NextPartNumberMarker = num
	}
	return xml.Marshal(el)
}

// copyChecksum gives a CopyObject's destination (metadata meta, copied
// from the source's) the checksum its x-amz-checksum-algorithm asks for,
// a FULL_OBJECT checksum of the plaintext as S3 computes it for a copy.
// The source's sealed checksum is reused when it is that algorithm's full-
// object one; otherwise the proxy reads and decrypts the source (pinned to
// store ETag srcTag) to compute it: the object passes through the proxy
// once, which a copy otherwise never makes it do. Without the header the
// destination keeps the source's checksum, as S3 does.
func (s *Server) copyChecksum(r *request, src *s3wire.CopySource, srcTag string, meta *envelope.Meta) error {
	v := r.header.Get("X-Amz-Checksum-Algorithm")
	if v == "" {
		return nil
	}
	alg, ok := checksum.ParseAlgorithm(v)
	if !ok {
		return s3wire.InvalidRequest("Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
	}
	if meta.Checksum[alg.Header()] != "" && checksumType(meta) == string(checksum.FullObject) {
		meta.Checksum = map[string]string{alg.Header(): meta.Checksum[alg.Header()]}
		return nil
	}
	rq := &readReq{bucket: src.Bucket, key: src.Key, rawPath: src.RawPath, query: src.Query(), cond: http.Header{"If-Match": {srcTag}}}
	po, err := s.openCopySource(r, rq)
	if err != nil {
		return err
	}
	defer po.Close()
	h := alg.New()
	if _, err := writeThrough(h, po.body); err != nil {
		return s3wire.Damaged(fmt.Errorf("copy source %s/%s: %w", src.Bucket, src.Key, err))
	}
	meta.Checksum = map[string]string{alg.Header(): base64.StdEncoding.EncodeToString(h.Sum(nil))}
	meta.ChecksumType = ""
	return nil
}
