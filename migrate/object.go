package migrate

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/objstore"
	"github.com/s3seal/s3seal/kms"
)

// maxCopyObject is the largest object one CopyObject copies (S3's limit).
const maxCopyObject = 5 << 30

// dstKey maps a source key to its destination key: the source prefix
// replaced by the destination's.
func (j *job) dstKey(srcKey string) (string, bool) {
	rest, ok := strings.CutPrefix(srcKey, j.cfg.Src.Prefix)
	if !ok {
		return "", false
	}
	return j.cfg.Dst.Prefix + rest, true
}

// one migrates one source object.
func (j *job) one(ctx context.Context, key string) Result {
	src, dst := j.cfg.Src, j.cfg.Dst
	r := Result{Source: "s3://" + src.Bucket + "/" + key}
	fail := func(err error) Result {
		r.Action, r.Reason = Failed, err.Error()
		j.log.Warn("migrate: failed", "object", r.Source, "err", err)
		return r
	}
	dkey, ok := j.dstKey(key)
	if !ok {
		return fail(fmt.Errorf("key is not under the source prefix %q", src.Prefix))
	}
	r.Dest = "s3://" + dst.Bucket + "/" + dkey
	so, err := src.Store.Head(ctx, src.Bucket, key)
	if err != nil {
		return fail(fmt.Errorf("read the source: %w", err))
	}
	r.Bytes = so.Size
	t := &task{job: j, so: so, dkey: dkey, marker: &envelope.Source{ETag: so.ETag, Size: so.Size, Version: so.VersionID}}
	defer t.close()
	action, mode, err := t.run(ctx)
	if err != nil {
		return fail(err)
	}
	r.Action, r.Mode = action, mode
	if t.keptWrapped {
		r.Mode += ModeKeptWrapped
	}
	if action == Copied && j.cfg.Verify != VerifyNone {
		if err := j.verify(ctx, dkey, t.plainSize); err != nil {
			return fail(fmt.Errorf("copied, but the destination does not verify: %w", err))
		}
	}
	return r
}

// task is one object on its way.
type task struct {
	job    *job
	so     *objstore.Object
	dkey   string
	marker *envelope.Source

	obj       *envelope.Object // the source's, opened
	meta      *envelope.Meta
	plainSize int64
	dk        *kms.DataKey // the destination's
	// keptWrapped: dk is the source header's data key, kept wrapped as it
	// was (related multi-Region keys).
	keptWrapped bool
}

func (t *task) close() {
	if t.obj != nil {
		t.obj.Close()
	}
	if t.dk != nil {
		kms.Zero(t.dk.Plaintext)
	}
}

func (t *task) run(ctx context.Context) (Action, string, error) {
	j := t.job
	if !t.so.Sealed() {
		if !j.cfg.EncryptPlaintext {
			return "", "", errors.New("not an s3seal object (no x-amz-meta-s3seal): pass --encrypt-plaintext to encrypt it on the way")
		}
		if !j.cfg.Rewrap {
			if done, why := t.alreadyThere(ctx); done {
				return Skipped, why, nil
			}
		}
		if j.cfg.DryRun {
			return Planned, ModeEncrypt, nil
		}
		return Copied, ModeEncrypt, t.encryptPlaintext(ctx)
	}
	// A copy already at the destination is found with the destination's
	// KMS alone: a re-run needs no source key for it.
	if !j.cfg.Rewrap {
		if done, why := t.alreadyThere(ctx); done {
			return Skipped, why, nil
		}
	}
	var err error
	if t.obj, t.meta, t.plainSize, err = openSealed(ctx, j.cfg.Src, t.so, "source"); err != nil {
		return "", "", err
	}
	if j.cfg.Rewrap {
		if done, why, err := t.underTarget(ctx); err != nil {
			return "", "", err
		} else if done {
			return Skipped, why, nil
		}
	}
	multipart := t.obj.Layout() == envelope.LayoutMultipart
	mode := ModeStream
	switch {
	case j.cfg.ReencryptData || t.obj.Version() < 2:
		mode = ModeReencrypt
	case multipart:
		mode = ModeParts
	case j.cfg.Rewrap:
		mode = ModeMetadataCopy
	case j.sameSide && t.so.Size <= maxCopyObject:
		mode = ModeServerCopy
	}
	if j.cfg.DryRun {
		if mode != ModeReencrypt && !j.cfg.Rewrap && t.related(ctx) != nil {
			// Said, not checked: a dry run makes no Decrypt call.
			mode += ModeKeepWrapped
		}
		return Planned, mode, nil
	}
	if mode == ModeReencrypt || j.cfg.Rewrap || !t.keepWrapped(ctx) {
		if err := t.newDataKey(ctx); err != nil {
			return "", "", err
		}
	}
	switch {
	case mode == ModeReencrypt && multipart:
		err = t.reencryptParts(ctx)
	case mode == ModeReencrypt:
		err = t.reencryptSingle(ctx)
	case multipart:
		err = t.rewrapParts(ctx)
	default:
		err = t.rewrapSingle(ctx, mode)
	}
	return Copied, mode, err
}

