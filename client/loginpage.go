package client

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"golang.org/x/net/html"
)

// injectedConfig is the part of the login page's window.injectedConfig the login needs
// (homebridge-peloton SPEC.md 4.1: auth0Tenant, callbackURL, clientID, internalOptions).
type injectedConfig struct {
	Auth0Tenant     string                     `json:"auth0Tenant"`
	CallbackURL     string                     `json:"callbackURL"`
	ClientID        string                     `json:"clientID"`
	InternalOptions map[string]json.RawMessage `json:"internalOptions"`
}

// injectedConfigRE finds the one line that carries the page's configuration:
// window.injectedConfig = window.injectedConfig || "<base64 of JSON>";
var injectedConfigRE = regexp.MustCompile(`window\.injectedConfig\s*=\s*window\.injectedConfig\s*\|\|\s*"([^"]*)"`)

// parseInjectedConfig reads the page's configuration: nil without error when the page has no
// such line, an error when it has one that cannot be read. The page decodes it with
// decodeURIComponent(escape(atob(…))), a UTF-8 decode of base64.
func parseInjectedConfig(page []byte) (*injectedConfig, error) {
	m := injectedConfigRE.FindSubmatch(page)
	if m == nil {
		return nil, nil
	}
	bad := errors.New("its window.injectedConfig cannot be read (has Peloton's login page changed?)")
	raw, err := base64.StdEncoding.DecodeString(string(m[1]))
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(string(m[1])); err != nil {
			return nil, bad
		}
	}
	var cfg injectedConfig
	if err := json.Unmarshal(raw, &cfg); err != nil || len(cfg.InternalOptions) == 0 {
		return nil, bad
	}
	return &cfg, nil
}

// jsonString is the string a raw JSON value holds, or "".
func jsonString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// HiddenForm is the auto-submitting form Auth0 answers a successful credentials post with.
type HiddenForm struct {
	Action string
	Fields url.Values
}

// parseHiddenForm finds the first form in page and collects its named inputs.
func parseHiddenForm(page []byte) (*HiddenForm, error) {
	z := html.NewTokenizer(bytes.NewReader(page))
	var form *HiddenForm
	for {
		tt := z.Next()
		switch tt {
		case html.StartTagToken, html.SelfClosingTagToken:
			t := z.Token()
			switch {
			case t.Data == "form" && form == nil:
				form = &HiddenForm{Action: attr(t, "action"), Fields: url.Values{}}
			case t.Data == "input" && form != nil:
				if name := attr(t, "name"); name != "" {
					form.Fields.Add(name, attr(t, "value"))
				}
			}
			continue
		case html.EndTagToken:
			if form == nil || z.Token().Data != "form" {
				continue
			}
		case html.ErrorToken: // the end of the page, closed form or not
		default:
			continue
		}
		switch {
		case form == nil:
			return nil, errors.New("the answer holds no login form (has Peloton's login changed?)")
		case len(form.Fields) == 0:
			return nil, errors.New("the login form has no fields (has Peloton's login changed?)")
		}
		return form, nil
	}
}

func attr(t html.Token, name string) string {
	for _, a := range t.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// sortedKeys lists the names of a body's fields, for the trace.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// printable bounds a text Peloton sent back (an error description) for an error message:
// control characters dropped, at most n runes.
func printable(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
