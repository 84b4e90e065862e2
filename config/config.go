// Package config reads the exporter's --config.file: the Peloton accounts of a household,
// served one per target on /probe (the multi-target pattern of blackbox_exporter,
// snmp_exporter and json_exporter).
//
//	accounts:
//	  - name: alex                       # the target name
//	    username: alex@example.com
//	    password_file: /run/secrets/alex_password
//	  - name: sam
//	    refresh_token_file: /run/secrets/sam_refresh_token
//	    timezone: Europe/Berlin
//	    week_start: sunday
//
// The file is strict: an unknown key, a value of the wrong kind or a repeated name is an error
// that says where. Secrets never stand in it: they come from files (*_file) or from
// environment variables (password: ${ALEX_PASSWORD}), and no error repeats a value.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/peloton-exporter/peloton_exporter/internal/secretfile"
)

// Config is a checked configuration file.
type Config struct {
	Accounts []Account
}

// Account is one Peloton account: a profile of the membership, a target of /probe.
type Account struct {
	Name     string // ^[a-z0-9][a-z0-9_-]{0,62}$, unique: the target name and the state file's name
	Username string // for password logins
	// Where its secrets come from; a zero Secret is none.
	Password, RefreshToken, AccessToken Secret
	Timezone                            string       // IANA zone of streak weeks; "" takes the flag's default
	WeekStart                           time.Weekday // valid when WeekStartSet
	WeekStartSet                        bool
	Line                                int // where the account starts in the file
}

// Streak is the account's streak week: its own zone and first day where it sets them, else
// the given defaults (the --streak.* flags).
func (a Account) Streak(zone string, start time.Weekday) (string, time.Weekday) {
	if a.Timezone != "" {
		zone = a.Timezone
	}
	if a.WeekStartSet {
		start = a.WeekStart
	}
	return zone, start
}

// Secret says where a password or token comes from: a file, or an environment variable.
type Secret struct {
	File string // path of a file holding it
	Env  string // name of an environment variable holding it
	key  string // the key that named it, for messages
}

// IsSet tells whether the account has this secret.
func (s Secret) IsSet() bool { return s.File != "" || s.Env != "" }

// String names where the secret comes from, never what it is.
func (s Secret) String() string {
	switch {
	case s.File != "":
		return s.key + " " + s.File
	case s.Env != "":
		return s.key + " ${" + s.Env + "}"
	}
	return "none"
}

// NamePattern is what an account name must match: it becomes the instance label and a file
// name, so it is kept to what is safe in both.
var NamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// The keys of an account; the secret keys take only an ${ENV} reference.
const (
	keyName             = "name"
	keyUsername         = "username"
	keyPasswordFile     = "password_file"
	keyRefreshTokenFile = "refresh_token_file"
	keyAccessTokenFile  = "access_token_file"
	keyPassword         = "password"
	keyRefreshToken     = "refresh_token"
	keyAccessToken      = "access_token"
	keyTimezone         = "timezone"
	keyWeekStart        = "week_start"
)

var accountKeys = []string{keyName, keyUsername, keyPasswordFile, keyRefreshTokenFile, keyAccessTokenFile,
	keyPassword, keyRefreshToken, keyAccessToken, keyTimezone, keyWeekStart}

// Load reads and checks the file at path; lookup resolves ${VAR} references (os.LookupEnv).
// It reads no secret: Secret.Read does, when an account starts.
func Load(path string, lookup func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the config file: %w", err)
	}
	c, err := Parse(data, lookup)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse checks a configuration; see Load.
