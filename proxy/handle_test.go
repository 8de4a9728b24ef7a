package proxy

import (
	"testing"

	"github.com/s3seal/s3seal/proxy/s3wire"
)

// TestEveryOperationHasAHandler: each operation the table lets through is
// served, and none that it refuses is.
func TestEveryOperationHasAHandler(t *testing.T) {
	for o := s3wire.Op(0); o.Spec().Name != ""; o++ {
		refused := o.Spec().Body == s3wire.BodyRefused
		if h := handlers[o]; h == nil && !refused || h != nil && refused {
			t.Errorf("%v: refused %v, handler %v", o, refused, h != nil)
		}
	}
}