// newDataKey makes the destination data key for this object (from the
// caller's cache, usually).
func (t *task) newDataKey(ctx context.Context) error {
	dst := t.job.cfg.Dst
	dk, err := dst.KMS.GenerateDataKey(ctx, t.job.cfg.DstKeyID, kms.BucketContext(dst.Bucket))
	if err != nil {
		return kmsProblem("destination", t.job.cfg.DstKeyID, "GenerateDataKey", err)
	}
	t.dk = dk
	return nil
}

// related returns the source header's key info when its KMS key and the
// destination key are related multi-Region keys (the same mrk- id, in any
// regions: one key material) and the data key is bound to the same
// encryption context (the destination bucket has the source's name): the
// wrapped key can then stay as it is. nil otherwise.
func (t *task) related(ctx context.Context) *envelope.KeyInfo {
	j := t.job
	h, err := envelope.ParseHeader(t.so.HeaderValue) // opened already
	if err != nil {
		return nil
	}
	ki := h.KeyInfo()
	id := kms.MultiRegionID(ki.KeyID)
	if id == "" || t.so.Bucket != j.cfg.Dst.Bucket {
		return nil
	}
	if kms.MultiRegionID(j.cfg.DstKeyID) != id {
		// An alias: what it names.
		target, err := j.targetKeyID(ctx)
		if err != nil || kms.MultiRegionID(target) != id {
			return nil
		}
	}
	return &ki
}

// keepWrapped reports whether the destination keeps the source header's
// wrapped data key as it is, and if so makes it this object's destination
// data key (t.dk), with no new wrap: when the keys are related (related)
// and the destination KMS unwraps it, one Decrypt call through the
// caller's cache, which also gives the data key the destination's readers
// will get. Anything else takes a new data key under the destination key,
// as for unrelated keys. The header keeps the source's key id: a reader in
// the destination's region uses the replica there (kms/awskms).
func (t *task) keepWrapped(ctx context.Context) bool {
	j := t.job
	ki := t.related(ctx)
	if ki == nil {
		return false
	}
	dek, err := j.cfg.Dst.KMS.Decrypt(ctx, ki.KeyID, ki.Wrapped, kms.BucketContext(j.cfg.Dst.Bucket))
	if err != nil {
		j.log.Warn("migrate: related multi-Region key, but the destination KMS cannot unwrap the data key: re-wrapping",
			"object", t.so.Key, "key", ki.KeyID, "err", err)
		return false
	}
	t.dk = &kms.DataKey{KeyID: ki.KeyID, Plaintext: dek, Ciphertext: ki.Wrapped}
	t.keptWrapped = true
	return true
}

func (t *task) keyInfo() envelope.KeyInfo {
	return envelope.KeyInfo{KeyID: t.dk.KeyID, Wrapped: t.dk.Ciphertext}
}

// destMeta is the source's sealed metadata as the destination carries it.
func (t *task) destMeta() *envelope.Meta {
	m := *t.meta
	m.Origin, m.Create = nil, nil
	if !t.job.cfg.Rewrap {
		m.Source = t.marker
	}
	if t.obj.Version() < 2 && m.Headers == nil {
		// A version 1 object kept its content headers at the store; the
		// version 2 destination seals them.
		m.Headers = contentHeaders(t.so)
	}
	return &m
}

