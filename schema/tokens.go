package schema

import "strings"

// ValidToken reports whether s can be one subject token (a subject prefix, an account) and a
// stream name: not empty, and without '.', wildcards, whitespace or path separators.
func ValidToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch r {
		case ' ', '\t', '\r', '\n', '.', '*', '>', '/', '\\':
			return false
		}
	}
	return true
}

// ValidSubject reports whether s is a literal subject: dot-separated valid tokens, so no
// wildcard and no empty token.
func ValidSubject(s string) bool {
	for tok := range strings.SplitSeq(s, ".") {
		if !ValidToken(tok) {
			return false
		}
	}
	return true
}

// ValidInboxPrefix reports whether s can prefix reply inboxes: a literal subject outside the
// server's "$" system subjects.
func ValidInboxPrefix(s string) bool {
	return ValidSubject(s) && !strings.HasPrefix(s, "$")
}
