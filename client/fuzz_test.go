package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-kit/log"
	"golang.org/x/net/html"
)

// The fuzz targets below run in CI for a few seconds each (see FUZZ_TARGETS in the Makefile).
// Their seeds are the corpus files in testdata/fuzz/<FuzzName>/ (Go's "go test fuzz v1" format),
// built from real-shaped Peloton and Auth0 bodies plus odd ones: null fields, wrong types,
// truncated JSON, HTML from a CDN. Every target checks a property that can fail, not merely
// that nothing panics.

// fuzzNow is the fixed clock of the targets that need one.
var fuzzNow = time.Unix(1_700_000_000, 0)

// FuzzDecodeResponses decodes a body as every API and token response the client reads. A body
// that decodes must give values that keep the lenient types' invariants and that survive being
// written back as JSON and decoded again unchanged.
func FuzzDecodeResponses(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v := range []any{&WorkoutPage{}, &Me{}, &Overview{}, &tokenResponse{},
			&PerformanceGraph{}, &Settings{}, &Challenges{}, &Challenge{}} {
			if json.Unmarshal(b, v) != nil {
				continue
			}
			checkLenient(t, reflect.ValueOf(v).Elem(), reflect.TypeOf(v).Elem().Name())
			var again bytes.Buffer
			encodeCanonical(&again, reflect.ValueOf(v).Elem())
			v2 := reflect.New(reflect.TypeOf(v).Elem())
			if err := json.Unmarshal(again.Bytes(), v2.Interface()); err != nil {
				t.Fatalf("%T: re-encoded value does not decode: %v\n%s", v, err, again.Bytes())
			}
			if !reflect.DeepEqual(v, v2.Interface()) {
				t.Fatalf("%T: decode(encode(x)) != x\nfirst:  %+v\nsecond: %+v", v, v, v2.Interface())
			}
		}
	})
}

var (
	numberType = reflect.TypeOf(Number{})
	textType   = reflect.TypeOf(Text(""))
)

// checkLenient walks a decoded value: a Number that is absent holds 0, one that is present is
// finite (no sample may be NaN or ±Inf because a string said so), and a Text is valid UTF-8.
func checkLenient(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch {
	case v.Type() == numberType:
		n := v.Interface().(Number)
		if !n.Valid && n.Value != 0 {
			t.Fatalf("%s: an absent Number holds %v", path, n.Value)
		}
		if n.Valid && (math.IsNaN(n.Value) || math.IsInf(n.Value, 0)) {
			t.Fatalf("%s: a Number decoded to the non-finite %v", path, n.Value)
		}
		return
	case v.Type() == textType:
		if !utf8.ValidString(v.String()) {
			t.Fatalf("%s: Text %q is not UTF-8", path, v.String())
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			checkLenient(t, v.Elem(), path)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			checkLenient(t, v.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			checkLenient(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	}
}

// encodeCanonical writes a decoded value back as the JSON Peloton would send for it: a Number
// as a number or null, a Text as a string, fields under their json names.
func encodeCanonical(w *bytes.Buffer, v reflect.Value) {
	switch {
	case v.Type() == numberType:
		n := v.Interface().(Number)
		if !n.Valid {
			w.WriteString("null")
		} else {
			w.WriteString(strconv.FormatFloat(n.Value, 'g', -1, 64))
		}
		return
	case v.Kind() == reflect.String:
		b, _ := json.Marshal(v.String())
		w.Write(b)
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			w.WriteString("null")
		} else {
			encodeCanonical(w, v.Elem())
		}
	case reflect.Bool:
		w.WriteString(strconv.FormatBool(v.Bool()))
	case reflect.Slice:
		if v.IsNil() {
			w.WriteString("null")
			return
		}
		w.WriteByte('[')
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				w.WriteByte(',')
			}
			encodeCanonical(w, v.Index(i))
		}
		w.WriteByte(']')
	case reflect.Struct:
		w.WriteByte('{')
		for i := 0; i < v.NumField(); i++ {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			if name == "" {
				name = v.Type().Field(i).Name
			}
			if i > 0 {
				w.WriteByte(',')
			}
			b, _ := json.Marshal(name)
			w.Write(b)
			w.WriteByte(':')
			encodeCanonical(w, v.Field(i))
		}
		w.WriteByte('}')
	default:
		panic("encodeCanonical: unexpected kind " + v.Kind().String())
	}
}

