package e2e_test

// The Grafana dashboard against real data: every query of every panel, with Grafana's variables
// substituted as Grafana would, must parse and return data from the test's Prometheus.

import (
	"fmt"
	"regexp"
	"slices"
	"testing"

	"github.com/peloton-exporter/peloton_exporter/internal/testkit"
)

type dashboardTarget struct{ where, expr string }

// readDashboard returns every query of the dashboard, panels nested in rows included, and its
// template variables.
func readDashboard(t *testing.T) ([]dashboardTarget, []testkit.Variable) {
	t.Helper()
	d, _ := testkit.ReadDashboard(t, dashboardFile)
	var targets []dashboardTarget
	for _, p := range d.AllPanels() {
		for _, tg := range p.Targets {
			if !tg.Hide {
				targets = append(targets, dashboardTarget{fmt.Sprintf("panel %q query %s", p.Title, tg.RefID), tg.Expr})
			}
		}
	}
	if len(targets) == 0 {
		t.Fatalf("%s: no panel queries found", dashboardFile)
	}
	return targets, d.Templating.List
}

// grafanaVarRE matches Grafana's variable syntaxes: $name, ${name}, ${name:format}, [[name]].
var grafanaVarRE = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]`)

// promRegexEscape escapes a value as Grafana does for a multi-value or All variable used in a
// Prometheus regex matcher: regex metacharacters get a backslash, itself escaped for the PromQL
// string ("127\\.0\\.0\\.1:9090").
func promRegexEscape(s string) string {
	return regexp.MustCompile(`[\\$^*{}\[\]'+?.()|]`).ReplaceAllString(s, `\\$0`)
}

// grafanaVariables are the values substituted for the dashboard's variables, as Grafana would
// send them with the exporter's job and instance selected.
func grafanaVariables(instance string) map[string]string {
	return map[string]string{
		"job":      job,
		"instance": promRegexEscape(instance),
		// Grafana's $__rate_interval is max(4 × the data source's scrape interval, $__interval +
		// scrape interval); 15s covers at least two of the test's 1s scrapes with room to spare.
		"__rate_interval":    "15s",
		"__rate_interval_ms": "15000",
		// The step and time range of a short dashboard view; no panel uses them today.
		"__interval":    "1s",
		"__interval_ms": "1000",
		"__range":       "1m",
		"__range_s":     "60",
		"__range_ms":    "60000",
	}
}

// substitute replaces Grafana variables; a variable the test does not know is an error, so that
// a new one cannot be sent to Prometheus literally.
func substitute(expr string, vars map[string]string) (string, error) {
	var unknown []string
	out := grafanaVarRE.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVarRE.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		v, ok := vars[name]
		if !ok {
			unknown = append(unknown, m)
			return m
		}
		return v
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("unknown Grafana variable(s) %v: add them to grafanaVariables", unknown)
	}
	return out, nil
}

// mayBeEmpty lists panel queries that may legitimately return no data in the test's state, with
// the reason. It is empty: the simulator is started with a workout in progress, and the queries
// with a fallback ("or on() vector(0)") are also checked without it below.
var mayBeEmpty = map[string]string{}

// zeroFallbackRE matches a trailing "or on() vector(0)", which makes any query return data.
var zeroFallbackRE = regexp.MustCompile(`\s+or\s+on\s*\(\s*\)\s*vector\s*\(\s*0\s*\)\s*$`)

var labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*$`)

// checkDashboard runs every dashboard query against Prometheus, and the job and instance
// variables' label_values queries.
func checkDashboard(t *testing.T, prom promClient, instance string) {
	t.Helper()
	targets, variables := readDashboard(t)
	vars := grafanaVariables(instance)

	wantValue := map[string]string{"job": job, "instance": instance}
	for _, v := range variables {
		if v.Type != "query" {
			continue
		}
		m := labelValuesRE.FindStringSubmatch(v.Query())
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, v.Query())
			continue
		}
		selector, err := substitute(m[1], vars)
		if err != nil {
			t.Errorf("variable %s: %v", v.Name, err)
			continue
		}
		values, err := prom.labelValues(m[2], selector)
		switch {
		case err != nil:
			t.Errorf("variable %s: %v", v.Name, err)
		case wantValue[v.Name] == "":
			t.Errorf("variable %s: the test does not know which value to expect; add it to wantValue", v.Name)
		case !slices.Contains(values, wantValue[v.Name]):
			t.Errorf("variable %s: label_values(%s, %s) = %q, want it to include %q", v.Name, selector, m[2], values, wantValue[v.Name])
		}
	}

	for _, tg := range targets {
		expr, err := substitute(tg.expr, vars)
		if err != nil {
			t.Errorf("%s: %v", tg.where, err)
			continue
		}
		exprs := []string{expr}
		if stripped := zeroFallbackRE.ReplaceAllString(expr, ""); stripped != expr {
			exprs = append(exprs, stripped) // the fallback would hide a query that never matches
		}
		for _, e := range exprs {
			res, err := prom.query(e)
			switch {
			case err != nil:
				t.Errorf("%s does not run: %v\n\t%s", tg.where, err, e)
			case len(res) == 0 && mayBeEmpty[tg.expr] == "":
				t.Errorf("%s returns no data:\n\t%s", tg.where, e)
			}
		}
	}
}
