// Package conformance holds Peloton's live login exchange as the public record documents it
// (testdata/live-login.json, written by hand from homebridge-peloton's SPEC.md and fixtures,
// peloton-to-garmin and public captures, each step naming its sources), and two ways to hold
// code to it: a replay server that answers exactly as the transcript says and checks every
// request the client makes, and a shape check of another server's answers (the simulator's).
// Neither the client nor the simulator wrote the transcript, so the two cannot drift into
// agreement on something Peloton does not do. It is for tests only.
package conformance

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/net/html"
)

//go:embed testdata/live-login.json
var transcriptJSON []byte

// Transcript is the live exchange: named steps, and flows as sequences of them.
type Transcript struct {
	Flows map[string][]string `json:"flows"`
	Steps map[string]*Step    `json:"steps"`
}

// Step is one request and its answer.
type Step struct {
	Name     string   `json:"-"`
	Sources  []string `json:"sources"`
	Request  Request  `json:"request"`
	Response Response `json:"response"`
}

// Request is what the client must send. Values may hold placeholders (see Vars); "*" is any
// non-empty value.
type Request struct {
	Method    string            `json:"method"`
	Host      string            `json:"host"`
	Path      string            `json:"path"`
	NoBody    bool              `json:"no_body"`
	Query     map[string]string `json:"query"`
	Headers   map[string]string `json:"headers"`    // a required prefix; "" only requires the header
	Cookies   []string          `json:"cookies"`    // "name" must be sent, or "name=value"
	NoCookies []string          `json:"no_cookies"` // another host's cookies, never to be sent here
	JSON      map[string]string `json:"json"`
	Form      map[string]string `json:"form"`
}

// Response is the live answer.
type Response struct {
	SameAs         string            `json:"same_as"`
	Status         int               `json:"status"`
	Headers        map[string]string `json:"headers"`
	SetCookie      []string          `json:"set_cookie"`
	Body           string            `json:"body"`
	InjectedConfig map[string]any    `json:"injected_config"`
}

// Load reads the transcript.
func Load() (*Transcript, error) {
	var t Transcript
	if err := json.Unmarshal(transcriptJSON, &t); err != nil {
		return nil, fmt.Errorf("conformance: %w", err)
	}
	for name, s := range t.Steps {
		s.Name = name
		if same := s.Response.SameAs; same != "" {
			other, ok := t.Steps[same]
			if !ok {
				return nil, fmt.Errorf("conformance: step %s: unknown same_as %q", name, same)
			}
			s.Response = other.Response
		}
	}
	for flow, names := range t.Flows {
		for _, n := range names {
			if t.Steps[n] == nil {
				return nil, fmt.Errorf("conformance: flow %s: unknown step %q", flow, n)
			}
		}
	}
	return &t, nil
}

// Flow is the steps of a flow, in order.
func (t *Transcript) Flow(name string) []*Step {
	var steps []*Step
	for _, n := range t.Flows[name] {
		steps = append(steps, t.Steps[n])
	}
	return steps
}

// Vars are what the client sent to /authorize, which the live service echoes.
type Vars struct {
	State, Nonce, CodeChallenge string
}

// VarsFrom reads them from an /authorize query.
func VarsFrom(q url.Values) Vars {
	return Vars{State: q.Get("state"), Nonce: q.Get("nonce"), CodeChallenge: q.Get("code_challenge")}
}

func (v Vars) expand(s string) string {
	return strings.NewReplacer("{{state}}", v.State, "{{nonce}}", v.Nonce, "{{code_challenge}}", v.CodeChallenge,
		"{{expires}}", time.Now().Add(365*24*time.Hour).UTC().Format(http.TimeFormat)).Replace(s)
}

// matches tells whether got is what want asks for.
func (v Vars) matches(want, got string) bool {
	switch want {
	case "*":
		return got != ""
	case "{{code_verifier}}": // the S256 preimage of the challenge sent to /authorize
		sum := sha256.Sum256([]byte(got))
		return got != "" && base64.RawURLEncoding.EncodeToString(sum[:]) == v.CodeChallenge
	}
	return got == v.expand(want)
}