// FuzzParseHiddenForm parses the page Auth0 answers a credentials post with. An accepted form
// has fields, its fields survive the form encoding the client posts them with, and parsing is
// faithful: the form written back as HTML parses to the same action and fields.
func FuzzParseHiddenForm(f *testing.F) {
	f.Fuzz(func(t *testing.T, page []byte) {
		form, err := parseHiddenForm(page)
		if err != nil {
			if form != nil {
				t.Fatal("an error came with a form")
			}
			return
		}
		if len(form.Fields) == 0 {
			t.Fatal("a form without fields was accepted")
		}
		for name := range form.Fields {
			if name == "" {
				t.Fatal("a field without a name was collected")
			}
		}
		back, err := url.ParseQuery(form.Fields.Encode())
		if err != nil {
			t.Fatalf("fields do not survive form encoding: %v", err)
		}
		if !reflect.DeepEqual(back, form.Fields) {
			t.Fatalf("fields changed by form encoding:\n%q\n%q", form.Fields, back)
		}
		again, err := parseHiddenForm(renderForm(form))
		if err != nil {
			t.Fatalf("the form written back is refused: %v\n%s", err, renderForm(form))
		}
		if again.Action != form.Action || !reflect.DeepEqual(again.Fields, form.Fields) {
			t.Fatalf("parse(render(form)) != form:\n%q %q\n%q %q", form.Action, form.Fields, again.Action, again.Fields)
		}
	})
}

