package config_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/peloton-exporter/peloton_exporter/config"
)

// FuzzParse feeds the parser arbitrary files: it never panics, what it accepts keeps every
// promise of the package (valid unique names, secrets only from files or the environment, a
// username exactly with a password), and no error repeats the value of a variable it read.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"accounts:\n  - name: alex\n    username: a@b.c\n    password_file: /p\n",
		"accounts:\n  - {name: sam, refresh_token_file: ${DIR}/rt, timezone: Europe/Berlin, week_start: sunday}\n",
		"accounts:\n  - name: kim\n    username: k\n    password: ${SECRET}\n  - name: kim\n",
		"accounts: [1, {name: x}]\n",
		"accounts:\n  - name: a\n    password: inline\n",
		"- &a [*a]\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	const secret = "fuzz-env-secret-value"
	lookup := env(map[string]string{"SECRET": secret, "DIR": "/run/" + secret})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse(data, lookup)
		if err != nil {
			if strings.Contains(err.Error(), secret) && !strings.Contains(string(data), secret) {
				t.Fatalf("the error repeats a variable's value: %v", err)
			}
			return
		}
		var names []string
		for _, a := range c.Accounts {
			if !config.NamePattern.MatchString(a.Name) || slices.Contains(names, a.Name) {
				t.Fatalf("accepted the name %q (names so far %v)", a.Name, names)
			}
			names = append(names, a.Name)
			if (a.Username == "") != !a.Password.IsSet() {
				t.Fatalf("accepted a username without a password or the other way round: %+v", a)
			}
			for _, s := range []config.Secret{a.Password, a.RefreshToken, a.AccessToken} {
				if s.File != "" && s.Env != "" {
					t.Fatalf("a secret from a file and a variable at once: %+v", s)
				}
				if s.Env != "" && s.Env != "SECRET" && s.Env != "DIR" {
					t.Fatalf("a secret from a variable that is not set: %+v", s)
				}
			}
		}
		if len(c.Accounts) == 0 {
			t.Fatal("accepted a file without accounts")
		}
	})
}
