package fleet

import (
	"encoding/base64"
	"strings"
)

// Keys of the fleet-state bucket (B2_FLEET):
//
//	pause.<account>                 the account's Retry-After pause (pauseRecord, JSON)
//	live.<worker>                   a worker's heartbeat: the accounts it serves (JSON)
//	tx.<account>.<YYYY-MM-DD>.<class>  the fleet's transactions of a class on a UTC day (decimal)
//
// and of the sessions bucket (B2_SESSIONS):
//
//	session.<account>               the account's sealed session (b2's sealed form)
//	lease.<account>                 the lease of the worker refreshing it (its holder mark)
const (
	pausePrefix = "pause."
	livePrefix  = "live."
	txPrefix    = "tx."

	sessionPrefix = "session."
	leasePrefix   = "lease."
)

// keyToken is an account or worker name as one key token. Account names are subject tokens,
// which may hold characters a key may not: such a name is base64url-encoded behind '=' (a
// character no plain token here holds), so two names never share a key.
func keyToken(name string) string {
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return "=" + base64.RawURLEncoding.EncodeToString([]byte(name))
		}
	}
	return name
}

// nameOf reverses keyToken; ok is false for a token keyToken cannot have made.
func nameOf(token string) (string, bool) {
	if enc, found := strings.CutPrefix(token, "="); found {
		raw, err := base64.RawURLEncoding.DecodeString(enc)
		return string(raw), err == nil
	}
	return token, token != ""
}

func pauseKey(account string) string   { return pausePrefix + keyToken(account) }
func sessionKey(account string) string { return sessionPrefix + keyToken(account) }
func leaseKey(account string) string   { return leasePrefix + keyToken(account) }
func liveKey(worker string) string     { return livePrefix + keyToken(worker) }
func txKey(account, day, class string) string {
	return txPrefix + keyToken(account) + "." + day + "." + keyToken(class)
}

// parseTxKey splits a transaction key into its account, day and class.
func parseTxKey(key string) (account, day, class string, ok bool) {
	parts := strings.Split(strings.TrimPrefix(key, txPrefix), ".")
	if len(parts) != 3 {
		return "", "", "", false
	}
	account, ok1 := nameOf(parts[0])
	class, ok2 := nameOf(parts[2])
	return account, parts[1], class, ok1 && ok2
}