// CheckRequest lists how r (with its body) differs from what the step expects. Values are
// named, never shown: they may be secrets.
func (s *Step) CheckRequest(r *http.Request, body []byte, v Vars) []string {
	var p []string
	bad := func(format string, args ...any) { p = append(p, s.Name+": "+fmt.Sprintf(format, args...)) }
	w := s.Request
	if r.Method != w.Method || !strings.EqualFold(r.URL.Hostname(), w.Host) || r.URL.Path != w.Path {
		bad("got %s %s%s, want %s %s%s", r.Method, r.URL.Hostname(), r.URL.Path, w.Method, w.Host, w.Path)
		return p
	}
	if r.URL.Scheme != "https" {
		bad("sent over %s", r.URL.Scheme)
	}
	if w.NoBody && len(body) > 0 {
		bad("a %s with a body", r.Method)
	}
	q := r.URL.Query()
	for k, want := range w.Query {
		if !v.matches(want, q.Get(k)) {
			bad("query %s is not as the live service wants it", k)
		}
	}
	for k, prefix := range w.Headers {
		got := r.Header.Get(k)
		if got == "" || !strings.HasPrefix(got, v.expand(prefix)) {
			bad("header %s is missing or not %q…", k, prefix)
		}
	}
	for _, c := range w.Cookies {
		name, value, withValue := strings.Cut(c, "=")
		ck, err := r.Cookie(name)
		if err != nil || (withValue && ck.Value != value) {
			bad("cookie %s was not sent (or not the one this host set)", name)
		}
	}
	for _, name := range w.NoCookies {
		if _, err := r.Cookie(name); err == nil {
			bad("cookie %s, which another host or path set, was sent", name)
		}
	}
	if w.JSON != nil {
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil {
			bad("the body is not a JSON object")
		}
		for k, want := range w.JSON {
			s, _ := got[k].(string)
			if !v.matches(want, s) {
				bad("JSON field %s is missing or not as the live service wants it", k)
			}
		}
	}
	if w.Form != nil {
		got, err := url.ParseQuery(string(body))
		if err != nil {
			bad("the body is not a form")
		}
		for k, want := range w.Form {
			if !v.matches(want, got.Get(k)) {
				bad("form field %s is missing or not as the live service wants it", k)
			}
		}
	}
	return p
}

// Write answers as the live service did.
func (s *Step) Write(w http.ResponseWriter, v Vars) {
	res := s.Response
	for k, val := range res.Headers {
		w.Header().Set(k, v.expand(val))
	}
	for _, c := range res.SetCookie {
		w.Header().Add("Set-Cookie", v.expand(c))
	}
	body := res.Body
	if res.InjectedConfig != nil {
		cfg, _ := json.Marshal(res.InjectedConfig) // from JSON: always marshals
		body = strings.Replace(body, "{{injected_config}}", base64.StdEncoding.EncodeToString([]byte(v.expand(string(cfg)))), 1)
	}
	w.WriteHeader(res.Status)
	w.Write([]byte(v.expand(body)))
}

// CheckResponseShape lists how an answer differs in shape from the live one: the status, the
// media type, the Location's host, path and query names, the cookies set with their
// attributes in order (values and expiry dates aside), and the body: a JSON error exactly, a
// token answer's keys, the login page's injectedConfig keys, the hidden form's action and
// fields.
func (s *Step) CheckResponseShape(resp *http.Response, body []byte) []string {
	var p []string
	bad := func(format string, args ...any) { p = append(p, s.Name+": "+fmt.Sprintf(format, args...)) }
	want := s.Response
	if resp.StatusCode != want.Status {
		bad("status %d, want %d", resp.StatusCode, want.Status)
	}
	if ct := want.Headers["Content-Type"]; ct != "" {
		if mediaType(resp.Header.Get("Content-Type")) != mediaType(ct) {
			bad("Content-Type %q, want %q", resp.Header.Get("Content-Type"), ct)
		}
	}
	if loc := want.Headers["Location"]; loc != "" {
		if got, want := locationShape(resp.Header.Get("Location")), locationShape(loc); got != want {
			bad("Location %s, want %s", got, want)
		}
	}
	if got, want := cookieShapes(resp.Header.Values("Set-Cookie")), cookieShapes(want.SetCookie); !slices.Equal(got, want) {
		bad("cookies set %q, want %q", got, want)
	}
	p = append(p, s.checkBodyShape(body)...)
	return p
}

