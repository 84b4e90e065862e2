package client

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// loginTrace logs each hop of a login at debug level, for bug reports when Peloton changes
// its login: method, host, path, status, and the names, never the values, of the cookies set
// and of the form fields posted. Queries are left out: they carry state, codes and tokens.
type loginTrace struct {
	logger log.Logger
}

func (t loginTrace) hop(req *http.Request, r *response, err error, fields []string) {
	status := "error"
	var cookies []string
	if r != nil {
		status = strconv.Itoa(r.status)
		for _, sc := range r.header.Values("Set-Cookie") {
			name, _, _ := strings.Cut(sc, "=")
			cookies = append(cookies, strings.TrimSpace(name))
		}
	} else if rl := (*RateLimitedError)(nil); errors.As(err, &rl) {
		status = "429"
	}
	level.Debug(t.logger).Log("msg", "login hop", "method", req.Method, "host", req.URL.Host, "path", req.URL.Path,
		"status", status, "cookies_set", strings.Join(cookies, ","), "form_fields", strings.Join(fields, ","))
}
