//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	p11 "github.com/miekg/pkcs11"

	"github.com/s3seal/s3seal/kms"
)

const (
	nonceLen = 12
	tagBits  = 128
	// retryAfter is how long a failed connection's error is answered
	// before the HSM is tried again, so that a dead HSM costs one attempt
	// per period, not one per request.
	retryAfter = time.Second
)

// modules are the PKCS#11 modules this process has initialized. C_Initialize
// and C_Finalize act on the whole process, so one module serves every
// Store that names it, finalized when the last one closes.
var modules = struct {
	sync.Mutex
	m map[string]*module
}{m: map[string]*module{}}

type module struct {
	path string
	ctx  *p11.Ctx
	refs int
}

func acquireModule(path string) (*module, error) {
	modules.Lock()
	defer modules.Unlock()
	if m, ok := modules.m[path]; ok {
		m.refs++
		return m, nil
	}
	ctx := p11.New(path)
	if ctx == nil {
		return nil, disconnected(fmt.Sprintf("cannot load the PKCS#11 module %s", path), nil)
	}
	if err := ctx.Initialize(); err != nil && !errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		ctx.Destroy()
		// A module that loads but cannot start (SoftHSM without its token
		// directory, an HSM client without its configuration) will not
		// start by itself either: answered at once, tried again once a
		// second.
		return nil, disconnected(fmt.Sprintf("the PKCS#11 module %s failed to initialize", path), err)
	}
	m := &module{path: path, ctx: ctx, refs: 1}
	modules.m[path] = m
	return m, nil
}

func (m *module) release() {
	modules.Lock()
	defer modules.Unlock()
	m.refs--
	if m.refs > 0 {
		return
	}
	delete(modules.m, m.path)
	m.ctx.Finalize()
	m.ctx.Destroy()
}

// Store is a PKCS#11 key store: one token of one module. It connects on
// first use and again after the HSM failed (at most once per second), so
// that an HSM that is down when s3seal starts, or goes away and comes back,
// costs its keys' requests a KMS error, not the process.
type Store struct {
	cfg      Config
	sem      chan struct{}  // one slot per session in use
	inflight sync.WaitGroup // calls on the HSM, abandoned ones included

	mu        sync.Mutex
	mod       *module
	slot      uint
	connected bool
	idle      []p11.SessionHandle
	handles   map[string]p11.ObjectHandle
	pinErr    error // a rejected PIN: never tried again
	lastErr   error
	lastTry   time.Time
	closed    bool
}

// Open returns a store for cfg. It does not touch the HSM: Check does.
func Open(cfg Config) (*Store, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return &Store{cfg: cfg, sem: make(chan struct{}, cfg.MaxSessions), handles: map[string]p11.ObjectHandle{}}, nil
}

// Type implements keyring.KeyStore.
func (s *Store) Type() string { return Type }

// Token implements keyring.KeyStore.
func (s *Store) Token() string { return s.cfg.TokenLabel }

// Check connects to the token (module, token, PIN) and reports why it
// cannot.
func (s *Store) Check(ctx context.Context) error {
	_, err := s.do(ctx, func(p11.SessionHandle) ([]byte, error) { return nil, nil })
	return err
}

// Close closes the sessions and releases the module, once every call on
// the HSM has returned: unloading the module under a call would crash the
// process. If a call is still hung after CallTimeout, the module stays
// loaded (and the call's session open) rather than that.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.disconnect()
	s.mu.Unlock()
	returned := make(chan struct{})
	go func() { s.inflight.Wait(); close(returned) }()
	select {
	case <-returned:
	case <-time.After(s.cfg.CallTimeout):
		return unavailable(fmt.Sprintf("token %q: a call has not returned; the module stays loaded", s.cfg.TokenLabel), nil)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mod != nil {
		s.mod.release()
		s.mod = nil
	}
	return nil
}

// unavailable is a failure that may pass (a session or device error):
// KeyUnavailableException, which the proxy retries and then answers 503
// SlowDown.
func unavailable(msg string, err error) error {
	return &kms.Error{Code: kms.CodeKeyUnavailable, Message: "HSM unavailable: " + msg, Err: err}
}

