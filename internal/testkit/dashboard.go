package testkit

import (
	"encoding/json"
	"testing"
)

// Dashboard is the part of a Grafana dashboard's JSON model (grafana/peloton.json) that the
// tests read.
type Dashboard struct {
	UID           string          `json:"uid"`
	Editable      *bool           `json:"editable"`
	SchemaVersion int             `json:"schemaVersion"`
	Inputs        json.RawMessage `json:"__inputs"`
	Templating    struct {
		List []Variable `json:"list"`
	} `json:"templating"`
	Panels []Panel `json:"panels"` // the top level: a collapsed row holds its own panels
}

// Variable is a template variable.
type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	RawQuery   json.RawMessage `json:"query"` // see Query
	Datasource json.RawMessage `json:"datasource"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
}

// Query returns the variable's query, which Grafana stores as a string or as {"query": "…"}.
func (v Variable) Query() string {
	var s string
	if json.Unmarshal(v.RawQuery, &s) == nil {
		return s
	}
	var obj struct{ Query string }
	_ = json.Unmarshal(v.RawQuery, &obj)
	return obj.Query
}

// Panel is a panel or a row.
type Panel struct {
	ID          int                      `json:"id"`
	Type        string                   `json:"type"`
	Title       string                   `json:"title"`
	Description string                   `json:"description"`
	Datasource  json.RawMessage          `json:"datasource"`
	GridPos     struct{ X, Y, W, H int } `json:"gridPos"`
	Targets     []Target                 `json:"targets"`
	Panels      []Panel                  `json:"panels"` // the panels of a collapsed row
}

// Target is one query of a panel.
type Target struct {
	Datasource json.RawMessage `json:"datasource"`
	Expr       string          `json:"expr"`
	RefID      string          `json:"refId"`
	Hide       bool            `json:"hide"`
}

// ReadDashboard reads a dashboard file and returns it decoded and as it is, failing the test
// when it cannot be read or decoded.
func ReadDashboard(t testing.TB, path string) (Dashboard, []byte) {
	t.Helper()
	raw := []byte(ReadFile(t, path))
	var d Dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s is not valid JSON: %v", path, err)
	}
	return d, raw
}

// AllPanels returns every panel, those inside collapsed rows included, each row before its own.
func (d Dashboard) AllPanels() []Panel {
	var out []Panel
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}
