package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/s3seal/s3seal/internal/embedstore"
	"github.com/s3seal/s3seal/internal/objstore"
)

// store returns a client for the store the options name, verifying an
// https store against --upstream-ca-file as serve's own store client does.
func (o *UpstreamOptions) store() (*objstore.Store, error) {
	cfg := objstore.Config{Endpoint: o.Upstream, Region: o.UpstreamRegion,
		AccessKey: o.UpstreamAccessKey, SecretKey: o.UpstreamSecretKey}
	if o.UpstreamCAFile != "" {
		tlsCfg, err := upstreamTLS(o.UpstreamCAFile)
		if err != nil {
			return nil, err
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tlsCfg
		cfg.HTTPClient = &http.Client{Transport: tr}
	}
	return objstore.New(cfg), nil
}

// storeOrEmbedded returns the store the options name or, with no
// --upstream, the embedded store of dataDir, opened in this process: the
// store serve runs by default, so the offline commands (decrypt, inspect,
// rewrap) work on a newcomer's setup too. The embedded store has one owner,
// so this fails while serve runs on the same data dir. close releases it.
func (o *UpstreamOptions) storeOrEmbedded(dataDir string) (st *objstore.Store, close func(), err error) {
	if o.Upstream != "" {
		st, err := o.store()
		return st, func() {}, err
	}
	es, err := embedstore.Open(filepath.Join(dataDir, "store"), embedstore.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("%w (with no --upstream this command reads the embedded store in %s itself: stop serve first, or name the store with --upstream)", err, dataDir)
	}
	inproc := es.Serve()
	st = objstore.New(objstore.Config{Endpoint: embedstore.URL, Region: o.UpstreamRegion,
		AccessKey: "embedded", SecretKey: "embedded", HTTPClient: inproc.HTTPClient()})
	return st, func() {
		inproc.Close(context.Background())
		es.Close()
	}, nil
}