func Parse(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty: want a list under the key accounts")
		}
		return nil, fmt.Errorf("not valid YAML: %w", cleanYAMLError(err))
	}
	var extra yaml.Node
	if dec.Decode(&extra) == nil {
		return nil, fmt.Errorf("line %d: a second YAML document; the file holds one", extra.Line)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want a mapping with the key accounts", root.Line)
	}
	var accounts *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch {
		case k.Value != "accounts":
			return nil, fmt.Errorf("line %d: unknown key %q (the file has one key, accounts)", k.Line, k.Value)
		case accounts != nil:
			return nil, fmt.Errorf("line %d: accounts is given twice", k.Line)
		}
		accounts = v
	}
	if accounts == nil || accounts.Kind == yaml.ScalarNode && accounts.Tag == "!!null" {
		return nil, fmt.Errorf("line %d: no accounts: want a list under the key accounts", root.Line)
	}
	if accounts.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: accounts must be a list (each account starts with \"- name: …\")", accounts.Line)
	}
	if len(accounts.Content) == 0 {
		return nil, fmt.Errorf("line %d: accounts is empty: want at least one account", accounts.Line)
	}
	c := &Config{}
	seen := map[string]int{}
	for _, n := range accounts.Content {
		a, err := parseAccount(n, lookup)
		if err != nil {
			return nil, err
		}
		if first, dup := seen[a.Name]; dup {
			return nil, fmt.Errorf("line %d: the account name %q is taken by the account at line %d: names must be unique", a.Line, a.Name, first)
		}
		seen[a.Name] = a.Line
		c.Accounts = append(c.Accounts, a)
	}
	return c, nil
}

// parseAccount checks one entry of the accounts list.
func parseAccount(n *yaml.Node, lookup func(string) (string, bool)) (Account, error) {
	a := Account{Line: n.Line}
	if n.Kind != yaml.MappingNode {
		return a, fmt.Errorf("line %d: an account must be a mapping of keys such as name and username", n.Line)
	}
	values := map[string]string{} // ${VAR} expanded
	raw := map[string]string{}    // as written, for messages: a variable's value is not repeated
	lines := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case !slices.Contains(accountKeys, k.Value):
			return a, fmt.Errorf("line %d: unknown key %q in an account (known keys: %s)", k.Line, k.Value, strings.Join(accountKeys, ", "))
		case lines[k.Value] != 0:
			return a, fmt.Errorf("line %d: %s is given twice in this account (first at line %d)", k.Line, k.Value, lines[k.Value])
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
			return a, fmt.Errorf("line %d: %s has no value", k.Line, k.Value)
		case v.Kind != yaml.ScalarNode:
			return a, fmt.Errorf("line %d: %s must be a string", v.Line, k.Value)
		}
		if isSecretKey(k.Value) {
			env, err := envReference(k.Value, v.Value, lookup)
			if err != nil {
				return a, fmt.Errorf("line %d: %w", v.Line, err)
			}
			values[k.Value], lines[k.Value] = env, v.Line
			continue
		}
		val := v.Value
		if k.Value != keyName { // a name is an identifier, the same in the file and in Prometheus
			var err error
			if val, err = expand(v.Value, lookup); err != nil {
				return a, fmt.Errorf("line %d: %s: %w", v.Line, k.Value, err)
			}
		}
		values[k.Value], raw[k.Value], lines[k.Value] = strings.TrimSpace(val), strings.TrimSpace(v.Value), v.Line
	}

	a.Name = values[keyName]
	switch {
	case lines[keyName] == 0:
		return a, fmt.Errorf("line %d: an account without a name (the target name of /probe?target=…)", n.Line)
	case !NamePattern.MatchString(a.Name):
		return a, fmt.Errorf("line %d: the account name %q must be 1 to 63 lower-case letters, digits, _ or -, starting with a letter or digit "+
			"(it becomes the instance label and a file name)", lines[keyName], a.Name)
	}
	a.Username = values[keyUsername]
	var err error
	if a.Password, err = secretOf(values, lines, keyPasswordFile, keyPassword); err != nil {
		return a, err
	}
	if a.RefreshToken, err = secretOf(values, lines, keyRefreshTokenFile, keyRefreshToken); err != nil {
		return a, err
	}
	if a.AccessToken, err = secretOf(values, lines, keyAccessTokenFile, keyAccessToken); err != nil {
		return a, err
	}
	switch {
	case a.Username != "" && !a.Password.IsSet():
		return a, fmt.Errorf("line %d: account %s has a username but no password: set password_file (or password: ${ENV_VAR})", lines[keyUsername], a.Name)
	case a.Password.IsSet() && a.Username == "":
		return a, fmt.Errorf("line %d: account %s has a password but no username", n.Line, a.Name)
	case lines[keyUsername] != 0 && a.Username == "":
		return a, fmt.Errorf("line %d: account %s: username is empty", lines[keyUsername], a.Name)
	}
	if tz := values[keyTimezone]; tz != "" {
		if _, err := time.LoadLocation(tz); err != nil {
			return a, fmt.Errorf("line %d: account %s: timezone %q is not an IANA time zone such as Europe/Berlin", lines[keyTimezone], a.Name, raw[keyTimezone])
		}
		a.Timezone = tz
	}
	if ws, ok := values[keyWeekStart]; ok {
		d, found := weekday(ws)
		if !found {
			return a, fmt.Errorf("line %d: account %s: week_start %q is not a day of the week (monday … sunday)", lines[keyWeekStart], a.Name, raw[keyWeekStart])
		}
		a.WeekStart, a.WeekStartSet = d, true
	}
	return a, nil
}