// disconnected is a failure that will not pass by itself (no module, a
// refused PIN, no such token or key): KMSInvalidStateException, as AWS KMS
// answers for a key in a disconnected custom key store, which is not
// retried and reaches S3 clients as 400 KMS.KMSInvalidStateException.
func disconnected(msg string, err error) error {
	return &kms.Error{Code: kms.CodeInvalidState, Message: "HSM key store disconnected: " + msg, Err: err}
}

// connect finds the token and logs in (mu held).
func (s *Store) connect() error {
	if s.closed {
		return disconnected("the key store is closed", nil)
	}
	if s.pinErr != nil {
		return s.pinErr
	}
	if s.lastErr != nil && time.Since(s.lastTry) < retryAfter {
		return s.lastErr
	}
	s.lastTry = time.Now()
	err := s.connectOnce()
	s.lastErr = err
	return err
}

func (s *Store) connectOnce() error {
	if s.mod == nil {
		m, err := acquireModule(s.cfg.Module)
		if err != nil {
			return err
		}
		s.mod = m
	}
	c := s.mod.ctx
	slots, err := c.GetSlotList(true)
	if err != nil {
		return unavailable("cannot list the module's slots", err)
	}
	var found []uint
	for _, sl := range slots {
		ti, err := c.GetTokenInfo(sl)
		if err == nil && strings.TrimRight(ti.Label, " \x00") == s.cfg.TokenLabel {
			found = append(found, sl)
		}
	}
	switch len(found) {
	case 0:
		return disconnected(fmt.Sprintf("no token labelled %q in %s", s.cfg.TokenLabel, s.cfg.Module), nil)
	case 1:
	default:
		return disconnected(fmt.Sprintf("%d tokens are labelled %q in %s: which holds the keys is ambiguous", len(found), s.cfg.TokenLabel, s.cfg.Module), nil)
	}
	sh, err := c.OpenSession(found[0], p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		return unavailable(fmt.Sprintf("cannot open a session on token %q", s.cfg.TokenLabel), err)
	}
	if err := c.Login(sh, p11.CKU_USER, s.cfg.PIN); err != nil && !errors.Is(err, p11.Error(p11.CKR_USER_ALREADY_LOGGED_IN)) {
		c.CloseSession(sh)
		if isPINError(err) {
			// Another try could lock the PIN (HSMs count failures), and
			// the PIN will not change under a running process.
			s.pinErr = disconnected(fmt.Sprintf("token %q refused the PIN (not tried again: fix S3SEAL_PKCS11_PIN or S3SEAL_PKCS11_PIN_FILE and restart)", s.cfg.TokenLabel), err)
			return s.pinErr
		}
		return unavailable(fmt.Sprintf("cannot log in to token %q", s.cfg.TokenLabel), err)
	}
	s.slot, s.connected = found[0], true
	s.idle = append(s.idle, sh)
	return nil
}

func isPINError(err error) bool {
	for _, c := range []uint{p11.CKR_PIN_INCORRECT, p11.CKR_PIN_LOCKED, p11.CKR_PIN_INVALID, p11.CKR_PIN_LEN_RANGE, p11.CKR_PIN_EXPIRED} {
		if errors.Is(err, p11.Error(c)) {
			return true
		}
	}
	return false
}

// disconnect closes every idle session and forgets the token (mu held).
// Sessions in use are closed when they are handed back.
func (s *Store) disconnect() {
	if s.mod != nil {
		for _, sh := range s.idle {
			s.mod.ctx.CloseSession(sh)
		}
	}
	s.idle, s.connected = nil, false
	clear(s.handles)
}

// session returns a logged-in session; hand it back with done.
func (s *Store) session(ctx context.Context) (p11.SessionHandle, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, &kms.Error{Code: kms.CodeUnavailable, Message: "waiting for an HSM session", Err: ctx.Err()}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.connected {
		if err := s.connect(); err != nil {
			<-s.sem
			return 0, err
		}
	}
	if n := len(s.idle); n > 0 {
		sh := s.idle[n-1]
		s.idle = s.idle[:n-1]
		return sh, nil
	}
	sh, err := s.mod.ctx.OpenSession(s.slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		s.disconnect()
		<-s.sem
		return 0, unavailable(fmt.Sprintf("cannot open a session on token %q", s.cfg.TokenLabel), err)
	}
	return sh, nil
}

