package respcache

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// FuzzNegotiation is the cache's correctness property: after any request has filled the cache,
// any other request gets exactly what promhttp itself would answer it (format, compression,
// decoded body), so no scraper can poison the answer of another. Each request has an Accept
// line and two Accept-Encoding lines, since promhttp reads the first of the former and all of
// the latter. Seeds: testdata/fuzz/FuzzNegotiation.
func FuzzNegotiation(f *testing.F) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "test_value", Help: "A value.", ConstLabels: prometheus.Labels{"l": "ü"}}, func() float64 { return 1 }))
	opts := promhttp.HandlerOpts{}
	direct := promhttp.HandlerFor(reg, opts)
	f.Fuzz(func(t *testing.T, acceptA, encA1, encA2, acceptB, encB1, encB2 string) {
		cache := New(reg, opts, func() uint64 { return 0 }, time.Hour)
		a := request(acceptA, encA1, encA2)
		b := request(acceptB, encB1, encB2)
		if a == nil || b == nil {
			return // not a header net/http would deliver
		}
		serve(t, cache, a)
		got, want := serve(t, cache, b), serve(t, direct, b)
		if got != want {
			t.Fatalf("after %q, the cache answered %q\n%+v\nwhere promhttp answers\n%+v", a.Header, b.Header, got, want)
		}
	})
}

func request(accept, enc1, enc2 string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	for name, v := range map[string][]string{"Accept": {accept}, "Accept-Encoding": {enc1, enc2}} {
		for _, s := range v {
			for i := 0; i < len(s); i++ {
				if c := s[i]; c == '\r' || c == '\n' || c == 0 {
					return nil
				}
			}
			r.Header.Add(name, s)
		}
	}
	return r
}

type served struct {
	status                                   int
	contentType, contentEncoding, vary, body string
}

func serve(t *testing.T, h http.Handler, r *http.Request) served {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r.Clone(r.Context()))
	s := served{status: rec.Code, contentType: rec.Header().Get("Content-Type"), contentEncoding: rec.Header().Get("Content-Encoding")}
	for _, v := range rec.Header().Values("Vary") {
		s.vary += v + ";"
	}
	body := rec.Body.Bytes()
	if s.contentEncoding == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	s.body = string(body)
	return s
}
