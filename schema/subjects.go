package schema

import (
	"fmt"
	"strings"
)

// DefaultPrefix is the default subject prefix.
const DefaultPrefix = "b2"

// Subjects builds and parses the contract's subjects under one prefix. The zero value uses
// DefaultPrefix.
type Subjects struct {
	Prefix string
}

func (s Subjects) prefix() string {
	if s.Prefix == "" {
		return DefaultPrefix
	}
	return s.Prefix
}

func (s Subjects) build(kind, op, account string) string {
	subj := s.prefix() + "." + kind + "." + op
	if account != "" {
		subj += "." + account
	}
	return subj
}

// Request is the request subject of op; account "" gives the subject without an account token.
func (s Subjects) Request(op, account string) string { return s.build("req", op, account) }

// Reply is the default reply subject of op.
func (s Subjects) Reply(op, account string) string { return s.build("res", op, account) }

// DeadLetter is the dead-letter subject of op.
func (s Subjects) DeadLetter(op, account string) string { return s.build("dlq", op, account) }

// RequestWildcard captures every request subject ("b2.req.>").
func (s Subjects) RequestWildcard() string { return s.prefix() + ".req.>" }

// DeadLetterWildcard captures every dead-letter subject ("b2.dlq.>").
func (s Subjects) DeadLetterWildcard() string { return s.prefix() + ".dlq.>" }

// RequestFilters are the filter subjects of op's single consumer of contract 1.0, which served
// every account: with and without the account token. A worker finding them moves the accounts to
// their own consumers (see AccountFilters).
func (s Subjects) RequestFilters(op string) []string {
	return []string{s.Request(op, ""), s.Request(op, "*")}
}

// AccountFilters are the filter subjects of the consumer of op and account: the default account
// also takes the requests without an account token.
func (s Subjects) AccountFilters(op, account string) []string {
	if account == "" || account == DefaultAccount {
		return []string{s.Request(op, ""), s.Request(op, DefaultAccount)}
	}
	return []string{s.Request(op, account)}
}

// AccountConsumerName is the durable consumer name of op and account: the default account keeps
// ConsumerName(op), every other account a has ConsumerName(op) + "-" + a ("b2-authorize-acme").
func (s Subjects) AccountConsumerName(op, account string) string {
	if account == "" || account == DefaultAccount {
		return s.ConsumerName(op)
	}
	return s.ConsumerName(op) + "-" + account
}

// ConsumerName is the durable consumer name of op, e.g. "b2-list-file-names". Dots of a
// multi-token prefix become hyphens, since consumer names cannot contain them
// ("acme.b2" gives "acme-b2-authorize").
func (s Subjects) ConsumerName(op string) string {
	return strings.ReplaceAll(s.prefix(), ".", "-") + "-" + strings.ReplaceAll(op, "_", "-")
}

// Parsed is a request, reply or dead-letter subject taken apart.
type Parsed struct {
	Kind    string // "req", "res" or "dlq"
	Op      string
	Account string // "" when the subject has no account token
}

// AccountOrDefault returns Account, or DefaultAccount when the subject named none.
func (p Parsed) AccountOrDefault() string {
	if p.Account == "" {
		return DefaultAccount
	}
	return p.Account
}

// Parse takes a subject under the prefix apart. It accepts any op token; callers check the op.
func (s Subjects) Parse(subject string) (Parsed, error) {
	rest, ok := strings.CutPrefix(subject, s.prefix())
	if ok {
		rest, ok = strings.CutPrefix(rest, ".")
	}
	if !ok {
		return Parsed{}, fmt.Errorf("schema: subject %q is not under prefix %q", subject, s.prefix())
	}
	// Split into at most 3 tokens without allocating: every delivery is parsed.
	var buf [3]string
	n := 0
	for more := true; more && n <= len(buf); n++ {
		var tok string
		tok, rest, more = strings.Cut(rest, ".")
		if n < len(buf) {
			buf[n] = tok
		}
	}
	if n < 2 || n > 3 {
		return Parsed{}, fmt.Errorf("schema: subject %q is not <prefix>.<kind>.<op>[.<account>]", subject)
	}
	tokens := buf[:n]
	for _, t := range tokens {
		if t == "" {
			return Parsed{}, fmt.Errorf("schema: subject %q has an empty token", subject)
		}
	}
	p := Parsed{Kind: tokens[0], Op: tokens[1]}
	switch p.Kind {
	case "req", "res", "dlq":
	default:
		return Parsed{}, fmt.Errorf("schema: subject %q has unknown kind %q", subject, p.Kind)
	}
	if len(tokens) == 3 {
		p.Account = tokens[2]
	}
	return p, nil
}