// done hands a session back. After an HSM failure (anything but a
// ciphertext that fails authentication or a missing key) the store
// disconnects, so that the next call finds the token and logs in afresh.
func (s *Store) done(sh p11.SessionHandle, err error) {
	defer func() { <-s.sem }()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mod == nil { // closed meanwhile: Close closed every session
		return
	}
	var p11err p11.Error
	hsmFailed := errors.As(err, &p11err) && kms.ErrorCode(err) != kms.CodeInvalidCiphertext
	if hsmFailed || s.closed || !s.connected {
		s.mod.ctx.CloseSession(sh)
		s.disconnect()
		return
	}
	s.idle = append(s.idle, sh)
}

// authFailure reports whether C_Decrypt's err means the ciphertext failed
// authentication. PKCS#11 says CKR_ENCRYPTED_DATA_INVALID, and most HSMs
// do; SoftHSM 2 answers a GCM tag mismatch with CKR_GENERAL_ERROR, which
// an HSM also uses for real failures. So a general error counts as a bad
// ciphertext only if the session is still alive afterwards: a device that
// failed fails C_GetSessionInfo too, and is then reported unavailable.
func (s *Store) authFailure(sh p11.SessionHandle, err error) bool {
	var e p11.Error
	if !errors.As(err, &e) {
		return false
	}
	switch uint(e) {
	case p11.CKR_ENCRYPTED_DATA_INVALID, p11.CKR_ENCRYPTED_DATA_LEN_RANGE:
		return true
	case p11.CKR_GENERAL_ERROR, p11.CKR_FUNCTION_FAILED:
		info, ierr := s.mod.ctx.GetSessionInfo(sh)
		return ierr == nil && info.State == p11.CKS_RW_USER_FUNCTIONS
	}
	return false
}

// key finds the key labelled label, refusing one that could leave the HSM.
func (s *Store) key(sh p11.SessionHandle, label string) (p11.ObjectHandle, error) {
	s.mu.Lock()
	h, ok := s.handles[label]
	s.mu.Unlock()
	if ok {
		return h, nil
	}
	hs, err := s.find(sh, label)
	if err != nil {
		return 0, err
	}
	switch len(hs) {
	case 0:
		return 0, &kms.Error{Code: kms.CodeInvalidState, Message: fmt.Sprintf("token %q has no AES key labelled %q (was it deleted from the HSM, or is this another token?)", s.cfg.TokenLabel, label)}
	case 1:
	default:
		return 0, &kms.Error{Code: kms.CodeInvalidState, Message: fmt.Sprintf("token %q has %d AES keys labelled %q: which one is the key is ambiguous, so none is used", s.cfg.TokenLabel, len(hs), label)}
	}
	attrs, err := s.mod.ctx.GetAttributeValue(sh, hs[0], []*p11.Attribute{
		p11.NewAttribute(p11.CKA_SENSITIVE, nil),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, nil),
	})
	if err != nil {
		return 0, err
	}
	for _, a := range attrs {
		bad := len(a.Value) != 1 ||
			a.Type == p11.CKA_SENSITIVE && a.Value[0] == 0 ||
			a.Type == p11.CKA_EXTRACTABLE && a.Value[0] != 0
		if bad {
			return 0, &kms.Error{Code: kms.CodeInvalidState, Message: fmt.Sprintf("the key labelled %q in token %q is extractable or not sensitive: s3seal uses only keys that cannot leave the HSM", label, s.cfg.TokenLabel)}
		}
	}
	s.mu.Lock()
	s.handles[label] = hs[0]
	s.mu.Unlock()
	return hs[0], nil
}

func (s *Store) find(sh p11.SessionHandle, label string) ([]p11.ObjectHandle, error) {
	c := s.mod.ctx
	if err := c.FindObjectsInit(sh, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_LABEL, label),
	}); err != nil {
		return nil, err
	}
	hs, _, err := c.FindObjects(sh, 2)
	if ferr := c.FindObjectsFinal(sh); err == nil {
		err = ferr
	}
	return hs, err
}

