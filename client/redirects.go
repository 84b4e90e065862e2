package client

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// maxRedirects bounds each redirect chain of the login: the live chain after the hidden form
// has six hops (homebridge-peloton SPEC.md 4.1 follows at most 12, and so does this).
const maxRedirects = 12

// hostPolicy says where the login may be redirected: https to the auth host's parent domain
// and its subdomains (*.onepeloton.com for the default, which takes in Peloton's SSO host
// auth-orca.onepeloton.com), plain http only to the very host of --peloton.auth-url (a local
// stand-in). Nothing else is fetched, whatever a redirect says.
type hostPolicy struct {
	auth   *url.URL
	parent string // "" when the auth host is an IP address or a single label: that host only
}

func newHostPolicy(authURL string) (hostPolicy, error) {
	u, err := url.Parse(authURL)
	if err != nil || u.Host == "" {
		return hostPolicy{}, fmt.Errorf("invalid auth URL %q", authURL)
	}
	p := hostPolicy{auth: u}
	host := strings.ToLower(u.Hostname())
	if net.ParseIP(host) != nil || !strings.Contains(host, ".") {
		return p, nil
	}
	// The parent domain, but never above the registrable domain: an auth host of
	// peloton.co.uk must not open all of co.uk.
	p.parent = host
	if _, rest, ok := strings.Cut(host, "."); ok {
		if etld1, err := publicsuffix.EffectiveTLDPlusOne(host); err == nil && len(rest) >= len(etld1) {
			p.parent = rest
		}
	}
	return p, nil
}

// allows tells whether u may be fetched during the login.
func (p hostPolicy) allows(u *url.URL) error {
	if strings.EqualFold(u.Scheme, p.auth.Scheme) && strings.EqualFold(u.Host, p.auth.Host) {
		return nil // the auth host itself, over its own scheme
	}
	if !strings.EqualFold(u.Scheme, "https") {
		return fmt.Errorf("a redirect to %s over %s, which only the auth host itself may use", u.Hostname(), u.Scheme)
	}
	host := strings.ToLower(u.Hostname())
	if p.parent == "" || (host != p.parent && !strings.HasSuffix(host, "."+p.parent)) {
		return fmt.Errorf("redirected off Peloton's hosts to %s", u.Hostname())
	}
	if port := u.Port(); port != "" && port != "443" && port != p.auth.Port() {
		return fmt.Errorf("a redirect to %s on port %s", u.Hostname(), port)
	}
	return nil
}

// fetch sends req and follows its redirects (see follow). fields names the form fields posted,
// for the trace.
func (f *loginFlow) fetch(ctx context.Context, req *http.Request, fields []string) (*response, *url.URL, error) {
	r, err := f.send(ctx, req, fields)
	if err != nil {
		return nil, nil, err
	}
	return f.follow(ctx, req.URL, r)
}

// follow follows the redirects of r, the answer for u: every hop a GET without a body, to a
// place the host policy allows, each host given only its own cookies (the jar's doing). It
// stops, without fetching it, at the first redirect to the redirect URI and returns that URL;
// otherwise it returns the final answer and its URL.
func (f *loginFlow) follow(ctx context.Context, u *url.URL, r *response) (*response, *url.URL, error) {
	for hop := 0; ; hop++ {
		if r.status >= 300 && r.status < 400 && r.location == nil {
			return nil, nil, fmt.Errorf("%s: HTTP %d without a Location", endpointFor(u, f.policy), r.status)
		}
		if r.location == nil {
			return r, u, nil
		}
		if f.c.isRedirectURI(r.location) {
			return r, r.location, nil
		}
		if err := f.policy.allows(r.location); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", endpointFor(u, f.policy), err)
		}
		if hop == maxRedirects {
			return nil, nil, fmt.Errorf("login: more than %d redirects (a redirect loop?)", maxRedirects)
		}
		u = r.location
		req, err := http.NewRequest(http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, nil, err
		}
		if r, err = f.send(ctx, req, nil); err != nil {
			return nil, nil, err
		}
	}
}

// send is Client.send with this login's jar, counted under the step's endpoint name and traced.
func (f *loginFlow) send(ctx context.Context, req *http.Request, fields []string) (*response, error) {
	r, err := f.c.send(ctx, f.hc, endpointFor(req.URL, f.policy), req)
	f.trace.hop(req, r, err, fields)
	return r, err
}

// endpointFor names a login step for peloton_api_requests_total and for errors.
func endpointFor(u *url.URL, p hostPolicy) string {
	if p.auth != nil && !strings.EqualFold(u.Host, p.auth.Host) {
		if strings.HasPrefix(u.Path, "/sso/") {
			return "sso"
		}
		return "auth_other"
	}
	switch path := strings.TrimSuffix(u.Path, "/"); {
	case path == "/authorize/resume", path == "/login/callback":
		return "callback"
	case path == "/authorize":
		return "authorize"
	case path == "/login", path == "/u/login":
		return "login_page"
	case path == "/usernamepassword/login":
		return "login"
	case path == "/continue":
		return "continue"
	case path == "/oauth/token":
		return "token"
	}
	return "auth_other"
}