// openSealed opens an object's header with its side's KMS and checks its
// sizes against the store's.
func openSealed(ctx context.Context, side Side, o *objstore.Object, role string) (*envelope.Object, *envelope.Meta, int64, error) {
	h, err := envelope.ParseHeader(o.HeaderValue)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("%s envelope header: %w", role, err)
	}
	ki := h.KeyInfo()
	dek, err := side.KMS.Decrypt(ctx, ki.KeyID, ki.Wrapped, kms.BucketContext(o.Bucket))
	if err != nil {
		return nil, nil, 0, kmsProblem(role, ki.KeyID, "Decrypt", err)
	}
	obj, err := envelope.Open(h, dek, o.Bucket, o.Key)
	kms.Zero(dek)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("open the %s envelope: %w", role, err)
	}
	meta, err := envelope.DecodeMeta(obj.Meta())
	if err == nil {
		var size int64
		if size, err = obj.PlainSize(meta, o.Size, o.ETag); err == nil {
			return obj, meta, size, nil
		}
	}
	obj.Close()
	return nil, nil, 0, fmt.Errorf("%s: %w", role, err)
}

// alreadyThere reports whether the destination holds this source
// version's copy: its header opens with the destination KMS, its sealed
// marker names this source version, and its sizes are true.
func (t *task) alreadyThere(ctx context.Context) (bool, string) {
	dst := t.job.cfg.Dst
	do, err := dst.Store.Head(ctx, dst.Bucket, t.dkey)
	if err != nil || !do.Sealed() {
		return false, ""
	}
	obj, meta, _, err := openSealed(ctx, dst, do, "destination")
	if err != nil {
		return false, ""
	}
	defer obj.Close()
	if meta.Source == nil || *meta.Source != *t.marker {
		return false, ""
	}
	return true, "already at the destination (sealed marker of this source version)"
}

// underTarget reports whether a rewrap has nothing to do: the header and
// every part are under the target key already.
func (t *task) underTarget(ctx context.Context) (bool, string, error) {
	target, err := t.job.targetKeyID(ctx)
	if err != nil {
		return false, "", err
	}
	h, _ := envelope.ParseHeader(t.so.HeaderValue) // opened already
	if h.KeyInfo().KeyID != target {
		return false, "", nil
	}
	if t.obj.Layout() == envelope.LayoutMultipart {
		_, hdrs, err := t.job.cfg.Src.Store.PartHeaders(ctx, t.so)
		if err != nil {
			return false, "", fmt.Errorf("source part headers: %w", err)
		}
		for _, ph := range hdrs {
			if ph.KeyInfo().KeyID != target {
				return false, "", nil
			}
		}
	}
	return true, "already under " + target, nil
}

// targetKeyID is the key id the destination KMS stores for DstKeyID (an
// alias resolves to a key id or ARN).
func (j *job) targetKeyID(ctx context.Context) (string, error) {
	j.targetOnce.Do(func() {
		dk, err := j.cfg.Dst.KMS.GenerateDataKey(ctx, j.cfg.DstKeyID, kms.BucketContext(j.cfg.Dst.Bucket))
		if err != nil {
			j.targetErr = kmsProblem("destination", j.cfg.DstKeyID, "GenerateDataKey", err)
			return
		}
		kms.Zero(dk.Plaintext)
		j.target = dk.KeyID
	})
	return j.target, j.targetErr
}

// rewrapSingle reseals a single object's key for the destination and
// copies its ciphertext unchanged.
func (t *task) rewrapSingle(ctx context.Context, mode string) error {
	j := t.job
	value, err := t.obj.Reseal(t.dk.Plaintext, t.keyInfo(), j.cfg.Dst.Bucket, t.dkey, t.destMeta().Encode())
	if err != nil {
		return fmt.Errorf("reseal the object key: %w", err)
	}
	if mode == ModeServerCopy || mode == ModeMetadataCopy {
		if err := j.serverCopy(ctx, t.so, t.dkey, value); err != nil {
			return err
		}
		j.obs.Moved(t.so.Size)
		return nil
	}
	rc, err := j.cfg.Src.Store.Range(ctx, t.so, 0, t.so.Size)
	if err != nil {
		return fmt.Errorf("read the source: %w", err)
	}
	defer rc.Close()
	return j.put(ctx, t.dkey, value, rc, t.so.Size)
}

// partKeys unwraps the data keys of a multipart object's parts with the
// source KMS, once per wrapped key.
type partKeys struct {
	side   Side
	bucket string
	role   string // "source" or "destination", for errors
	deks   map[string][]byte
}

