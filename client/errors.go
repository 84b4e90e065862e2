package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrCredentialsRefused means Peloton's login refused the username or password. Retrying soon
// cannot help and risks locking the account, so logins back off.
var ErrCredentialsRefused = errors.New("login refused: Peloton refused the username or password")

// ErrAccountBlocked means Auth0's brute-force protection blocked password logins for the
// account (10 failed logins from one IP): nothing but the member's action lifts it, so every
// password login stops.
var ErrAccountBlocked = errors.New("account blocked: Peloton has blocked password logins for this account after repeated failed logins " +
	"(Auth0 brute-force protection) and e-mailed the member a link to unblock it")

// ErrLoginRejected means Auth0 rejected the shape of the login request (403 AnomalyDetected,
// "Invalid state"), not the password: the exporter's idea of the login page is out of date.
var ErrLoginRejected = errors.New("login rejected: Peloton rejected the login request itself, not the password (has Peloton's login page changed?)")

// ErrVerificationRequired means the credentials were taken but Peloton asks for a step a
// headless login cannot do (an e-mailed code, MFA, a bot check).
var ErrVerificationRequired = errors.New("verification required: Peloton asks for a verification step (an e-mailed code, MFA or a bot check) " +
	"that a headless login cannot do: sign in with a browser instead (peloton_exporter login)")

// LoginStoppedError means no password login is tried any more with these credentials: Peloton
// refused them maxRefusals times, or blocked the account. A change of username or password
// lifts it at once.
type LoginStoppedError struct {
	Refusals int
	Blocked  bool
}

func (e *LoginStoppedError) Error() string {
	if e.Blocked {
		return "password logins stopped, " + ErrAccountBlocked.Error() + "; once it is unblocked, sign in with " +
			"peloton_exporter login (or change the password), and password logins resume"
	}
	return fmt.Sprintf("password logins stopped after %d refused attempts, so that a wrong password cannot get the "+
		"account blocked: correct the username or password (a changed one is tried at once) or sign in with peloton_exporter login", e.Refusals)
}

func (e *LoginStoppedError) Unwrap() error {
	if e.Blocked {
		return ErrAccountBlocked
	}
	return ErrCredentialsRefused
}

// ErrLegacyLoginRetired is what Peloton's retired POST /auth/login answers since late 2025.
var ErrLegacyLoginRetired = errors.New("login method retired: Peloton answers 403 to POST /auth/login since late 2025; log in with the Auth0 flow or browser tokens instead")

// ErrNoCredentials means there is no usable token and nothing to get a new one with.
var ErrNoCredentials = errors.New("no usable access token, no working refresh token and no password to log in with")

// HTTPError is an unexpected HTTP answer. It carries Peloton's own message when the body had
// one, never the body itself (bodies may echo request data).
type HTTPError struct {
	Endpoint string
	Status   int
	Message  string
}

func (e *HTTPError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s: HTTP %d", e.Endpoint, e.Status)
	}
	return fmt.Sprintf("%s: HTTP %d: %s", e.Endpoint, e.Status, e.Message)
}

// RateLimitedError means Peloton asked us to wait (429 Retry-After) and the wait is not over.
type RateLimitedError struct {
	Endpoint string
	Until    time.Time
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("%s: rate limited by Peloton until %s", e.Endpoint, e.Until.UTC().Format(time.RFC3339))
}

// LoginBackoffError means a password login is not attempted yet, to protect the account.
type LoginBackoffError struct {
	Until time.Time
	Cause error // why the previous login failed
	// Turn says that another account logged in recently: logins of the accounts that share
	// a LoginSpacer take turns, and this one's comes at Until.
	Turn bool
}

func (e *LoginBackoffError) Error() string {
	until := e.Until.UTC().Format(time.RFC3339)
	if e.Turn {
		return fmt.Sprintf("password login deferred until %s, this account's turn: the accounts' logins are spaced "+
			"(at most one per --peloton.login-spacing), as they come from one address", until)
	}
	if e.Cause == nil {
		return fmt.Sprintf("password login deferred until %s (at most one login per --peloton.login-interval)", until)
	}
	return fmt.Sprintf("password login deferred until %s (previous attempt: %v)", until, e.Cause)
}

func (e *LoginBackoffError) Unwrap() error { return e.Cause }

// describeBody extracts a short human message from an error body without echoing it whole.
func describeBody(contentType string, body []byte) string {
	trimmed := strings.TrimSpace(string(body))
	if strings.Contains(contentType, "html") || strings.HasPrefix(trimmed, "<") {
		return "an HTML page instead of JSON (a CDN or bot-protection block?)"
	}
	var m struct {
		Message          string `json:"message"`
		Description      string `json:"description"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
		Code             any    `json:"code"`
		ErrorCode        any    `json:"error_code"`
	}
	if json.Unmarshal(body, &m) != nil {
		if trimmed == "" {
			return ""
		}
		return "an unreadable body"
	}
	var parts []string
	for _, s := range []string{m.Error, m.Message, m.Description, m.ErrorDescription} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	for _, c := range []any{m.Code, m.ErrorCode} {
		switch c.(type) {
		case string, float64, bool: // never an object or list, which may hold anything
			parts = append(parts, fmt.Sprintf("code %v", c))
		}
	}
	msg := strings.Join(parts, ", ")
	if len(msg) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut-- // never split a character
		}
		msg = msg[:cut] + "…"
	}
	return msg
}

// errTokenRefused marks an OAuth error from the token endpoint (invalid_grant and the like): a
// definite "no" to the grant, as opposed to an outage or a CDN page, which are waited out.
var errTokenRefused = errors.New("the token endpoint refused the grant")

type refusedError struct{ *HTTPError }

func (e *refusedError) Is(target error) bool { return target == errTokenRefused }
func (e *refusedError) Unwrap() error        { return e.HTTPError }

// loginError is the JSON error body of Auth0's /usernamepassword/login.
type loginError struct {
	Name        string `json:"name"`
	Code        string `json:"code"`
	Description string `json:"description"`
}

func parseLoginError(r *response) loginError {
	var le loginError
	_ = json.Unmarshal(r.body, &le)
	return le
}

// isAccountBlocked tells whether r is Auth0's brute-force block (429 too_many_attempts).
func isAccountBlocked(r *response) bool {
	return r.status == http.StatusTooManyRequests && parseLoginError(r).Code == "too_many_attempts"
}

// isOAuthRefusal tells whether a token endpoint answer is Auth0 refusing the grant: a 4xx
// (not 429) whose JSON body names an OAuth error.
func isOAuthRefusal(r *response) bool {
	if r.status < 400 || r.status >= 500 || r.status == http.StatusTooManyRequests {
		return false
	}
	var body struct {
		Error string `json:"error"`
	}
	return json.Unmarshal(r.body, &body) == nil && body.Error != ""
}
