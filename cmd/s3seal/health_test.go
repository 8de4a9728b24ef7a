package main

import "testing"

func TestHealthURL(t *testing.T) {
	for _, c := range []struct {
		listen       string
		https, ready bool
		want         string
	}{
		{"0.0.0.0:8080", false, false, "http://127.0.0.1:8080/healthz"},
		{":8080", false, true, "http://127.0.0.1:8080/readyz"},
		{"[::]:8443", true, false, "https://127.0.0.1:8443/healthz"},
		{"127.0.0.2:9000", false, false, "http://127.0.0.2:9000/healthz"},
		{"[::1]:9000", true, true, "https://[::1]:9000/readyz"},
	} {
		got, err := healthURL(c.listen, c.https, c.ready)
		if err != nil || got != c.want {
			t.Errorf("healthURL(%q, %v, %v) = %q, %v; want %q", c.listen, c.https, c.ready, got, err, c.want)
		}
	}
	if _, err := healthURL("8080", false, false); err == nil {
		t.Error("healthURL accepted a listen address without a port")
	}
}
