package simulator

import (
	"net/http"
	"net/url"
	"time"
)

// Peloton's SSO host, auth-orca.onepeloton.com, which the live login crosses after the hidden
// form (observed 11 September 2026: homebridge-peloton SPEC.md 4.1 step 5 and its
// fixtures/auth/sso-*.json). It sets cookies of its own and needs them on the next hop, so a
// client that does not keep cookies per host, or sends another host's, cannot get through.

// The cookies login_site sets; login_domain requires both.
var ssoSiteCookies = []string{"peloton_logged_in_user_hash", "peloton_visited_sites"}

func (s *Simulator) ssoHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sso/login_site", s.endpoint(EndpointSSO, s.handleSSOLoginSite))
	mux.HandleFunc("GET /sso/login_domain", s.endpoint(EndpointSSO, s.handleSSOLoginDomain))
	mux.HandleFunc("/", notFound)
	return mux
}

// setSSOCookie sets a cookie as the SSO host does: Path=/, a year, HttpOnly, Secure,
// SameSite=None (fixtures/auth/sso-login-site-redirect.json).
func (s *Simulator) setSSOCookie(w http.ResponseWriter, name, value string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", Expires: cookieExpiry(365 * 24 * time.Hour),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode})
}

// handleSSOLoginSite checks the claim token that auth's resume handed over, sets the site
// cookies and answers 303 to login_domain.
func (s *Simulator) handleSSOLoginSite(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	tx, ok := s.txBySSO[q.Get("state")]
	ok = ok && tx.stage == stageSSO && q.Get("session_claim_token") == tx.claimToken &&
		q.Get("user_id") == tx.userID && q.Get("visited_site") != ""
	if ok {
		tx.claimToken = "" // one use
		tx.ssoCookies = map[string]string{}
		for _, name := range ssoSiteCookies {
			tx.ssoCookies[name] = randomToken(16)
		}
	}
	s.mu.Unlock()
	if !ok {
		authPageError(w, http.StatusForbidden, "access_denied", "Invalid session claim")
		return
	}
	for _, name := range ssoSiteCookies {
		s.setSSOCookie(w, name, tx.ssoCookies[name])
	}
	w.Header().Set("Location", s.orcaURL+"/sso/login_domain?"+url.Values{
		"state":          {tx.ssoState},
		"visited_domain": {"onepeloton.com"},
	}.Encode())
	w.WriteHeader(http.StatusSeeOther)
}

// handleSSOLoginDomain needs the cookies login_site set, sets peloton_visited_domains and
// answers 303 to auth's /continue (fixtures/auth/sso-login-domain-redirect.json).
func (s *Simulator) handleSSOLoginDomain(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	tx, ok := s.txBySSO[r.URL.Query().Get("state")]
	ok = ok && tx.stage == stageSSO && tx.ssoCookies != nil
	if ok {
		for _, name := range ssoSiteCookies {
			c, err := r.Cookie(name)
			ok = ok && err == nil && c.Value == tx.ssoCookies[name]
		}
	}
	if ok {
		tx.stage = stageSSODone
		delete(s.txBySSO, tx.ssoState)
	}
	s.mu.Unlock()
	if !ok {
		authPageError(w, http.StatusForbidden, "access_denied", "Missing SSO session")
		return
	}
	s.setSSOCookie(w, "peloton_visited_domains", randomToken(12))
	w.Header().Set("Location", s.authURL+"/continue?state="+url.QueryEscape(tx.loginState))
	w.WriteHeader(http.StatusSeeOther)
}
