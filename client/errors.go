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
// account (10 failed logins in a row from one IP): nothing but the member's action lifts it,
// so every password login stops.
var ErrAccountBlocked = errors.New("account blocked: Peloton has blocked password logins for this account after repeated failed logins " +
	"(Auth0 brute-force protection) and e-mailed the member a link to unblock it")

// ErrLoginRejected means Auth0 rejected the shape of the login request (403 AnomalyDetected,
// "Invalid state"), not the password: the exporter's idea of the login page is out of date.
var ErrLoginRejected = errors.New("login rejected: Peloton rejected the login request itself, not the password (has Peloton's login page changed?)")

// ErrVerificationRequired means the credentials were taken but Peloton asks for a step a
// headless login cannot do (an e-mailed code, MFA, a bot check).
var ErrVerificationRequired = errors.New("verification required: Peloton asks for a verification step (an e-mailed code, MFA or a bot check) " +
	"that a headless login cannot do: sign in with a browser instead (peloton_exporter login)")

// errUnanswered marks a credentials post that was sent but got no answer (a timeout, a cut
// connection): Auth0 may have counted it as a failed login, so the budget does too.
var errUnanswered = errors.New("the credentials were sent but no answer came")

type unansweredError struct{ err error }

func (e *unansweredError) Error() string {
	return e.err.Error() + " (the credentials were sent: the attempt counts as refused, since Peloton may have counted it)"
}
func (e *unansweredError) Is(target error) bool { return target == errUnanswered }
func (e *unansweredError) Unwrap() error        { return e.err }

// LoginStoppedError means no password login is tried: Peloton refused these credentials
// maxRefusals times, or refused maxConsecutiveRefusals logins in a row of any credentials,
// blocked the account, asked for a verification step, or rejected maxRejections requests in a
// row. The username and password are read when the exporter starts, so a change is tried (at
// once) after a restart; a browser sign-in lifts every stop.
type LoginStoppedError struct {
	Refusals     int  // refused logins with these credentials
	Consecutive  int  // refused logins in a row with any credentials, since the last success
	Blocked      bool // Auth0 blocked the account
	Verification bool // Peloton asked for a verification step
	Rejections   int  // requests in a row Peloton rejected as malformed, since the start
}

func (e *LoginStoppedError) Error() string {
	const signIn = "sign in with peloton_exporter login"
	ceiling := e.Consecutive >= maxConsecutiveRefusals // not even changed credentials are tried
	switch {
	case e.Blocked && ceiling:
		return "password logins stopped, " + ErrAccountBlocked.Error() + "; once it is unblocked, " + signIn + ", and password logins resume"
	case e.Blocked:
		return "password logins stopped, " + ErrAccountBlocked.Error() + "; once it is unblocked, " + signIn +
			" (or change the password, at Peloton and for the exporter, and restart it), and password logins resume"
	case e.Verification:
		return "password logins stopped: Peloton asks for a verification step (an e-mailed code, MFA or a bot check) that a " +
			"headless login cannot do, and each try could e-mail the member another code: " + signIn +
			" (or change the username or password and restart the exporter), and password logins resume"
	case ceiling:
		return fmt.Sprintf("password logins stopped after %d refused attempts in a row with more than one password: Auth0 blocks "+
			"the account after 10, and the member's own attempts count too, so not even a changed password is tried: "+signIn+
			", after which a corrected password is tried again", e.Consecutive)
	case e.Refusals >= maxRefusals:
		return fmt.Sprintf("password logins stopped after %d refused attempts with these credentials, so that a wrong password "+
			"cannot get the account blocked: correct the username or password and restart the exporter (it reads them at start; "+
			"changed ones are then tried at once), or "+signIn, e.Refusals)
	}
	return fmt.Sprintf("password logins stopped after Peloton rejected %d login requests in a row: it rejected the request itself, "+
		"not the password (has Peloton's login page changed?); restart the exporter to try again (an upgrade may fix it), or "+signIn, e.Rejections)
}

func (e *LoginStoppedError) Unwrap() error {
	switch {
	case e.Blocked:
		return ErrAccountBlocked
	case e.Verification:
		return ErrVerificationRequired
	case e.Refusals >= maxRefusals, e.Consecutive >= maxConsecutiveRefusals:
		return ErrCredentialsRefused
	}
	return ErrLoginRejected
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
	Reason   string // what Peloton said, when it said more than 429
}

func (e *RateLimitedError) Error() string {
	msg := fmt.Sprintf("%s: rate limited by Peloton until %s", e.Endpoint, e.Until.UTC().Format(time.RFC3339))
	if e.Reason != "" {
		msg += " (" + e.Reason + ")"
	}
	return msg
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

// loginError is the JSON error body of Auth0's /usernamepassword/login (name, code,
// description), or of its OAuth endpoints (error, error_description).
type loginError struct {
	Name             string `json:"name"`
	Code             string `json:"code"`
	Description      string `json:"description"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

func parseLoginError(r *response) loginError {
	var le loginError
	_ = json.Unmarshal(r.body, &le)
	if le.Code == "" {
		le.Code = le.Error
	}
	if le.Description == "" {
		le.Description = le.ErrorDescription
	}
	return le
}

// Auth0 answers 429 too_many_attempts for two protections that must not be confused:
//   - brute-force protection, which blocks the account for this IP until the member acts (the
//     unblock link, a password change): "Your account has been blocked after multiple
//     consecutive login attempts." (auth0/lock src/i18n/en.js, too_many_attempts; the same text
//     is Universal Login's user-blocked message);
//   - suspicious IP throttling, which slows an IP that failed too many logins across accounts
//     and lifts by itself: "We have detected suspicious login behavior and further attempts
//     will be blocked. Please contact the administrator." (Auth0 docs, "Suspicious IP
//     Throttling": 429 "until that IP address is no longer throttled"; the body as Auth0's
//     Custom Token Exchange attack-protection page shows it; Universal Login's ip-blocked
//     message).
//
// Only the first is a blocked account; the second is a rate limit.
func isAccountBlocked(r *response) bool {
	le := parseLoginError(r)
	return r.status == http.StatusTooManyRequests && le.Code == "too_many_attempts" &&
		strings.Contains(strings.ToLower(le.Description), "account has been blocked")
}

// isIPThrottled tells whether r is Auth0's suspicious IP throttling (see isAccountBlocked).
func isIPThrottled(r *response) bool {
	return r.status == http.StatusTooManyRequests && parseLoginError(r).Code == "too_many_attempts" && !isAccountBlocked(r)
}

// ipThrottleWait is how long a throttled IP waits when Auth0 says nothing: by default Auth0
// grants a throttled IP one more login every 864,000 ms (the pre-login stage's rate of its
// suspicious IP throttling settings, Management API), "approximately 1 additional attempt
// every 15 minutes" (auth0/docs brute-force-protection-triggers-actions.md).
const ipThrottleWait = 15 * time.Minute

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
