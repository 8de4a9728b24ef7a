package main

import "github.com/s3seal/s3seal/internal/objstore"

// store returns a client for the store the options name.
func (o *UpstreamOptions) store() *objstore.Store {
	return objstore.New(objstore.Config{Endpoint: o.Upstream, Region: o.UpstreamRegion,
		AccessKey: o.UpstreamAccessKey, SecretKey: o.UpstreamSecretKey})
}