// opErr makes an HSM error a kms.Error: one that says the token cannot
// do what s3seal asks (no such mechanism, the key not allowed to) is
// for good, any other may pass.
func (s *Store) opErr(what string, err error) error {
	var ke *kms.Error
	if errors.As(err, &ke) {
		return err
	}
	var e p11.Error
	if errors.As(err, &e) {
		switch uint(e) {
		case p11.CKR_MECHANISM_INVALID, p11.CKR_MECHANISM_PARAM_INVALID, p11.CKR_KEY_FUNCTION_NOT_PERMITTED, p11.CKR_KEY_TYPE_INCONSISTENT:
			return disconnected(fmt.Sprintf("%s in token %q is not possible", what, s.cfg.TokenLabel), err)
		}
	}
	return unavailable(fmt.Sprintf("%s in token %q failed", what, s.cfg.TokenLabel), err)
}

// CreateKey implements keyring.KeyStore: an AES-256 key that never leaves
// the token.
func (s *Store) CreateKey(ctx context.Context, label string) error {
	_, err := s.do(ctx, func(sh p11.SessionHandle) ([]byte, error) { return nil, s.createKey(sh, label) })
	return err
}

func (s *Store) createKey(sh p11.SessionHandle, label string) error {
	hs, err := s.find(sh, label)
	if err != nil {
		return s.opErr("looking up a key", err)
	}
	if len(hs) > 0 {
		return &kms.Error{Code: kms.CodeAlreadyExists, Message: fmt.Sprintf("token %q already holds a key labelled %q", s.cfg.TokenLabel, label)}
	}
	_, err = s.mod.ctx.GenerateKey(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_GEN, nil)}, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
		p11.NewAttribute(p11.CKA_VALUE_LEN, 32),
		// Found again by label; no CKA_ID, whose form HSMs restrict
		// (YubiHSM 2: a 16-bit number).
		p11.NewAttribute(p11.CKA_LABEL, label),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
		p11.NewAttribute(p11.CKA_ENCRYPT, true),
		p11.NewAttribute(p11.CKA_DECRYPT, true),
		// Only GCM through this store: no wrapping other keys out, no
		// signing or deriving.
		p11.NewAttribute(p11.CKA_WRAP, false),
		p11.NewAttribute(p11.CKA_UNWRAP, false),
		p11.NewAttribute(p11.CKA_SIGN, false),
		p11.NewAttribute(p11.CKA_VERIFY, false),
		p11.NewAttribute(p11.CKA_DERIVE, false),
	})
	if err != nil {
		return s.opErr("creating a key", err)
	}
	// Try the key now, so that an HSM without AES-GCM (with additional
	// data) fails here, with the reason, and not at the first object.
	if err = s.selfTest(sh, label); err != nil {
		s.mu.Lock()
		delete(s.handles, label)
		s.mu.Unlock()
		if hs, ferr := s.find(sh, label); ferr == nil && len(hs) == 1 {
			s.mod.ctx.DestroyObject(sh, hs[0])
		}
		return disconnected(fmt.Sprintf("token %q made the key but cannot seal and open with it under CKM_AES_GCM (the key was destroyed)", s.cfg.TokenLabel), err)
	}
	return nil
}

// selfTest seals and opens a value under the key labelled label.
func (s *Store) selfTest(sh p11.SessionHandle, label string) error {
	want := []byte("s3seal pkcs11 self-test")
	aad := []byte("s3seal pkcs11 self-test aad")
	sealed, err := s.seal(sh, label, want, aad)
	if err != nil {
		return err
	}
	got, err := s.open(sh, label, sealed, aad)
	if err != nil {
		return err
	}
	if string(got) != string(want) {
		return errors.New("the value opened differs from the one sealed")
	}
	return nil
}

// Seal implements keyring.KeyStore.
func (s *Store) Seal(ctx context.Context, label string, pt, aad []byte) ([]byte, error) {
	// Copies: an abandoned call (do) still reads them after we return.
	pt, aad = bytes.Clone(pt), bytes.Clone(aad)
	return s.do(ctx, func(sh p11.SessionHandle) ([]byte, error) {
		defer clear(pt)
		return s.seal(sh, label, pt, aad)
	})
}

