package proxy

import (
	"slices"

	"github.com/s3seal/s3seal/proxy/s3wire"
)

// listBuckets answers ListBuckets with the store's list cut down to the
// buckets the caller's identity may use: a tenant does not learn the
// names of the others' buckets.
func (s *Server) listBuckets(r *request) error {
	id := r.identity
	if id == nil || slices.Contains(id.Buckets, "*") {
		return s.relay(r)
	}
	return s.serveDocument(r, func(doc []byte) []byte {
		return s3wire.FilterBuckets(doc, id.allows)
	})
}
