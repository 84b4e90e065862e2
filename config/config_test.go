package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peloton-exporter/peloton_exporter/config"
)

// env is the environment the tests expand ${VAR} from.
func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

var testEnv = env(map[string]string{"ALEX_PASSWORD": "alex-env-password", "SECRETS": "/run/secrets", "EMPTY": ""})

func TestParseValid(t *testing.T) {
	c, err := config.Parse([]byte(`# a household
accounts:
  - name: alex                       # the target name
    username: alex@example.com
    password_file: ${SECRETS}/alex_password
  - name: sam
    refresh_token_file: /run/secrets/sam_refresh_token
    timezone: Europe/Berlin
    week_start: Sunday
  - name: kim-2
    username: kim
    password: ${ALEX_PASSWORD}
    access_token: ${ALEX_PASSWORD}
  - name: "007"
`), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Accounts) != 4 {
		t.Fatalf("%d accounts, want 4", len(c.Accounts))
	}
	alex, sam, kim, bond := c.Accounts[0], c.Accounts[1], c.Accounts[2], c.Accounts[3]
	if alex.Name != "alex" || alex.Username != "alex@example.com" || alex.Password.File != "/run/secrets/alex_password" || alex.Line != 3 {
		t.Errorf("alex: %+v", alex)
	}
	if sam.RefreshToken.File != "/run/secrets/sam_refresh_token" || sam.Timezone != "Europe/Berlin" || !sam.WeekStartSet || sam.WeekStart != time.Sunday {
		t.Errorf("sam: %+v", sam)
	}
	if alex.WeekStartSet || alex.Timezone != "" {
		t.Errorf("alex has settings it did not ask for: %+v", alex)
	}
	if kim.Password.Env != "ALEX_PASSWORD" || kim.AccessToken.Env != "ALEX_PASSWORD" || kim.Password.File != "" {
		t.Errorf("kim: %+v", kim)
	}
	if got := kim.Password.String(); got != "password ${ALEX_PASSWORD}" || strings.Contains(got, "alex-env-password") {
		t.Errorf("kim's password is described as %q", got)
	}
	if bond.Name != "007" || bond.Password.IsSet() || bond.RefreshToken.IsSet() {
		t.Errorf("007: %+v", bond)
	}
	if v, loose, err := kim.Password.Read(testEnv); err != nil || v != "alex-env-password" || loose {
		t.Errorf("kim's password: %q %v %v", v, loose, err)
	}
}

