package proxy

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/s3seal/s3seal/sigv4"
	"github.com/valyala/fasthttp"
)

// Browser form uploads (PostObject, POST to the bucket with a
// multipart/form-data body): the fields before the file say the key, the
// headers and the policy with its signature; the file is encrypted as a
// PUT's body is.
//
// The file's length is not known up front: a form's Content-Length counts
// the fields and boundaries too, and the file part carries no length of
// its own. The envelope needs the plaintext length before the first byte
// (it is sealed in the header, and S3 needs the exact ciphertext length as
// Content-Length), so the file is spooled to a temporary file, bounded by
// the policy's content-length-range and Config.MaxObjectSize, then
// encrypted from there. The spool never holds plaintext: it is written
// through AES-CTR under a random key that lives only in this request's
// memory, so a crash leaves only noise on the proxy's disk.
// (Computing the length from Content-Length minus what precedes and
// follows the file would stream without a spool, but the closing boundary
// is not fixed in length and a chunked form has no Content-Length.)

// maxPostFields bounds the form fields before the file, as S3 does.
const maxPostFields = 64 << 10

// maxPostDrain is how much of a refused form is read before the answer.
const maxPostDrain = 256 << 10

// postObject serves a form upload.
func (s *Server) postObject(r *request) (err error) {
	mt, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return s3wire.ErrPOSTNotMultipart
	}
	src := r.ctx.RequestBodyStream()
	if src == nil {
		src = bytes.NewReader(r.ctx.Request.Body())
	}
	defer func() {
		if err != nil {
			// Refused before the file was read: read a little of it, as
			// net/http does, so that a client still sending gets the
			// answer rather than a reset; the connection closes after.
			_, _ = io.Copy(io.Discard, io.LimitReader(src, maxPostDrain))
		}
	}()
	mr := multipart.NewReader(src, params["boundary"])
	fields := map[string]string{}
	budget := int64(maxPostFields)
	var file *multipart.Part
	for file == nil {
		p, err := mr.NextPart()
		if err == io.EOF {
			return s3wire.ErrPOSTNoFile
		}
		if err != nil {
			return malformedPOST(err)
		}
		name := strings.ToLower(p.FormName())
		if name == "" {
			return s3wire.ErrMalformedPOST
		}
		if name == "file" {
			file = p
			break
		}
		v, err := io.ReadAll(io.LimitReader(p, budget+1))
		if err != nil {
			return malformedPOST(err)
		}
		if budget -= int64(len(v)); budget < 0 {
			return s3wire.ErrPOSTFieldsTooLarge
		}
		if _, dup := fields[name]; dup {
			return s3wire.InvalidArgument("Field " + name + " given more than once")
		}
		fields[name] = string(v)
	}
	key, ok := fields["key"]
	if !ok || key == "" {
		return s3wire.ErrPOSTNoKey
	}
	key = strings.ReplaceAll(key, "${filename}", file.FileName())
	fields["key"] = key
	fields["bucket"] = r.t.Bucket

	auth, err := s.verifier.VerifyPost(fields)
	if err != nil {
		return s3wire.FromAuthError(err)
	}
	if !sameRegion(auth.Region, s.cfg.Region) {
		return s3wire.InvalidArgument("Invalid x-amz-credential: the region '"+auth.Region+"' is wrong; expecting '"+s.cfg.Region+"'").With("Region", s.cfg.Region)
	}
	id, ok := s.cfg.Identities.Lookup(auth.AccessKey)
	if !ok {
		return s3wire.ErrAccessDenied
	}
	if why := id.permit(r.t.Bucket, r.spec.Access); why != "" {
		return denied(why)
	}
	policy, err := sigv4.ParsePostPolicy(fields["policy"])
	if err != nil {
		return s3wire.FromAuthError(err)
	}
	if err := policy.Check(fields, s.cfg.Now()); err != nil {
		return s3wire.FromAuthError(err)
	}
	status, redirect, err := postAnswer(fields)
	if err != nil {
		return err
	}
	if !s.cfg.AllowDotSegments && hasDotSegment(key) {
		return s3wire.NewError(http.StatusBadRequest, "XMinioInvalidResourceName", `Resource name contains bad components such as ".." or ".".`)
	}
	if len(key) > 1024 {
		return s3wire.NewError(http.StatusBadRequest, "KeyTooLongError", "Your key is too long")
	}

	// From here the request is a PUT of the file at the form's key.
	r.auth, r.identity = auth, id
	r.header = s3wire.FormHeaders(fields)
	if s3wire.HasSSEC(r.header) {
		return s3wire.NotImplemented("SSE-C (customer-provided keys) cannot be combined with s3seal's encryption")
	}
	t := *r.t
	t.Key, t.RawPath, t.SignedPath, t.RawQuery, t.Query = key, s3wire.EscapePath(r.t.Bucket, key), "", "", url.Values{}
	r.t, r.storeQuery = &t, ""

	limit := s.cfg.MaxObjectSize
	if policy.HasRange && policy.MaxLength < limit {
		limit = policy.MaxLength
	}
	sp, n, err := spool(file, limit, &s.spool)
	if errors.Is(err, errSpoolFull) {
		r.ctx.Response.Header.Set("Retry-After", "1")
		s.log.Warn("POST upload refused: the spool budget is spent", "id", r.id, "limit", s.spool.limit)
		e := *s3wire.ErrSlowDown
		e.Cause = err
		return &e
	}
	if err != nil {
		return err
	}
	defer sp.Close()
	if n > limit {
		if policy.HasRange && policy.MaxLength == limit {
			return s3wire.FromAuthError(sigv4.ErrPostEntityTooLarge)
		}
		return s3wire.ErrEntityTooLarge
	}
	// S3 ignores what follows the file; read it so the connection can
	// carry the next request, or close it if there is too much.
	if m, _ := io.Copy(io.Discard, io.LimitReader(src, maxPostFields+1)); m > maxPostFields {
		r.ctx.SetConnectionClose()
	}
	if err := policy.CheckLength(n); err != nil {
		return s3wire.FromAuthError(err)
	}
	resp, err := s.storeSealed(r, n, sp)
	if err != nil {
		return err
	}
	defer fasthttp.ReleaseResponse(resp)
	defer resp.CloseBodyStream()
	if resp.StatusCode() != http.StatusOK {
		s.sendUpstream(r, resp, false)
		return nil
	}
	etag := s3wire.ClientETag(string(resp.Header.Peek("ETag")))
	location := "/" + r.t.Bucket + "/" + url.PathEscape(key)
	if host := string(r.ctx.Host()); host != "" {
		scheme := "http"
		if r.ctx.IsTLS() {
			scheme = "https"
		}
		location = scheme + "://" + host + s3wire.EscapePath(r.t.Bucket, key)
	}
	h := &r.ctx.Response.Header
	if v := resp.Header.Peek("X-Amz-Version-Id"); len(v) > 0 {
		h.SetBytesV("X-Amz-Version-Id", v)
	}
	h.Set("ETag", etag)
	h.Set("Location", location)
	if redirect != "" {
		q := url.Values{"bucket": {r.t.Bucket}, "key": {key}, "etag": {etag}}
		sep := "?"
		if strings.Contains(redirect, "?") {
			sep = "&"
		}
		h.Set("Location", redirect+sep+q.Encode())
		r.ctx.SetStatusCode(http.StatusSeeOther)
		return nil
	}
	r.ctx.SetStatusCode(status)
	r.echoSSE()
	if status == http.StatusCreated {
		doc, _ := xml.Marshal(s3wire.PostResponse{Location: location, Bucket: r.t.Bucket, Key: key, ETag: etag})
		h.SetContentType("application/xml")
		r.ctx.SetBody(append([]byte(xml.Header), doc...))
	}
	return nil
}