func (k *partKeys) open(ctx context.Context, ph *envelope.PartHeader, key string, upload []byte) (*envelope.Part, error) {
	ki := ph.KeyInfo()
	dek, ok := k.deks[string(ki.Wrapped)]
	if !ok {
		var err error
		if dek, err = k.side.KMS.Decrypt(ctx, ki.KeyID, ki.Wrapped, kms.BucketContext(k.bucket)); err != nil {
			return nil, kmsProblem(k.role, ki.KeyID, "Decrypt", err)
		}
		if k.deks == nil {
			k.deks = map[string][]byte{}
		}
		k.deks[string(ki.Wrapped)] = dek
	}
	p, err := envelope.OpenPart(ph, dek, k.bucket, key, upload)
	if err != nil {
		return nil, fmt.Errorf("open part %d: %w", ph.PartNumber(), err)
	}
	return p, nil
}

func (k *partKeys) zero() {
	for _, d := range k.deks {
		kms.Zero(d)
	}
}

// sourceParts reads the source's part headers and checks them against its
// sealed manifest.
func (t *task) sourceParts(ctx context.Context) (*envelope.PartMap, []*envelope.PartHeader, error) {
	pm, hdrs, err := t.job.cfg.Src.Store.PartHeaders(ctx, t.so)
	if err == nil {
		err = pm.VerifyFlags(t.obj.Version(), t.obj.Flags(), t.meta)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("source parts: %w", err)
	}
	return pm, hdrs, nil
}

// rewrapParts reseals every part header for the destination and uploads
// the object part by part: each part its new header, then the source
// part's segments and padding, unchanged.
func (t *task) rewrapParts(ctx context.Context) error {
	j := t.job
	pm, hdrs, err := t.sourceParts(ctx)
	if err != nil {
		return err
	}
	pb, pk := t.meta.PartsPath(t.so.Bucket, t.so.Key)
	keys := &partKeys{side: j.cfg.Src, bucket: pb, role: "source"}
	defer keys.zero()
	newHdrs := make([]*envelope.PartHeader, len(hdrs))
	for i, ph := range hdrs {
		p, err := keys.open(ctx, ph, pk, t.meta.Upload)
		if err != nil {
			return err
		}
		newHdrs[i], err = p.Reseal(t.dk.Plaintext, t.keyInfo(), j.cfg.Dst.Bucket, t.dkey)
		p.Close()
		if err != nil {
			return fmt.Errorf("reseal part %d: %w", ph.PartNumber(), err)
		}
	}
	header, err := t.multipartHeader(newHdrs, t.meta.Upload)
	if err != nil {
		return err
	}
	parts := make([]partUpload, len(hdrs))
	for i, nph := range newHdrs {
		_, _, _, start := pm.Part(i)
		end := start + nph.CiphertextSize()
		parts[i] = partUpload{num: nph.PartNumber(), size: nph.CiphertextSize(), body: func(ctx context.Context) (io.ReadCloser, error) {
			rc, err := j.cfg.Src.Store.Range(ctx, t.so, start+envelope.PartHeaderSize, end)
			if err != nil {
				return nil, err
			}
			return readCloser{io.MultiReader(bytes.NewReader(nph.Bytes()), rc), rc}, nil
		}}
	}
	return j.multipart(ctx, t.dkey, header, parts)
}