func (s *Store) seal(sh p11.SessionHandle, label string, pt, aad []byte) ([]byte, error) {
	h, err := s.key(sh, label)
	if err != nil {
		return nil, s.opErr("finding the key", err)
	}
	iv := make([]byte, nonceLen)
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	params := p11.NewGCMParams(iv, aad, tagBits)
	defer params.Free()
	c := s.mod.ctx
	if err = c.EncryptInit(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_GCM, params)}, h); err != nil {
		return nil, s.opErr("AES-GCM encryption", err)
	}
	ct, err := c.Encrypt(sh, pt)
	if err != nil {
		return nil, s.opErr("AES-GCM encryption", err)
	}
	// Some HSMs (CloudHSM) choose the nonce themselves and write it back
	// over ours: keep the one that was used.
	if used := params.IV(); used != nil {
		iv = used
	}
	if len(iv) != nonceLen {
		return nil, unavailable(fmt.Sprintf("the HSM used a %d-byte GCM nonce, want %d", len(iv), nonceLen), nil)
	}
	return append(iv, ct...), nil
}

// Open implements keyring.KeyStore.
func (s *Store) Open(ctx context.Context, label string, sealed, aad []byte) (pt []byte, err error) {
	if len(sealed) < nonceLen+tagBits/8 {
		return nil, invalidCiphertext(nil)
	}
	sealed, aad = bytes.Clone(sealed), bytes.Clone(aad)
	return s.do(ctx, func(sh p11.SessionHandle) ([]byte, error) { return s.open(sh, label, sealed, aad) })
}

// testHookInCall, if set, runs in every call on the HSM (a test makes
// the HSM slow with it).
var testHookInCall func()

// do runs fn on a session and hands the session back. A PKCS#11 call
// cannot be cancelled, and a network HSM's module may wait long, so do
// waits at most CallTimeout (and ctx): the caller then gets
// KeyUnavailableException while fn finishes in the background, holding
// its session until then (so at most MaxSessions calls hang at once), and
// what it returns late is zeroed.
func (s *Store) do(ctx context.Context, fn func(sh p11.SessionHandle) ([]byte, error)) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	// Counted before taking a session, and only while open (under mu, as
	// Close sets closed), so that Close's Wait never races an Add.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, disconnected("the key store is closed", nil)
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	sh, err := s.session(ctx)
	if err != nil {
		s.inflight.Done()
		return nil, err
	}
	type result struct {
		b   []byte
		err error
	}
	res := make(chan result, 1)
	go func() {
		defer s.inflight.Done()
		if testHookInCall != nil {
			testHookInCall()
		}
		b, err := fn(sh)
		s.done(sh, err)
		res <- result{b, err}
	}()
	select {
	case r := <-res:
		return r.b, r.err
	case <-ctx.Done():
		go func() { clear((<-res).b) }()
		return nil, unavailable(fmt.Sprintf("token %q did not answer within %s", s.cfg.TokenLabel, s.cfg.CallTimeout), ctx.Err())
	}
}

func (s *Store) open(sh p11.SessionHandle, label string, sealed, aad []byte) (pt []byte, err error) {
	h, err := s.key(sh, label)
	if err != nil {
		return nil, s.opErr("finding the key", err)
	}
	params := p11.NewGCMParams(sealed[:nonceLen], aad, tagBits)
	defer params.Free()
	c := s.mod.ctx
	if err = c.DecryptInit(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_GCM, params)}, h); err != nil {
		return nil, s.opErr("AES-GCM decryption", err)
	}
	pt, err = c.Decrypt(sh, sealed[nonceLen:])
	if err != nil && s.authFailure(sh, err) {
		return nil, invalidCiphertext(err)
	}
	if err != nil {
		return nil, s.opErr("AES-GCM decryption", err)
	}
	return pt, nil
}

func invalidCiphertext(err error) error {
	return &kms.Error{Code: kms.CodeInvalidCiphertext, Message: "The ciphertext is invalid, or was wrapped under another key or encryption context.", Err: err}
}