func (s *Step) checkBodyShape(body []byte) []string {
	var p []string
	bad := func(format string, args ...any) { p = append(p, s.Name+": "+fmt.Sprintf(format, args...)) }
	want := s.Response
	switch {
	case want.InjectedConfig != nil:
		m := regexp.MustCompile(`window\.injectedConfig = window\.injectedConfig \|\| "([^"]*)";`).FindSubmatch(body)
		if m == nil {
			bad("no window.injectedConfig line")
			return p
		}
		raw, err := base64.StdEncoding.DecodeString(string(m[1]))
		var got map[string]any
		if err != nil || json.Unmarshal(raw, &got) != nil {
			bad("window.injectedConfig is not base64 JSON")
			return p
		}
		// The keys SPEC.md 4.1 names; the page's presentation keys may differ.
		for _, k := range []string{"auth0Domain", "auth0Tenant", "callbackURL", "clientID", "clientConfigurationBaseUrl", "internalOptions", "extraParams"} {
			if _, ok := got[k]; !ok {
				bad("injectedConfig lacks %s", k)
			}
		}
		gotOpts, _ := got["internalOptions"].(map[string]any)
		wantOpts, _ := want.InjectedConfig["internalOptions"].(map[string]any)
		if g, w := keys(gotOpts), keys(wantOpts); !slices.Equal(g, w) {
			bad("internalOptions keys %v, want %v", g, w)
		}
	case strings.HasPrefix(want.Body, "{"):
		var got, exp map[string]any
		if json.Unmarshal(body, &got) != nil {
			bad("the body is not JSON")
			return p
		}
		if json.Unmarshal([]byte(want.Body), &exp) != nil {
			bad("the transcript's body is not JSON")
			return p
		}
		if g, w := keys(got), keys(exp); !slices.Equal(g, w) {
			bad("JSON keys %v, want %v", g, w)
		}
		if _, tokens := exp["access_token"]; !tokens && !jsonEqual(got, exp) {
			bad("JSON body %s, want %s", body, want.Body)
		}
	case strings.Contains(want.Body, `name="hiddenform"`):
		ga, gf := formShape(body)
		wa, wf := formShape([]byte(want.Body))
		if ga != wa || !slices.Equal(gf, wf) {
			bad("hidden form to %q with %v, want to %q with %v", ga, gf, wa, wf)
		}
	}
	return p
}

func mediaType(v string) string {
	mt, _, _ := mime.ParseMediaType(v)
	return mt
}

// locationShape is a Location without its query values.
func locationShape(loc string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return "unparsable"
	}
	return u.Scheme + "://" + u.Host + u.Path + "?" + strings.Join(keys(u.Query()), "&")
}

// cookieShapes are Set-Cookie lines with their values and expiry dates taken out, sorted by
// name: "name; Path=/; Expires; HttpOnly; Secure; SameSite=None".
func cookieShapes(lines []string) []string {
	var out []string
	for _, l := range lines {
		parts := strings.Split(l, ";")
		name, _, _ := strings.Cut(strings.TrimSpace(parts[0]), "=")
		shape := []string{name}
		for _, a := range parts[1:] {
			a = strings.TrimSpace(a)
			if k, _, _ := strings.Cut(a, "="); strings.EqualFold(k, "Expires") {
				a = "Expires"
			}
			shape = append(shape, a)
		}
		out = append(out, strings.Join(shape, "; "))
	}
	sort.Strings(out)
	return out
}

// formShape is a page's first form's action and its input names, sorted.
func formShape(page []byte) (string, []string) {
	z := html.NewTokenizer(bytes.NewReader(page))
	action, inForm := "", false
	var names []string
	for {
		switch z.Next() {
		case html.ErrorToken:
			sort.Strings(names)
			return action, names
		case html.StartTagToken, html.SelfClosingTagToken:
			t := z.Token()
			for _, a := range t.Attr {
				switch {
				case t.Data == "form" && !inForm && a.Key == "action":
					action = a.Val
				case t.Data == "input" && inForm && a.Key == "name":
					names = append(names, a.Val)
				}
			}
			inForm = inForm || t.Data == "form"
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func jsonEqual(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
