package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/schema"
)

// B2Flags configure the default account and the optional accounts file. The environment names
// are those of Backblaze's own b2 CLI.
type B2Flags struct {
	KeyID    string `name:"b2-key-id" env:"B2_APPLICATION_KEY_ID" help:"Application key id of the default account." group:"B2"`
	Key      string `name:"b2-key" env:"B2_APPLICATION_KEY" help:"Application key of the default account (prefer the environment variable: flags show in ps)." group:"B2"`
	RealmURL string `name:"b2-realm-url" env:"B2_REALM_URL" default:"${realm_url}" help:"Where b2_authorize_account is sent, for the default account and file accounts without realmUrl; point it at a B2-compatible server." group:"B2"`
	Config   string `name:"config" short:"c" env:"B2JET_CONFIG" help:"YAML file of B2 accounts (accounts: {NAME: {keyId, key|keyFile|keyEnv, realmUrl, requestsPerSecond, replySubjects, weight, dailyTransactionBudget}}); see docs/configuration.md." group:"B2"`

	RequestsPerSecond float64       `name:"b2-requests-per-second" env:"B2JET_B2_REQUESTS_PER_SECOND" default:"0" help:"Rate limit of the default account's B2 calls; 0 means none." group:"B2"`
	CallTimeout       time.Duration `name:"b2-call-timeout" env:"B2JET_B2_CALL_TIMEOUT" default:"20s" help:"Time limit of one B2 HTTP call; must stay below 4/5 of the ack wait (the handler's watchdog)." group:"B2"`
}

// accountsFile is the YAML accounts file.
type accountsFile struct {
	Accounts map[string]accountEntry `yaml:"accounts"`
}

// accountEntry is one account of the accounts file. Exactly one of Key, KeyFile and KeyEnv gives
// the application key.
type accountEntry struct {
	KeyID             string  `yaml:"keyId"`
	Key               string  `yaml:"key"`
	KeyFile           string  `yaml:"keyFile"`
	KeyEnv            string  `yaml:"keyEnv"`
	RealmURL          string  `yaml:"realmUrl"`
	RequestsPerSecond float64 `yaml:"requestsPerSecond"`
	// ReplySubjects are the NATS subject patterns this account's requests may name as Reply-To
	// (consumer.Config.ReplySubjects); nil when the entry has none, so any Reply-To is accepted.
	ReplySubjects []string `yaml:"replySubjects"`
	// Weight is the account's share of the handler slots against the other accounts with
	// requests waiting (consumer.Account.Weight); absent means 1.
	Weight *int `yaml:"weight"`
	// DailyTransactionBudget caps the fleet's class C transactions of the account per UTC day
	// (worker.Config.TransactionBudgets); absent or 0 means none.
	DailyTransactionBudget int64 `yaml:"dailyTransactionBudget"`
}

const configSetting = "--config (B2JET_CONFIG)"

// hasDefaultCredentials reports whether any half of the default account's key is set.
func (f B2Flags) hasDefaultCredentials() bool { return f.KeyID != "" || f.Key != "" }

// validateRealm checks a realm URL: http(s) with a host.
func validateRealm(setting, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return badSetting(setting, "%q is not an http(s) URL", raw)
	}
	return nil
}

// accounts returns the B2 configuration of every account: the accounts file's, and "default"
// from the flags (B2_APPLICATION_KEY_ID and B2_APPLICATION_KEY), which replaces the keys of a
// "default" entry of the file (that entry may then give only replySubjects). It reads key files
// and key variables, so that a bad one fails at start.
func (f B2Flags) accounts() (map[string]b2.Config, error) {
	if err := validateRealm("--b2-realm-url (B2_REALM_URL)", f.RealmURL); err != nil {
		return nil, err
	}
	out := map[string]b2.Config{}
	if f.Config != "" {
		file, err := loadAccountsFile(f.Config)
		if err != nil {
			return nil, err
		}
		for _, name := range slices.Sorted(maps.Keys(file.Accounts)) {
			if name == schema.DefaultAccount && f.hasDefaultCredentials() {
				// Replaced by the flags below: the entry may give only replySubjects.
				continue
			}
			cfg, err := file.Accounts[name].config(name, f.RealmURL)
			if err != nil {
				return nil, err
			}
			out[name] = cfg
		}
	}
	switch {
	case f.KeyID != "" && f.Key == "":
		return nil, badSetting("--b2-key (B2_APPLICATION_KEY)", "missing: B2_APPLICATION_KEY_ID is set but the application key is not")
	case f.KeyID == "" && f.Key != "":
		return nil, badSetting("--b2-key-id (B2_APPLICATION_KEY_ID)", "missing: B2_APPLICATION_KEY is set but the application key id is not")
	case f.KeyID != "":
		out[schema.DefaultAccount] = b2.Config{KeyID: f.KeyID, Key: b2.Secret(f.Key), RealmURL: f.RealmURL, RequestsPerSecond: f.RequestsPerSecond}
	}
	if f.RequestsPerSecond < 0 {
		return nil, badSetting("--b2-requests-per-second (B2JET_B2_REQUESTS_PER_SECOND)", "must not be negative")
	}
	return out, nil
}