func renderForm(form *HiddenForm) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<form method="post" name="hiddenform" action="%s">`, html.EscapeString(form.Action))
	names := make([]string, 0, len(form.Fields))
	for name := range form.Fields {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, v := range form.Fields[name] {
			fmt.Fprintf(&b, `<input type="hidden" name="%s" value="%s">`, html.EscapeString(name), html.EscapeString(v))
		}
	}
	b.WriteString(`</form>`)
	return b.Bytes()
}

// FuzzParseDates feeds one string to both time parsers that read Peloton's answers: the record
// date of the overview and the Retry-After of a 429.
//
// A record date is zone-less ISO meaning UTC, or zoned: an accepted date round-trips through
// its RFC 3339 form and its zone-less UTC form, and a zone-less date is accepted exactly when
// the same date with "Z" is, at the same instant.
//
// Retry-After waits at least a second and at most a day: delay-seconds as sent (clamped, a
// huge one meaning a day), an HTTP date until then (clamped), and a minute for anything else.
func FuzzParseDates(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseRecordDate(s)
		if again, err2 := ParseRecordDate(s); (err == nil) != (err2 == nil) || !again.Equal(tm) {
			t.Fatalf("ParseRecordDate(%q) is not deterministic", s)
		}
		if err == nil {
			rfc := tm.Format(time.RFC3339Nano)
			if back, err := ParseRecordDate(rfc); err != nil || !back.Equal(tm) {
				t.Fatalf("%q parsed to %v, whose RFC 3339 form %q gives %v, %v", s, tm, rfc, back, err)
			}
			if y := tm.UTC().Year(); y >= 0 && y <= 9999 {
				zoneless := tm.UTC().Format("2006-01-02T15:04:05.999999999")
				if back, err := ParseRecordDate(zoneless); err != nil || !back.Equal(tm) {
					t.Fatalf("%q parsed to %v, whose zone-less UTC form %q gives %v, %v", s, tm, zoneless, back, err)
				}
			}
		}
		if z, errZ := time.Parse(time.RFC3339Nano, s+"Z"); errZ == nil {
			if err != nil {
				t.Fatalf("zone-less %q was refused though %q is a valid RFC 3339 date", s, s+"Z")
			}
			if !tm.Equal(z) {
				t.Fatalf("zone-less %q parsed to %v, not UTC %v", s, tm, z)
			}
		}

		got := parseRetryAfter(s, fuzzNow)
		if got < time.Second || got > 24*time.Hour {
			t.Fatalf("parseRetryAfter(%q) = %v, outside [1s, 24h]", s, got)
		}
		if want, ok := wantRetryAfter(s); ok && got != want {
			t.Fatalf("parseRetryAfter(%q) = %v, want %v", s, got, want)
		}
	})
}

// wantRetryAfter is what a Retry-After value must mean, computed without int64 arithmetic that
// could overflow. It answers only for values whose meaning is clear.
func wantRetryAfter(v string) (time.Duration, bool) {
	clamp := func(d time.Duration) time.Duration { return min(max(d, time.Second), 24*time.Hour) }
	digits := strings.TrimPrefix(strings.TrimSpace(v), "+")
	if digits != "" && strings.Trim(digits, "0123456789") == "" {
		digits = strings.TrimLeft(digits, "0")
		if len(digits) > 6 {
			return 24 * time.Hour, true // more than a day, however large
		}
		n, _ := strconv.Atoi("0" + digits)
		return clamp(time.Duration(n) * time.Second), true
	}
	if strings.HasPrefix(strings.TrimSpace(v), "-") {
		return 0, false // negative: any wait in range will do
	}
	if tm, err := http.ParseTime(v); err == nil {
		return clamp(tm.Sub(fuzzNow)), true
	}
	return time.Minute, true
}

// FuzzJWTTimes reads the iat and exp claims of arbitrary tokens, and of well-formed tokens
// around arbitrary claims. Times are never negative nor absurdly far away, and a plain exp
// claim is read as sent.
func FuzzJWTTimes(f *testing.F) {
	f.Fuzz(func(t *testing.T, token string, claims []byte) {
		inRange := func(what string, v int64) {
			if v < 0 || v > 1e11 {
				t.Fatalf("%s %d out of range", what, v)
			}
		}
		iat, exp := jwtTimes(token)
		inRange("iat", iat)
		inRange("exp", exp)

		built := "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9." + base64.RawURLEncoding.EncodeToString(claims) + ".c2lnbmF0dXJl"
		iat, exp = jwtTimes(built)
		inRange("iat", iat)
		inRange("exp", exp)
		if padded := strings.Replace(built, ".c2ln", "==.c2ln", 1); len(claims)%3 != 0 {
			if i2, e2 := jwtTimes(padded); i2 != iat || e2 != exp {
				t.Fatalf("padding changed the claims read: %d,%d vs %d,%d", i2, e2, iat, exp)
			}
		}
		if want, ok := plainExp(claims); ok {
			if exp != want || iat != 0 {
				t.Fatalf("claims %s: got iat %d exp %d, want iat 0 exp %d", claims, iat, exp, want)
			}
		}
	})
}

// plainExp answers for claims that are an object with exactly one exp claim, a JSON number,
// and no iat claim: the expiry they mean, 0 when it is not a usable Unix time.
func plainExp(claims []byte) (int64, bool) {
	d := json.NewDecoder(bytes.NewReader(claims))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return 0, false
	}
	var exp []byte
	found := 0
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return 0, false
		}
		k, _ := tok.(string)
		var v json.RawMessage
		if d.Decode(&v) != nil {
			return 0, false
		}
		switch {
		case strings.EqualFold(k, "iat"):
			return 0, false
		case strings.EqualFold(k, "exp"):
			exp, found = v, found+1
		}
	}
	if tok, err := d.Token(); err != nil || tok != json.Delim('}') {
		return 0, false
	}
	if _, err := d.Token(); err != io.EOF {
		return 0, false
	}
	if found != 1 || len(exp) == 0 || (exp[0] != '-' && (exp[0] < '0' || exp[0] > '9')) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(exp), 64)
	if err != nil {
		return 0, true // out of float range: the claims are refused, so no expiry
	}
	if f <= 0 || f > 1e11 {
		return 0, true
	}
	return int64(f), true
}

// FuzzDescribeBody turns arbitrary error bodies into the short message put in errors and logs.
// The message is short, valid UTF-8, and never repeats a secret-looking value of the body
// (a password or token field, at any depth) that is not also one of the fields it shows.
func FuzzDescribeBody(f *testing.F) {
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		msg := describeBody(contentType, body)
		if len(msg) > 200+len("…") || (len(msg) > 200 && !strings.HasSuffix(msg, "…")) {
			t.Fatalf("message of %d bytes: %q", len(msg), msg)
		}
		if !utf8.ValidString(msg) {
			t.Fatalf("message is not valid UTF-8: %q", msg)
		}
		checkNoSecret(t, body, msg)
	})
}

// FuzzTokenRequest sends /oauth/token answers of any status, type and body through the client's
// token request, and adopts what it accepts:
//   - 429 is a rate limit of 1s to 24h;
//   - any other non-200 is an HTTPError with that status whose message leaks no secret, and
//     only a 4xx naming an OAuth error is a refusal that drops the refresh token;
//   - 200 gives an error or a bearer access token, adopted with the lifetime expires_in gives
//     it (a second to ten years), never born expired, else with the JWT's own times.
func FuzzTokenRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, status int, contentType, retryAfter string, body []byte) {
		if status < 100 || status > 599 {
			status = 100 + int(uint(status)%500)
		}
		c, err := New(Config{Now: func() time.Time { return fuzzNow }, Logger: log.NewNopLogger()})
		if err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
			h := http.Header{}
			if contentType != "" {
				h.Set("Content-Type", contentType)
			}
			if retryAfter != "" {
				h.Set("Retry-After", retryAfter)
			}
			return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader(body))}, nil
		})}
		req, _ := http.NewRequest(http.MethodPost, "https://auth.example/oauth/token", strings.NewReader("grant_type=refresh_token"))
		tr, err := c.tokenRequest(context.Background(), hc, req)
		if (tr == nil) == (err == nil) {
			t.Fatalf("got %v and %v", tr, err)
		}
		var rl *RateLimitedError
		var he *HTTPError
		blocked := isAccountBlocked(&response{status: status, body: body})
		switch {
		case status == http.StatusTooManyRequests && !blocked:
			if !errors.As(err, &rl) {
				t.Fatalf("429 gave %v", err)
			}
			if d := rl.Until.Sub(fuzzNow); d < time.Second || d > 24*time.Hour {
				t.Fatalf("429 with Retry-After %q waits %v", retryAfter, d)
			}
		case status != http.StatusOK:
			if !errors.As(err, &he) || he.Status != status || he.Endpoint != "token" {
				t.Fatalf("HTTP %d gave %v", status, err)
			}
			checkNoSecret(t, body, he.Message)
			refused := errors.Is(err, errTokenRefused)
			if refused && (status < 400 || status >= 500) {
				t.Fatalf("HTTP %d was taken for a refusal of the grant", status)
			}
			if names := oauthError(body); names && status >= 400 && status < 500 && !refused {
				t.Fatalf("HTTP %d naming an OAuth error was not taken for a refusal: %s", status, body)
			}
		case err == nil:
			if tr.AccessToken == "" {
				t.Fatal("accepted an answer without an access token")
			}
			if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
				t.Fatalf("accepted token type %q", tr.TokenType)
			}
			checkAdopt(t, c, tr)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// oauthError tells whether body is a JSON object with exactly one key spelled like "error"
// whose value is a non-empty string.
func oauthError(body []byte) bool {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return false
	}
	n, named := 0, false
	for k, v := range m {
		if strings.EqualFold(k, "error") {
			n++
			s, _ := v.(string)
			named = s != ""
		}
	}
	return n == 1 && named
}

// checkAdopt adopts tr and checks the token lifetime the client will renew by.
func checkAdopt(t *testing.T, c *Client, tr *tokenResponse) {
	t.Helper()
	ts := c.tokens
	ts.mu.Lock()
	ts.adoptLocked(tr)
	st := ts.st
	ts.mu.Unlock()
	now := fuzzNow.Unix()
	if st.IssuedAt < 0 || st.ExpiresAt < 0 {
		t.Fatalf("negative token times %d, %d", st.IssuedAt, st.ExpiresAt)
	}
	const tenYears = 10 * 365 * 24 * 3600
	iat, exp := jwtTimes(tr.AccessToken)
	switch in := tr.ExpiresIn; {
	case in.Valid && in.Value >= 1 && in.Value <= tenYears:
		if st.IssuedAt != now || st.ExpiresAt != now+int64(in.Value) {
			t.Fatalf("expires_in %v: token issued %d expires %d, want %d and %d", in.Value, st.IssuedAt, st.ExpiresAt, now, now+int64(in.Value))
		}
	case in.Valid && in.Value > tenYears:
		// Absurd, but a lifetime all the same: the token must not be born expired (which
		// would renew it on every request); falling back to the JWT's own times is fine too.
		if st.ExpiresAt <= now && (st.IssuedAt != iat || st.ExpiresAt != exp) {
			t.Fatalf("expires_in %v: token issued %d expires %d (now %d): born expired", in.Value, st.IssuedAt, st.ExpiresAt, now)
		}
	case !in.Valid || in.Value <= 0:
		if st.IssuedAt != iat || st.ExpiresAt != exp {
			t.Fatalf("without expires_in the token times %d, %d are not the JWT's %d, %d", st.IssuedAt, st.ExpiresAt, iat, exp)
		}
	}
	if exp, ok := c.TokenExpiry(); ok && exp.Unix() <= 0 {
		t.Fatalf("token expiry %v", exp)
	}
}

// secretKeys name fields whose values must never reach an error message.
var secretKeys = []string{"password", "access_token", "refresh_token", "id_token", "code_verifier", "client_secret", "session_id", "_csrf", "wresult"}

// checkNoSecret fails when msg, made from body by describeBody, repeats a token-like value
// (8+ characters, no spaces or commas, so it cannot straddle the message's own separators)
// found under a secret key of body at any depth, unless a field that describeBody shows on
// purpose (error, message, description, error_description, or a scalar code) holds it too.
func checkNoSecret(t *testing.T, body []byte, msg string) {
	t.Helper()
	var top any
	if json.Unmarshal(body, &top) != nil {
		return
	}
	var secrets []string
	collectSecrets(top, false, &secrets)
	if len(secrets) == 0 {
		return
	}
	shown := []string{describeBody("text/html", nil), describeBody("", []byte("?"))}
	if m, ok := top.(map[string]any); ok {
		for k, v := range m {
			for _, f := range []string{"error", "message", "description", "error_description", "code", "error_code"} {
				if !strings.EqualFold(k, f) {
					continue
				}
				switch v := v.(type) {
				case string:
					shown = append(shown, v)
				case float64, bool:
					shown = append(shown, fmt.Sprint(v))
				}
			}
		}
	}
	for _, s := range secrets {
		if !strings.Contains(msg, s) {
			continue
		}
		allowed := false
		for _, sh := range shown {
			allowed = allowed || strings.Contains(sh, s)
		}
		if !allowed {
			t.Fatalf("the message %q repeats the secret %q of the body %s", msg, s, body)
		}
	}
}

func collectSecrets(v any, secret bool, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			isSecret := secret
			for _, sk := range secretKeys {
				isSecret = isSecret || strings.EqualFold(k, sk)
			}
			collectSecrets(e, isSecret, out)
		}
	case []any:
		for _, e := range v {
			collectSecrets(e, secret, out)
		}
	case string:
		if secret && len(v) >= 8 && strings.Trim(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~+/=-") == "" {
			*out = append(*out, v)
		}
	}
}

// TestFuzzSeedsDecode keeps the shared overview seeds valid JSON for the collector's fuzz target.
func TestFuzzSeedsDecode(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "collector", "testdata", "overview_*.json"))
	if len(files) == 0 {
		t.Fatal("no overview fixtures found")
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var ov Overview
		if err := json.Unmarshal(b, &ov); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzLoginPage reads a login page as Peloton could send it. parseInjectedConfig never panics,
// is deterministic, reports a page without the config line as (nil, nil), accepts only a
// config with internalOptions, and reads back what a config written as the page writes it
// holds.
func FuzzLoginPage(f *testing.F) {
	f.Fuzz(func(t *testing.T, page []byte) {
		cfg, err := parseInjectedConfig(page)
		again, err2 := parseInjectedConfig(page)
		if (err == nil) != (err2 == nil) || (cfg == nil) != (again == nil) {
			t.Fatal("parseInjectedConfig is not deterministic")
		}
		if cfg != nil && err != nil {
			t.Fatal("a config came with an error")
		}
		if !injectedConfigRE.Match(page) && (cfg != nil || err != nil) {
			t.Fatalf("a page without the config line gave %v, %v", cfg, err)
		}
		if cfg == nil {
			return
		}
		if len(cfg.InternalOptions) == 0 {
			t.Fatal("a config without internalOptions was accepted")
		}
		raw, _ := json.Marshal(cfg)
		line := `window.injectedConfig = window.injectedConfig || "` + base64.StdEncoding.EncodeToString(raw) + `";`
		back, err := parseInjectedConfig([]byte(line))
		if err != nil || back == nil || !reflect.DeepEqual(sortedKeys(back.InternalOptions), sortedKeys(cfg.InternalOptions)) ||
			back.CallbackURL != cfg.CallbackURL || back.Auth0Tenant != cfg.Auth0Tenant {
			t.Fatalf("the config written back reads as %+v, %v; want %+v", back, err, cfg)
		}
	})
}

// FuzzCredentialsAnswer classifies what the credentials post could answer. It never panics,
// a 200 is never a refusal, and an unknown answer's error shows no secret of the body. Of the
// two protections that answer 429 too_many_attempts, judged here from the body's keys, not by
// the code under test: the brute-force block, whose description says the account has been
// blocked, is always the blocked account; the IP throttling, whose description says nothing
// of the account ("further attempts will be blocked"), never is.
func FuzzCredentialsAnswer(f *testing.F) {
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			status = 100 + int(uint(status)%500)
		}
		r := &response{status: status, header: http.Header{}, body: body}
		err := credentialsRefusal(r)
		if status == http.StatusOK && err != nil {
			t.Fatalf("200 gave %v", err)
		}
		if code, description, ok := auth0Error(body); ok && status == http.StatusTooManyRequests && code == "too_many_attempts" {
			said := strings.ToLower(description)
			switch blocked := errors.Is(err, ErrAccountBlocked); {
			case strings.Contains(said, "account has been blocked") && !blocked:
				t.Fatalf("the brute-force block %q gave %v", description, err)
			case !strings.Contains(said, "account") && blocked:
				t.Fatalf("a too_many_attempts that says nothing of the account (%q) was taken for a blocked account", description)
			}
		}
		var he *HTTPError
		if errors.As(err, &he) {
			checkNoSecret(t, body, he.Message)
		}
	})
}

// auth0Error reads the code and description of a /usernamepassword/login error body, when the
// body is a JSON object that names each of them once (keys compared as encoding/json does,
// without regard to case) and names no OAuth error beside them.
func auth0Error(body []byte) (code, description string, ok bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return "", "", false
	}
	get := func(name string) (string, bool) {
		var found []json.RawMessage
		for k, v := range m {
			if strings.EqualFold(k, name) {
				found = append(found, v)
			}
		}
		var s string
		return s, len(found) == 1 && json.Unmarshal(found[0], &s) == nil
	}
	code, okCode := get("code")
	description, okDesc := get("description")
	_, oauth := get("error")
	_, oauthDesc := get("error_description")
	return code, description, okCode && okDesc && description != "" && !oauth && !oauthDesc
}