func isSecretKey(k string) bool {
	return k == keyPassword || k == keyRefreshToken || k == keyAccessToken
}

// secretOf is the secret of fileKey or envKey, never both.
func secretOf(values map[string]string, lines map[string]int, fileKey, envKey string) (Secret, error) {
	file, env := values[fileKey], values[envKey]
	switch {
	case lines[fileKey] != 0 && lines[envKey] != 0:
		return Secret{}, fmt.Errorf("line %d: set %s or %s, not both", lines[envKey], fileKey, envKey)
	case lines[fileKey] != 0 && file == "":
		return Secret{}, fmt.Errorf("line %d: %s is empty", lines[fileKey], fileKey)
	case file != "":
		return Secret{File: file, key: fileKey}, nil
	case env != "":
		return Secret{Env: env, key: envKey}, nil
	}
	return Secret{}, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// envReference checks the value of a secret key, which may only name an environment variable:
// a secret written into the file would be one more copy to leak (backups, a repository, a
// ConfigMap). It returns the variable's name; the message never repeats the value.
func envReference(key, value string, lookup func(string) (string, bool)) (string, error) {
	m := envRef.FindStringSubmatch(strings.TrimSpace(value))
	if m == nil || m[0] != strings.TrimSpace(value) {
		return "", fmt.Errorf("%s may not be written into the config file: put it in a file and name it with %s_file, "+
			"or name an environment variable that holds it (%s: ${ENV_VAR})", key, key, key)
	}
	if v, ok := lookup(m[1]); !ok || strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("%s: the environment variable %s is not set or empty", key, m[1])
	}
	return m[1], nil
}

// expand replaces ${VAR} references with the variables' values; a reference to an unset
// variable is an error rather than an empty string, which would hide the mistake.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		v, ok := lookup(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("the environment variable %s is not set", strings.Join(missing, ", "))
	}
	return out, nil
}

func weekday(s string) (time.Weekday, bool) {
	for d := time.Sunday; d <= time.Saturday; d++ {
		if strings.EqualFold(d.String(), strings.TrimSpace(s)) {
			return d, true
		}
	}
	return 0, false
}

// Read returns the secret: the file's contents, or the environment variable's value, without
// surrounding white space. Loose says that users other than the exporter's can read the file.
// No error holds the secret.
func (s Secret) Read(lookup func(string) (string, bool)) (value string, loose bool, err error) {
	switch {
	case s.File != "":
		v, loose, _, err := secretfile.Read(s.File)
		switch {
		case errors.Is(err, secretfile.ErrEmpty):
			return "", false, fmt.Errorf("%s %s is empty", s.key, s.File)
		case err != nil:
			return "", false, fmt.Errorf("%s: %w", s.key, err)
		}
		return v, loose, nil
	case s.Env != "":
		v, ok := lookup(s.Env)
		if v = strings.TrimSpace(v); !ok || v == "" {
			return "", false, fmt.Errorf("%s: the environment variable %s is not set or empty", s.key, s.Env)
		}
		return v, false, nil
	}
	return "", false, nil
}

// cleanYAMLError drops the yaml package's prefix from a syntax error, which already says the
// line.
func cleanYAMLError(err error) error {
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}