// replySubjects returns the replySubjects of every accounts-file entry that lists them, checked:
// the allow-lists of Reply-To subjects the worker enforces (consumer.Config.ReplySubjects). A
// "default" entry's list applies even when the flags give default's key, so that a security
// setting is never dropped silently. nil without --config.
func (f B2Flags) replySubjects() (map[string][]string, error) {
	if f.Config == "" {
		return nil, nil
	}
	file, err := loadAccountsFile(f.Config)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(file.Accounts)) {
		patterns := file.Accounts[name].ReplySubjects
		if patterns == nil {
			continue
		}
		for i, p := range patterns {
			if err := consumer.ValidateSubjectPattern(p); err != nil {
				return nil, badSetting(fmt.Sprintf("%s: accounts.%s.replySubjects[%d]", configSetting, name, i), "%v", err)
			}
		}
		out[name] = slices.Clone(patterns)
	}
	return out, nil
}

// weights returns the weight of every accounts-file entry that gives one, checked (an integer
// of at least 1). nil without --config.
func (f B2Flags) weights() (map[string]int, error) {
	if f.Config == "" {
		return nil, nil
	}
	file, err := loadAccountsFile(f.Config)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, name := range slices.Sorted(maps.Keys(file.Accounts)) {
		w := file.Accounts[name].Weight
		if w == nil {
			continue
		}
		if *w < 1 {
			return nil, badSetting(fmt.Sprintf("%s: accounts.%s.weight", configSetting, name), "%d is below 1", *w)
		}
		out[name] = *w
	}
	return out, nil
}

// transactionBudgets returns the dailyTransactionBudget of every accounts-file entry that gives
// one, checked (not negative). nil without --config.
func (f B2Flags) transactionBudgets() (map[string]int64, error) {
	if f.Config == "" {
		return nil, nil
	}
	file, err := loadAccountsFile(f.Config)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, name := range slices.Sorted(maps.Keys(file.Accounts)) {
		b := file.Accounts[name].DailyTransactionBudget
		if b < 0 {
			return nil, badSetting(fmt.Sprintf("%s: accounts.%s.dailyTransactionBudget", configSetting, name), "%d is negative", b)
		}
		if b > 0 {
			out[name] = b
		}
	}
	return out, nil
}

// unrestrictedAccounts are the names (sorted) of the accounts whose Reply-To is not restricted
// by replySubjects, when there are several accounts: any of their publishers may steer replies
// into another tenant's inbox. nil when there is only one account.
func unrestrictedAccounts(names []string, replySubjects map[string][]string) []string {
	if len(names) < 2 {
		return nil
	}
	var out []string
	for _, n := range names {
		if _, ok := replySubjects[n]; !ok {
			out = append(out, n)
		}
	}
	return out
}

// loadAccountsFile reads and strictly decodes the accounts file (unknown fields are errors, so a
// typo does not silently drop a setting).
func loadAccountsFile(path string) (*accountsFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, badSetting(configSetting, "cannot read %s: %v", path, unwrapOpError(err))
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var file accountsFile
	if err := dec.Decode(&file); err != nil && !errors.Is(err, io.EOF) {
		return nil, badSetting(configSetting, "%s: %s", path, oneLine(err.Error()))
	}
	if len(file.Accounts) == 0 {
		return nil, badSetting(configSetting, "%s: no accounts (want accounts: {NAME: {keyId: ..., keyFile: ...}})", path)
	}
	return &file, nil
}

// config turns one entry into a b2.Config; name is the account name, defaultRealm the realm
// used when the entry names none.
func (e accountEntry) config(name, defaultRealm string) (b2.Config, error) {
	field := func(f string) string { return fmt.Sprintf("%s: accounts.%s.%s", configSetting, name, f) }
	if !schema.ValidToken(name) {
		return b2.Config{}, badSetting(configSetting, "account name %q must be one subject token (no spaces, '.', '*', '>', '/', '\\')", name)
	}
	if e.KeyID == "" {
		return b2.Config{}, badSetting(field("keyId"), "missing")
	}
	set := 0
	for _, v := range []string{e.Key, e.KeyFile, e.KeyEnv} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return b2.Config{}, badSetting(field("key"), "give exactly one of key, keyFile and keyEnv")
	}
	key := e.Key
	switch {
	case e.KeyFile != "":
		raw, err := os.ReadFile(e.KeyFile)
		if err != nil {
			return b2.Config{}, badSetting(field("keyFile"), "cannot read %s: %v", e.KeyFile, unwrapOpError(err))
		}
		key = strings.TrimSpace(string(raw))
		if key == "" {
			return b2.Config{}, badSetting(field("keyFile"), "%s is empty", e.KeyFile)
		}
	case e.KeyEnv != "":
		key = os.Getenv(e.KeyEnv)
		if key == "" {
			return b2.Config{}, badSetting(field("keyEnv"), "environment variable %s is not set", e.KeyEnv)
		}
	}
	realm := e.RealmURL
	if realm == "" {
		realm = defaultRealm
	}
	if err := validateRealm(field("realmUrl"), realm); err != nil {
		return b2.Config{}, err
	}
	if e.RequestsPerSecond < 0 {
		return b2.Config{}, badSetting(field("requestsPerSecond"), "must not be negative")
	}
	return b2.Config{KeyID: e.KeyID, Key: b2.Secret(key), RealmURL: realm, RequestsPerSecond: e.RequestsPerSecond}, nil
}

// oneLine joins a multi-line message into one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