// postAnswer is the status a successful form upload gets, or the URL to
// redirect to: success_action_redirect if a valid URL, else
// success_action_status 200 or 201, else 204, as S3 answers.
func postAnswer(fields map[string]string) (int, string, error) {
	if v := fields["success_action_redirect"]; v != "" {
		if u, err := url.Parse(v); err == nil && u.Scheme != "" && u.Host != "" {
			return 0, v, nil
		}
	}
	if v := fields["redirect"]; v != "" {
		if u, err := url.Parse(v); err == nil && u.Scheme != "" && u.Host != "" {
			return 0, v, nil
		}
	}
	switch fields["success_action_status"] {
	case "200":
		return http.StatusOK, "", nil
	case "201":
		return http.StatusCreated, "", nil
	}
	return http.StatusNoContent, "", nil
}

func malformedPOST(err error) error {
	e := *s3wire.ErrMalformedPOST
	e.Cause = err
	return &e
}

// DefaultPostSpoolBytes is Config.PostSpoolBytes' default: room for one
// form upload of S3's largest (5 GiB) and some smaller ones beside it.
const DefaultPostSpoolBytes = 8 << 30

// errSpoolFull: the spool budget is spent; the form gets 503 SlowDown.
var errSpoolFull = errors.New("POST spool budget spent")

