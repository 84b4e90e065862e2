package testkit

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// READMEMetrics are the metric names in the first column of the tables of one section of the
// README ("## Metrics", "## Households"), up to the next section.
func READMEMetrics(t testing.TB, readme, section string) map[string]bool {
	t.Helper()
	_, text, found := strings.Cut(ReadFile(t, readme), "\n## "+section+"\n")
	if !found {
		t.Fatalf("%s has no section %q", readme, section)
	}
	text, _, _ = strings.Cut(text, "\n## ")
	names := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "| `peloton_") {
			names[strings.Trim(strings.Split(line, "|")[1], " `")] = true
		}
	}
	return names
}

// DescribedMetrics are the names of the metrics a collector describes.
func DescribedMetrics(c prometheus.Collector) map[string]bool {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	names := map[string]bool{}
	for d := range ch {
		names[strings.SplitN(strings.TrimPrefix(d.String(), `Desc{fqName: "`), `"`, 2)[0]] = true
	}
	return names
}

// CompareMetricNames reports, as test errors, what only one of documented and described has.
func CompareMetricNames(t testing.TB, where string, documented, described map[string]bool) {
	t.Helper()
	for name := range described {
		if !documented[name] {
			t.Errorf("%s is not in the README's %s table", name, where)
		}
	}
	for name := range documented {
		if !described[name] {
			t.Errorf("the README's %s table documents %s, which the exporter does not describe", where, name)
		}
	}
}
