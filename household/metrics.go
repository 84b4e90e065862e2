package household

import (
	"github.com/prometheus/client_golang/prometheus"
)

// The household's own series, on /metrics beside the exporter's build, Go and process metrics.
type descs struct {
	accountUp, reloadOK, reloadTime *prometheus.Desc
}

func newDescs() descs {
	return descs{
		accountUp: prometheus.NewDesc("peloton_account_up",
			"1 if the most recent refresh of the account read every source (its probe's peloton_up), else 0.", []string{"account"}, nil),
		reloadOK: prometheus.NewDesc("peloton_config_last_reload_successful",
			"1 if the config file last loaded without error, else 0 (the accounts of the last good file keep running).", nil, nil),
		reloadTime: prometheus.NewDesc("peloton_config_last_reload_success_timestamp_seconds",
			"When the config file last loaded without error.", nil, nil),
	}
}

var _ prometheus.Collector = (*Household)(nil)

func (h *Household) Describe(ch chan<- *prometheus.Desc) {
	ch <- h.descs.accountUp
	ch <- h.descs.reloadOK
	ch <- h.descs.reloadTime
}

// Collect reports every account at a glance; it never calls Peloton.
func (h *Household) Collect(ch chan<- prometheus.Metric) {
	h.mu.RLock()
	accounts := make([]*Account, 0, len(h.order))
	for _, name := range h.order {
		accounts = append(accounts, h.accounts[name])
	}
	ok, at := h.reloadOK, h.reloadedAt
	h.mu.RUnlock()
	for _, a := range accounts {
		ch <- prometheus.MustNewConstMetric(h.descs.accountUp, prometheus.GaugeValue, boolValue(a.Exporter.Up()), a.Name)
	}
	ch <- prometheus.MustNewConstMetric(h.descs.reloadOK, prometheus.GaugeValue, boolValue(ok))
	if !at.IsZero() {
		ch <- prometheus.MustNewConstMetric(h.descs.reloadTime, prometheus.GaugeValue, float64(at.UnixMilli())/1000)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
