package testkit

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestDashboardModel(t *testing.T) {
	var d Dashboard
	err := json.Unmarshal([]byte(`{
		"templating": {"list": [{"name": "a", "query": "label_values(up, job)"}, {"name": "b", "query": {"query": "prometheus"}}]},
		"panels": [{"title": "row", "panels": [{"title": "inner"}]}, {"title": "top"}]}`), &d)
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{d.Templating.List[0].Query(), d.Templating.List[1].Query()}; !slices.Equal(got, []string{"label_values(up, job)", "prometheus"}) {
		t.Errorf("variable queries %q", got)
	}
	var titles []string
	for _, p := range d.AllPanels() {
		titles = append(titles, p.Title)
	}
	if want := []string{"row", "inner", "top"}; !slices.Equal(titles, want) {
		t.Errorf("AllPanels: %q, want %q", titles, want)
	}
}
