package client

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

// Seeds come from testdata/fuzz (Go's corpus format) plus the real-shaped files below.

func FuzzDecodeWorkoutPage(f *testing.F) {
	f.Add([]byte(`{"data":[{"id":"a1","start_time":1700000000,"end_time":null,"status":"IN_PROGRESS","fitness_discipline":"cycling","total_work":"12.5","timezone":"Etc/GMT+6"}],"page":0,"page_count":"3","total":250,"show_next":true}`))
	f.Add([]byte(`{"data":[],"show_next":false}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p WorkoutPage
		if json.Unmarshal(b, &p) != nil {
			return
		}
		for _, w := range p.Data {
			_ = string(w.ID) + string(w.Status) // decoded values are usable
		}
	})
}

func FuzzParseHiddenForm(f *testing.F) {
	f.Add([]byte(`<form method="post" name="hiddenform" action="https://auth.example/login/callback"><input type="hidden" name="wa" value="wsignin1.0"><input type="hidden" name="wresult" value="x"><input type="hidden" name="wctx" value="{&#34;a&#34;:1}"></form>`))
	f.Add([]byte(`<html><body><form><input name="a"></body>`))
	f.Add([]byte(`<form action=""></form>`))
	f.Fuzz(func(t *testing.T, page []byte) {
		form, err := parseHiddenForm(page)
		if err != nil {
			return
		}
		if len(form.Fields) == 0 {
			t.Fatal("a form without fields was accepted")
		}
		if _, err := url.ParseQuery(form.Fields.Encode()); err != nil {
			t.Fatalf("fields do not round-trip: %v", err)
		}
	})
}

func FuzzParseRecordDate(f *testing.F) {
	for _, s := range []string{"2024-05-06T09:57:46.552438", "2021-06-27T09:48:37", "2024-05-06T09:57:46Z", "", "2024-13-40T99:99:99"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if tm, err := ParseRecordDate(s); err == nil && tm.IsZero() && s != "0001-01-01T00:00:00" {
			t.Logf("zero time from %q", s)
		}
	})
}

// TestFuzzSeedsDecode keeps the shared overview seeds valid JSON for the collector's fuzz target.
func TestFuzzSeedsDecode(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "collector", "testdata", "overview_*.json"))
	if len(files) == 0 {
		t.Fatal("no overview fixtures found")
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var ov Overview
		if err := json.Unmarshal(b, &ov); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