// multipartHeader is the destination's object header for parts with
// these headers: the manifest over them, sealed with a fresh object key
// (a multipart object's key seals only its metadata).
func (t *task) multipartHeader(hdrs []*envelope.PartHeader, upload []byte) (string, error) {
	npm, err := envelope.PartMapOf(hdrs)
	if err != nil {
		return "", err
	}
	meta := t.destMeta()
	meta.Size, meta.Upload = -1, upload
	// A source whose parts may be compressed (FORMAT.md 12.2.3) keeps the
	// flag: its compressed parts are carried over as they are.
	cfg := envelope.Config{Flags: t.obj.Flags() & envelope.FlagCompressed}
	if meta.Manifest, err = npm.ManifestFlags(upload, cfg.Flags); err != nil {
		return "", err
	}
	o, err := cfg.NewObject(t.dk.Plaintext, t.keyInfo(), t.job.cfg.Dst.Bucket, t.dkey, envelope.LayoutMultipart, meta.Encode())
	if err != nil {
		return "", fmt.Errorf("seal the destination header: %w", err)
	}
	defer o.Close()
	return o.HeaderValue(), nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// reencryptSingle decrypts a single object and encrypts it anew.
func (t *task) reencryptSingle(ctx context.Context) error {
	j := t.job
	meta := t.destMeta()
	meta.Compression = nil // written uncompressed (version 2)
	o, err := envelope.NewObject(t.dk.Plaintext, t.keyInfo(), j.cfg.Dst.Bucket, t.dkey, envelope.LayoutSingle, meta.Encode())
	if err != nil {
		return fmt.Errorf("seal the destination header: %w", err)
	}
	defer o.Close()
	rc, err := j.cfg.Src.Store.Range(ctx, t.so, 0, t.so.Size)
	if err != nil {
		return fmt.Errorf("read the source: %w", err)
	}
	defer rc.Close()
	plain := t.obj.WholeReader(rc, t.plainSize)
	return j.put(ctx, t.dkey, o.HeaderValue(), o.EncryptReader(plain, t.plainSize), envelope.CiphertextSize(t.plainSize))
}

// reencryptParts decrypts a multipart object part by part and encrypts
// each part anew (fresh part keys, a fresh upload identity), keeping the
// part sizes.
func (t *task) reencryptParts(ctx context.Context) error {
	j := t.job
	pm, hdrs, err := t.sourceParts(ctx)
	if err != nil {
		return err
	}
	upload, err := envelope.NewUploadID()
	if err != nil {
		return err
	}
	newParts := make([]*envelope.Part, len(hdrs))
	defer func() {
		for _, p := range newParts {
			if p != nil {
				p.Close()
			}
		}
	}()
	newHdrs := make([]*envelope.PartHeader, len(hdrs))
	for i, ph := range hdrs {
		if newParts[i], err = envelope.NewPart(t.dk.Plaintext, t.keyInfo(), j.cfg.Dst.Bucket, t.dkey, upload, ph.PartNumber(), ph.PlainLen()); err != nil {
			return err
		}
		newHdrs[i] = newParts[i].Header()
	}
	header, err := t.multipartHeader(newHdrs, upload)
	if err != nil {
		return err
	}
	pb, pk := t.meta.PartsPath(t.so.Bucket, t.so.Key)
	keys := &partKeys{side: j.cfg.Src, bucket: pb, role: "source"}
	defer keys.zero()
	parts := make([]partUpload, len(hdrs))
	for i, ph := range hdrs {
		_, _, _, start := pm.Part(i)
		np := newParts[i]
		parts[i] = partUpload{num: ph.PartNumber(), size: np.CiphertextSize(), body: func(ctx context.Context) (io.ReadCloser, error) {
			rc, err := j.cfg.Src.Store.Range(ctx, t.so, start, start+ph.CiphertextSize())
			if err != nil {
				return nil, err
			}
			var buf [envelope.PartHeaderSize]byte
			if _, err := io.ReadFull(rc, buf[:]); err != nil {
				rc.Close()
				return nil, err
			}
			got, err := envelope.ParsePartHeader(buf[:])
			if err == nil {
				err = pm.Check(i, got)
			}
			var p *envelope.Part
			if err == nil {
				p, err = keys.open(ctx, got, pk, t.meta.Upload)
			}
			if err != nil {
				rc.Close()
				return nil, err
			}
			plain := p.DecryptReader(rc, 0, p.PlainLen())
			return readCloser{np.EncryptReader(plain), closerFunc(func() error { p.Close(); return rc.Close() })}, nil
		}}
	}
	return j.multipart(ctx, t.dkey, header, parts)
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// contentHeaders are the content headers a store keeps in clear, as
// sealed metadata holds them; a default Content-Type is left out.
func contentHeaders(o *objstore.Object) map[string]string {
	var m map[string]string
	for k, v := range o.Content {
		if k == "Content-Type" && (v == "application/octet-stream" || v == "binary/octet-stream") {
			continue
		}
		if m == nil {
			m = map[string]string{}
		}
		m[k] = v
	}
	return m
}

// encryptPlaintext encrypts an object s3seal did not write, as the proxy
// would have on a PUT (or, above PlainPartSize, a multipart upload of
// PlainPartSize parts). Its store ETag, when it is an MD5, becomes the
// sealed plaintext MD5, checked over the body before the upload can
// complete.
func (t *task) encryptPlaintext(ctx context.Context) error {
	j := t.job
	size := t.so.Size
	for k := range t.so.User {
		if k == objstore.SealKey || strings.HasPrefix(k, objstore.SealKey+"-") {
			return fmt.Errorf("user metadata x-amz-meta-%s is reserved by s3seal", k)
		}
	}
	meta := &envelope.Meta{Size: size, User: t.so.User, Headers: contentHeaders(t.so), Source: t.marker}
	if err := t.newDataKey(ctx); err != nil {
		return err
	}
	t.plainSize = size
	if size <= j.cfg.PlainPartSize {
		var sum []byte
		if tag := strings.Trim(t.so.ETag, `"`); len(tag) == 32 {
			sum, _ = hex.DecodeString(tag)
		}
		err := t.putPlain(ctx, meta, sum)
		if errors.Is(err, errNotMD5) {
			// The store's ETag was no MD5 (SSE, compression, ...): the PUT
			// failed before it completed; store it without one.
			err = t.putPlain(ctx, meta, nil)
		}
		return err
	}
	upload, err := envelope.NewUploadID()
	if err != nil {
		return err
	}
	n := int((size + j.cfg.PlainPartSize - 1) / j.cfg.PlainPartSize)
	if n > envelope.MaxPartNumber {
		return fmt.Errorf("%d bytes in parts of %d: more than %d parts", size, j.cfg.PlainPartSize, envelope.MaxPartNumber)
	}
	newParts := make([]*envelope.Part, n)
	defer func() {
		for _, p := range newParts {
			if p != nil {
				p.Close()
			}
		}
	}()
	hdrs := make([]*envelope.PartHeader, n)
	for i := range n {
		l := min(j.cfg.PlainPartSize, size-int64(i)*j.cfg.PlainPartSize)
		if newParts[i], err = envelope.NewPart(t.dk.Plaintext, t.keyInfo(), j.cfg.Dst.Bucket, t.dkey, upload, i+1, l); err != nil {
			return err
		}
		hdrs[i] = newParts[i].Header()
	}
	npm, err := envelope.PartMapOf(hdrs)
	if err != nil {
		return err
	}
	meta.Size, meta.Upload = -1, upload
	if meta.Manifest, err = npm.Manifest(upload); err != nil {
		return err
	}
	o, err := envelope.NewObject(t.dk.Plaintext, t.keyInfo(), j.cfg.Dst.Bucket, t.dkey, envelope.LayoutMultipart, meta.Encode())
	if err != nil {
		return fmt.Errorf("seal the destination header: %w", err)
	}
	defer o.Close()
	parts := make([]partUpload, n)
	for i, np := range newParts {
		from := int64(i) * j.cfg.PlainPartSize
		parts[i] = partUpload{num: i + 1, size: np.CiphertextSize(), body: func(ctx context.Context) (io.ReadCloser, error) {
			rc, err := j.cfg.Src.Store.Range(ctx, t.so, from, from+np.PlainLen())
			if err != nil {
				return nil, err
			}
			return readCloser{np.EncryptReader(rc), rc}, nil
		}}
	}
	return j.multipart(ctx, t.dkey, o.HeaderValue(), parts)
}

// putPlain encrypts the plaintext source as a single object, with sum as
// its sealed MD5 if not nil (checked over the body: errNotMD5 if wrong).
func (t *task) putPlain(ctx context.Context, meta *envelope.Meta, sum []byte) error {
	j := t.job
	size := t.so.Size
	m := *meta
	if sum != nil {
		m.MD5 = base64.StdEncoding.EncodeToString(sum)
	}
	o, err := envelope.NewObject(t.dk.Plaintext, t.keyInfo(), j.cfg.Dst.Bucket, t.dkey, envelope.LayoutSingle, m.Encode())
	if err != nil {
		return fmt.Errorf("seal the destination header: %w", err)
	}
	defer o.Close()
	rc, err := j.cfg.Src.Store.Range(ctx, t.so, 0, size)
	if err != nil {
		return fmt.Errorf("read the source: %w", err)
	}
	defer rc.Close()
	var plain io.Reader = rc
	check := &md5Check{r: rc, h: md5.New(), want: sum}
	if sum != nil {
		plain = check
	}
	err = j.put(ctx, t.dkey, o.HeaderValue(), o.EncryptReader(plain, size), envelope.CiphertextSize(size))
	if err != nil && check.mismatch {
		return errNotMD5
	}
	return err
}

// errNotMD5: a source's ETag is not the MD5 of its body.
var errNotMD5 = errors.New("the source's ETag is not the MD5 of its body")

// md5Check passes r through and fails at its end, before io.EOF, when the
// MD5 of what passed is not want: the encrypting reader then never emits
// the final segment, and the upload fails.
type md5Check struct {
	r        io.Reader
	h        hash.Hash
	want     []byte
	mismatch bool
}

func (m *md5Check) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	m.h.Write(p[:n])
	if err == io.EOF && !bytes.Equal(m.h.Sum(nil), m.want) {
		m.mismatch = true
		return n, errNotMD5
	}
	return n, err
}
