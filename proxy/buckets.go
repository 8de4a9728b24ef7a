package proxy

import (
	"net/http"
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

// bucketWrite relays a bucket write; a CreateBucket for the proxy's region
// is one for the store's (s3wire.CreateBucketForStore).
func (s *Server) bucketWrite(r *request) error {
	body, err := s.readSmallBody(r)
	if err != nil {
		return err
	}
	if string(r.ctx.Method()) == http.MethodPut && r.t.Key == "" && r.storeQuery == "" && body != nil {
		body = s3wire.CreateBucketForStore(body, s.cfg.Region, s.cfg.UpstreamRegion)
	}
	return s.relayWith(r, body)
}

// bucketRead relays a bucket read; GetBucketLocation names the proxy's
// region where the store names its own (s3wire.LocationForClient).
func (s *Server) bucketRead(r *request) error {
	if r.t.Key != "" || !r.t.Query.Has("location") || s.cfg.Region == s.cfg.UpstreamRegion {
		return s.relay(r)
	}
	return s.serveDocument(r, func(doc []byte) []byte {
		return s3wire.LocationForClient(doc, s.cfg.Region, s.cfg.UpstreamRegion)
	})
}
