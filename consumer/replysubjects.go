package consumer

import (
	"errors"
	"fmt"
	"strings"
)

// Reply subjects of an account (Config.ReplySubjects): the Reply-To subjects its requests may
// name, as NATS subject patterns. NATS permissions decide which account a publisher may spend
// (the account rides in the request subject), but the Reply-To header is the publisher's to
// choose: without an allow-list a tenant could make the worker publish its replies, with an id
// of the tenant's choosing, into another tenant's inbox.

// ErrReplyToNotAllowed is matched (errors.Is), together with ErrInvalidReplyTo, by the error of a
// request whose Reply-To is outside its account's Config.ReplySubjects. Such a request is
// refused before any work (invalid_request, dead letter) and no reply is sent anywhere.
var ErrReplyToNotAllowed = errors.New("outside the account's replySubjects")

// ValidateSubjectPattern reports why p is not a subject pattern that a Reply-To can be matched
// against, or nil: p is one or more non-empty tokens separated by '.', without whitespace; '*'
// (exactly one token) and '>' (one or more tokens, only as the last token) stand alone as a
// token. A token such as "a*" or ">b" is refused rather than read as a literal, because NATS
// itself does not treat such tokens the same everywhere.
func ValidateSubjectPattern(p string) error {
	if p == "" {
		return errors.New("empty subject pattern")
	}
	if strings.ContainsAny(p, " \t\r\n\f\v\x00") {
		return fmt.Errorf("subject pattern %q contains whitespace", p)
	}
	for tok, rest := range tokens(p) {
		switch {
		case tok == "":
			return fmt.Errorf("subject pattern %q has an empty token", p)
		case tok == ">" && rest:
			return fmt.Errorf("subject pattern %q has '>' before its last token", p)
		case tok != "*" && tok != ">" && strings.ContainsAny(tok, "*>"):
			return fmt.Errorf("subject pattern %q has a token %q mixing a wildcard with other characters", p, tok)
		}
	}
	return nil
}

// tokens yields the '.'-separated tokens of s, and whether more follow.
func tokens(s string) func(yield func(tok string, more bool) bool) {
	return func(yield func(string, bool) bool) {
		for {
			i := strings.IndexByte(s, '.')
			if i < 0 {
				yield(s, false)
				return
			}
			if !yield(s[:i], true) {
				return
			}
			s = s[i+1:]
		}
	}
}

// subjectMatches reports whether subject matches pattern, token by token: a literal token
// matches itself, '*' any one token, and a final '>' one or more tokens. pattern must pass
// ValidateSubjectPattern and subject must be a literal subject (non-empty tokens, no wildcards;
// replyToError checks it first); on other input the result is false or meaningless, never a panic.
// It costs one pass over both strings and allocates nothing.
func subjectMatches(pattern, subject string) bool {
	for {
		pi := strings.IndexByte(pattern, '.')
		ptok := pattern
		if pi >= 0 {
			ptok = pattern[:pi]
		}
		if ptok == ">" && pi < 0 {
			return subject != ""
		}
		si := strings.IndexByte(subject, '.')
		stok := subject
		if si >= 0 {
			stok = subject[:si]
		}
		if stok == "" || (ptok != "*" && ptok != stok) {
			return false
		}
		if pi < 0 || si < 0 {
			return pi < 0 && si < 0
		}
		pattern, subject = pattern[pi+1:], subject[si+1:]
	}
}

// replyToAllowed returns nil when account may use subject as its Reply-To: the account has no
// entry in Config.ReplySubjects, or one of its patterns matches. Otherwise a Permanent error
// matching ErrInvalidReplyTo and ErrReplyToNotAllowed; its text holds neither the subject nor
// anything else the publisher chose.
func (c Config) replyToAllowed(account, subject string) error {
	patterns, restricted := c.ReplySubjects[account]
	if !restricted {
		return nil
	}
	for _, p := range patterns {
		if subjectMatches(p, subject) {
			return nil
		}
	}
	return Permanent(fmt.Errorf("%w: %w", ErrInvalidReplyTo, ErrReplyToNotAllowed))
}
