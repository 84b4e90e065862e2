package household

import (
	"fmt"
	"net/http"
)

// maxShownTarget bounds how much of an unknown target an answer repeats.
const maxShownTarget = 64

// ServeHTTP is /probe?target=NAME: the account's metrics, exactly as a single-account exporter
// serves them, refreshed within the scrape's timeout when stale. A target is only ever looked
// up among the running accounts: no request can make the exporter log in anywhere or read a
// file.
func (h *Household) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	targets := q["target"]
	switch {
	case len(targets) == 0 || targets[0] == "":
		http.Error(w, "missing the target: /probe?target=NAME, where NAME is the name of an account in the config file", http.StatusBadRequest)
		return
	case len(targets) > 1:
		http.Error(w, "more than one target: /probe takes one account per request", http.StatusBadRequest)
		return
	}
	a, ok := h.Account(targets[0])
	if !ok {
		shown := targets[0]
		if len(shown) > maxShownTarget {
			shown = shown[:maxShownTarget] + "…"
		}
		http.Error(w, fmt.Sprintf("unknown target %q: no account of that name in the config file", shown), http.StatusNotFound)
		return
	}
	// The answer depends on nothing but the account: without its target the request is one
	// that the account's encoded-answer cache replays (it passes on any request with a query).
	q.Del("target")
	r = r.Clone(r.Context())
	r.URL.RawQuery = q.Encode()
	a.handler.ServeHTTP(w, r)
}