// spoolBudget bounds the bytes every POST upload's spool holds at once, so
// that concurrent forms cannot fill the proxy's disk. Bytes are taken as
// they are written (a form's file has no length up front) and given back
// when the spool is removed.
type spoolBudget struct {
	limit int64 // < 0: no bound
	used  atomic.Int64
}

func (b *spoolBudget) take(n int64) bool {
	if b.limit < 0 {
		return true
	}
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *spoolBudget) give(n int64) {
	if b.limit >= 0 {
		b.used.Add(-n)
	}
}

// spooled is a file part written to a temporary file under a key of its
// own, read back as the plaintext.
type spooled struct {
	f      *os.File
	r      io.Reader
	budget *spoolBudget
	taken  int64 // bytes of budget held until Close
}

func (s *spooled) Read(p []byte) (int, error) { return s.r.Read(p) }

// Write writes to the spool file what the budget allows.
func (s *spooled) Write(p []byte) (int, error) {
	if !s.budget.take(int64(len(p))) {
		return 0, errSpoolFull
	}
	s.taken += int64(len(p))
	return s.f.Write(p)
}

func (s *spooled) Close() error {
	name := s.f.Name()
	err := s.f.Close()
	_ = os.Remove(name)
	s.budget.give(s.taken)
	s.taken = 0
	return err
}

// spool copies at most limit+1 bytes of src to an AES-CTR-encrypted
// temporary file, within budget, and returns the file positioned to read
// the plaintext back and the count copied (limit+1: too large).
func spool(src io.Reader, limit int64, budget *spoolBudget) (*spooled, int64, error) {
	var key [32]byte
	var iv [aes.BlockSize]byte
	_, _ = rand.Read(key[:])
	_, _ = rand.Read(iv[:])
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, 0, s3wire.Internal(err)
	}
	f, err := os.CreateTemp("", "s3seal-post-*")
	if err != nil {
		return nil, 0, s3wire.Internal(err)
	}
	sp := &spooled{f: f, budget: budget}
	w := &cipher.StreamWriter{S: cipher.NewCTR(block, iv[:]), W: sp}
	n, err := io.Copy(w, io.LimitReader(src, limit+1))
	if err != nil {
		sp.Close()
		var se *s3wire.Error
		if errors.As(err, &se) {
			return nil, 0, se
		}
		if errors.Is(err, errSpoolFull) {
			return nil, 0, err
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "multipart") {
			return nil, 0, malformedPOST(err)
		}
		return nil, 0, bodyError(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		sp.Close()
		return nil, 0, s3wire.Internal(err)
	}
	sp.r = &cipher.StreamReader{S: cipher.NewCTR(block, iv[:]), R: f}
	return sp, n, nil
}

// storeSealed encrypts plainLen bytes of body to the request's path with
// the request's headers as a PutObject does, and returns the store's
// answer.
func (s *Server) storeSealed(r *request, plainLen int64, body io.Reader) (*fasthttp.Response, error) {
	user, err := s3wire.UserMetadata(r.header)
	if err != nil {
		return nil, err
	}
	meta := &envelope.Meta{Size: plainLen, User: user, Headers: s3wire.SealedContentHeaders(r.header)}
	obj, err := s.sealNew(r, envelope.LayoutSingle, meta)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	out := r.outbound(http.MethodPut)
	s3wire.DropContentHeaders(out.Header)
	out.Header.Set(s3wire.SealHeader, obj.HeaderValue())
	encrypt := func(src io.Reader) io.Reader { return obj.EncryptReader(src, plainLen) }
	return s.sendEncrypted(r, out, body, encrypt, envelope.CiphertextSize(plainLen))
}