// Every mistake is an error that says where, and none repeats a secret.
func TestParseErrors(t *testing.T) {
	const secret = "hunter2-inline-secret"
	for _, c := range []struct{ name, yaml, want string }{
		{"empty file", ``, "the file is empty"},
		{"not YAML", "accounts: [\n  - name: a\n", "not valid YAML"},
		{"not a mapping", "- name: a\n", "line 1: want a mapping"},
		{"unknown top-level key", "acounts:\n  - name: a\n", `line 1: unknown key "acounts"`},
		{"no accounts", "accounts:\n", "no accounts"},
		{"accounts not a list", "accounts:\n  name: a\n", "line 2: accounts must be a list"},
		{"empty list", "accounts: []\n", "accounts is empty"},
		{"two documents", "accounts:\n  - name: a\n---\naccounts:\n  - name: b\n", "line 3: a second YAML document"},
		{"account not a mapping", "accounts:\n  - alex\n", "line 2: an account must be a mapping"},
		{"unknown key", "accounts:\n  - name: a\n    pasword_file: /x\n", `line 3: unknown key "pasword_file" in an account`},
		{"key twice", "accounts:\n  - name: a\n    name: b\n", "line 3: name is given twice"},
		{"value not a string", "accounts:\n  - name: a\n    username: [x]\n", "line 3: username must be a string"},
		{"value missing", "accounts:\n  - name: a\n    password_file:\n", "line 3: password_file has no value"},
		{"no name", "accounts:\n  - username: a@b.c\n    password_file: /p\n", "line 2: an account without a name"},
		{"bad name", "accounts:\n  - name: Alex\n", `line 2: the account name "Alex" must be`},
		{"name with a slash", "accounts:\n  - name: ../etc\n", `the account name "../etc" must be`},
		{"name too long", "accounts:\n  - name: " + strings.Repeat("a", 64) + "\n", "must be 1 to 63"},
		{"duplicate name", "accounts:\n  - name: a\n  - name: b\n  - name: a\n", `line 4: the account name "a" is taken by the account at line 2`},
		{"username without password", "accounts:\n  - name: a\n    username: a@b.c\n", "line 3: account a has a username but no password"},
		{"password without username", "accounts:\n  - name: a\n    password_file: /p\n", "line 2: account a has a password but no username"},
		{"file and env", "accounts:\n  - name: a\n    username: u\n    password_file: /p\n    password: ${ALEX_PASSWORD}\n", "set password_file or password, not both"},
		{"inline password", "accounts:\n  - name: a\n    username: u\n    password: " + secret + "\n", "line 4: password may not be written into the config file"},
		{"inline token", "accounts:\n  - name: a\n    refresh_token: x${ALEX_PASSWORD}\n", "line 3: refresh_token may not be written"},
		{"env secret unset", "accounts:\n  - name: a\n    access_token: ${NOPE}\n", "line 3: access_token: the environment variable NOPE is not set"},
		{"env secret empty", "accounts:\n  - name: a\n    access_token: ${EMPTY}\n", "EMPTY is not set or empty"},
		{"expansion unset", "accounts:\n  - name: a\n    refresh_token_file: ${NOPE}/x\n", "line 3: refresh_token_file: the environment variable NOPE is not set"},
		{"bad timezone", "accounts:\n  - name: a\n    timezone: Mars/Olympus\n", `line 3: account a: timezone "Mars/Olympus"`},
		{"bad week start", "accounts:\n  - name: a\n    week_start: funday\n", `line 3: account a: week_start "funday"`},
		{"alias", "accounts:\n  - &x {name: a}\n  - *x\n", "line 3: an account must be a mapping"},
		// A name is not expanded, and no message repeats a variable's value.
		{"name from a variable", "accounts:\n  - name: ${ALEX_PASSWORD}\n", `the account name "${ALEX_PASSWORD}" must be`},
		{"bad zone from a variable", "accounts:\n  - name: a\n    timezone: ${ALEX_PASSWORD}\n", `timezone "${ALEX_PASSWORD}" is not`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Parse([]byte(c.yaml), testEnv)
			if err == nil {
				t.Fatalf("accepted:\n%s", c.yaml)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to say %q", err, c.want)
			}
			for _, s := range []string{secret, "alex-env-password"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("the error repeats a secret: %q", err)
				}
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "household.yml")
	if err := os.WriteFile(path, []byte("accounts:\n  - name: a\n    passwd: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path, testEnv)
	if err == nil || !strings.HasPrefix(err.Error(), path+": line 3: unknown key \"passwd\"") {
		t.Errorf("error %v, want it to start with the file and line", err)
	}
	if _, err := config.Load(filepath.Join(t.TempDir(), "missing.yml"), testEnv); err == nil || !strings.Contains(err.Error(), "missing.yml") {
		t.Errorf("a missing file: %v", err)
	}
}

func TestSecretRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, open, empty := write("good", "file-secret\n", 0o600), write("open", "x", 0o644), write("empty", "\n", 0o600)
	c, err := config.Parse([]byte("accounts:\n"+
		"  - {name: a, username: u, password_file: "+good+"}\n"+
		"  - {name: b, username: u, password_file: "+open+"}\n"+
		"  - {name: c, username: u, password_file: "+empty+"}\n"+
		"  - {name: d, username: u, password_file: "+filepath.Join(dir, "missing")+"}\n"), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if v, loose, err := c.Accounts[0].Password.Read(testEnv); v != "file-secret" || loose || err != nil {
		t.Errorf("a 0600 file: %q %v %v", v, loose, err)
	}
	if _, loose, err := c.Accounts[1].Password.Read(testEnv); !loose || err != nil {
		t.Errorf("a 0644 file: loose %v, %v", loose, err)
	}
	if _, _, err := c.Accounts[2].Password.Read(testEnv); err == nil || !strings.Contains(err.Error(), "password_file "+empty+" is empty") {
		t.Errorf("an empty file: %v", err)
	}
	if _, _, err := c.Accounts[3].Password.Read(testEnv); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a missing file: %v", err)
	}
	var none config.Secret
	if v, _, err := none.Read(testEnv); v != "" || err != nil || none.IsSet() {
		t.Errorf("no secret: %q %v", v, err)
	}
}
