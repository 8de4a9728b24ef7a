package envelope

import (
	"fmt"
)

// Asymmetric wrapping (FlagAsymmetricWrap, FORMAT.md section 12.3): the
// DEK is wrapped with an RSA public key, so the instance that writes an
// object may be unable to unwrap it again. A multipart upload still needs
// its pending header opened at completion (section 11.8); such a writer
// keeps the upload's object key (PendingKey) outside the store, in the
// upload id it hands the client, and opens the pending header with it
// (OpenPending). The object key of a multipart object seals only its
// metadata blob, which is the client's own, plus the manifest that
// finalization adds from the parts' public header bytes.

// PendingKey returns a copy of the object key of a multipart object whose
// header is asymmetrically wrapped, for OpenPending. It refuses any other
// object: a single object's key is its body key, and a symmetrically
// wrapped header can always be opened with the KMS.
func (o *Object) PendingKey() ([]byte, error) {
	if o.closed.Load() {
		return nil, ErrClosed
	}
	if o.layout != LayoutMultipart || o.flags&FlagAsymmetricWrap == 0 && o.cfg.Flags&FlagAsymmetricWrap == 0 {
		return nil, fmt.Errorf("%w: only an asymmetrically wrapped multipart header has a pending key", ErrLayout)
	}
	return append([]byte(nil), o.oek...), nil
}

// OpenPending opens an asymmetrically wrapped multipart header with its
// object key instead of its DEK: it checks the key commitment, then the
// metadata blob (whose AAD covers every header byte before it, flags,
// key id and wrapped DEK included). Unlike Open it cannot check that the
// header was sealed for a given path (that takes the DEK); the caller
// gets oek from where it put it for this upload, and a Reseal binds the
// result to its path again.
func (c Config) OpenPending(h *Header, oek []byte) (*Object, error) {
	if len(oek) != KeySize {
		return nil, ErrKeySize
	}
	if h.layout != LayoutMultipart || h.flags&FlagAsymmetricWrap == 0 {
		return nil, fmt.Errorf("%w: OpenPending needs an asymmetrically wrapped multipart header", ErrLayout)
	}
	return c.openHeader(h, append([]byte(nil), oek...))
}
