package simulator

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// defaultScope is what Peloton's web app asks for.
const defaultScope = "openid offline_access peloton-api.members:default"

// codeLifetime is how long an authorization code can be exchanged; Auth0
// allows 60 seconds.
const codeLifetime = 60 * time.Second

// usedRefreshRetention is how long a rotated (spent) refresh token is
// remembered so that its reuse is caught; Auth0's default absolute lifetime
// of a rotating refresh token is 30 days. Older ones are simply unknown.
const usedRefreshRetention = 30 * 24 * time.Hour

// tokenFamily is one grant (a code exchange or IssueTokens) and everything
// descended from it by refresh-token rotation. Auth0 revokes a whole family
// when a spent refresh token of it is presented again.
type tokenFamily struct {
	revoked bool
}

type accessGrant struct {
	userID  string
	expires time.Time
	revoked bool
	family  *tokenFamily
}

type refreshGrant struct {
	userID string
	scope  string
	family *tokenFamily
	used   time.Time // when it was rotated; zero while it is the live one
}

type authCode struct {
	userID      string // the member whose credentials were taken
	challenge   string
	redirectURI string
	scope       string
	nonce       string
	issued      time.Time
}

// tokenResponse is Auth0's answer from /oauth/token.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	Scope        string `json:"scope"`
	ExpiresIn    int64  `json:"expires_in"`
	TokenType    string `json:"token_type"`
}

// issueTokensLocked mints an access token (a JWT the client can read exp
// from) and a new refresh token for member m, both in family fam (nil starts a new one).
// s.mu must be held.
func (s *Simulator) issueTokensLocked(scope, nonce string, fam *tokenFamily, m *member) tokenResponse {
	if fam == nil {
		fam = &tokenFamily{}
	}
	now := s.cfg.Now()
	exp := now.Add(s.cfg.AccessTokenTTL)
	s.pruneLocked(now)
	uid := m.userID
	access := s.signJWT(map[string]any{
		"iss":   s.authURL + "/",
		"sub":   "auth0|" + uid,
		"aud":   []string{s.cfg.Audience, s.authURL + "/userinfo"},
		"iat":   now.Unix(),
		"exp":   exp.Unix(),
		"azp":   s.cfg.ClientID,
		"scope": scope,
		// jti keeps two tokens minted in the same second distinct.
		"jti": randomToken(12),
	})
	idClaims := map[string]any{
		"iss":   s.authURL + "/",
		"sub":   "auth0|" + uid,
		"aud":   s.cfg.ClientID,
		"iat":   now.Unix(),
		"exp":   now.Add(10 * time.Hour).Unix(),
		"email": m.email,
	}
	if nonce != "" {
		idClaims["nonce"] = nonce
	}
	refresh := randomToken(32)
	s.access[access] = &accessGrant{userID: uid, expires: exp, family: fam}
	s.refresh[refresh] = &refreshGrant{userID: uid, scope: scope, family: fam}
	idToken := s.signJWT(idClaims)
	s.noteSecretsLocked(access, refresh, idToken)
	return tokenResponse{
		AccessToken:  access,
		RefreshToken: refresh,
		IDToken:      idToken,
		Scope:        scope,
		ExpiresIn:    int64(s.cfg.AccessTokenTTL / time.Second),
		TokenType:    "Bearer",
	}
}

// pruneLocked forgets long-expired tokens, codes and login transactions so a
// demo that runs for months does not grow without bound.
func (s *Simulator) pruneLocked(now time.Time) {
	for t, g := range s.access {
		if now.Sub(g.expires) > time.Hour {
			delete(s.access, t)
		}
	}
	for t, g := range s.refresh {
		if !g.used.IsZero() && now.Sub(g.used) > usedRefreshRetention {
			delete(s.refresh, t)
		}
	}
	for c, a := range s.codes {
		if now.Sub(a.issued) > codeLifetime {
			delete(s.codes, c)
		}
	}
	for st, tx := range s.txByState {
		if now.Sub(tx.created) > txLifetime {
			delete(s.txByState, st)
			delete(s.txByWResult, tx.wresult)
			delete(s.txBySSO, tx.ssoState)
		}
	}
}

// revokeFamilyLocked ends a token family: its refresh tokens are forgotten
// and its access tokens answer 401. s.mu must be held.
func (s *Simulator) revokeFamilyLocked(fam *tokenFamily) {
	fam.revoked = true
	for t, g := range s.refresh {
		if g.family == fam {
			delete(s.refresh, t)
		}
	}
}

// signJWT makes an HS256 JWT with the simulator's random key.
func (s *Simulator) signJWT(claims map[string]any) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT","kid":"peloton-simulator"}`))
	payload, _ := json.Marshal(claims) // maps of plain values always marshal
	signed := header + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, s.signingKey)
	mac.Write([]byte(signed))
	return signed + "." + enc.EncodeToString(mac.Sum(nil))
}

// bearerUser returns the user of the request's access token, if it is one we
// issued, unexpired by the simulator's clock and not revoked.
func (s *Simulator) bearerUser(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.access[token]
	if !ok || g.revoked || g.family.revoked || !s.cfg.Now().Before(g.expires) {
		return "", false
	}
	return g.userID, true
}

// pkceChallenge is the S256 transform of RFC 7636.
func pkceChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
