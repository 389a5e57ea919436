package ops

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/schema"
)

// Errors returned by Ops methods. Per-message outcomes of Redrive are reported in its results,
// not as errors.
var (
	// ErrNotFound is wrapped by errors about a sequence that is not in the stream (never stored,
	// deleted, or expired).
	ErrNotFound = errors.New("ops: message not found")
	// ErrInvalidOptions is wrapped by every error about bad options or filters.
	ErrInvalidOptions = errors.New("ops: invalid options")
	// ErrNoSelection is returned by Redrive and Purge when neither sequences nor "all" were given:
	// a destructive operation never selects everything by default.
	ErrNoSelection = errors.New("ops: no sequences given and not all selected")
)

// Config locates b2jet's JetStream state. The zero value is the contract's defaults.
type Config struct {
	// Subjects is the subject prefix; the zero value uses "b2".
	Subjects schema.Subjects
	// RequestsStream is the request stream; default schema.StreamRequests ("B2_REQUESTS").
	RequestsStream string
	// DLQStream is the dead-letter stream; default schema.StreamDLQ ("B2_DLQ").
	DLQStream string
}

// Ops reads and repairs b2jet's JetStream state. It is safe for concurrent use.
type Ops struct {
	js  jetstream.JetStream
	cfg Config
	// now is the clock for Since filters; a test seam.
	now func() time.Time
	// runID is the random part of the message ids of redrives and replays (see newRunID); tests
	// set it to force a duplicate.
	runID string
}

// New returns an Ops working through js. Zero fields of cfg get their defaults. The message ids of
// its redrives and replays end with a random part chosen here: use one Ops per operator run.
func New(js jetstream.JetStream, cfg Config) *Ops {
	if cfg.RequestsStream == "" {
		cfg.RequestsStream = schema.StreamRequests
	}
	if cfg.DLQStream == "" {
		cfg.DLQStream = schema.StreamDLQ
	}
	return &Ops{js: js, cfg: cfg, now: time.Now, runID: newRunID()}
}

// Config returns the configuration with its defaults applied.
func (o *Ops) Config() Config { return o.cfg }

// prefix is the subject prefix in use.
func (o *Ops) prefix() string {
	// Request("x", "") is "<prefix>.req.x": cut the known suffix.
	return strings.TrimSuffix(o.cfg.Subjects.Request("x", ""), ".req.x")
}

// invalid wraps ErrInvalidOptions.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...)
}

// checkToken validates an operation or account given as a filter: one subject token without
// wildcards, so that it cannot widen the filter. "" (no filter) is fine.
func checkToken(field, v string) error {
	if v != "" && !schema.ValidToken(v) {
		return invalid("%s %q is not a single subject token", field, v)
	}
	return nil
}

// filterSubjects returns the subject filters selecting kind ("req" or "dlq") messages of op and
// account; "" means any. The account "default" also selects subjects without an account token.
// The filters never overlap (JetStream refuses overlapping filters).
func (o *Ops) filterSubjects(kind, op, account string) []string {
	base := o.prefix() + "." + kind + "."
	opTok := op
	if opTok == "" {
		opTok = "*"
	}
	switch {
	case op == "" && account == "":
		return []string{base + ">"}
	case account == "":
		return []string{base + op, base + op + ".*"}
	case account == schema.DefaultAccount:
		return []string{base + opTok, base + opTok + "." + account}
	default:
		return []string{base + opTok + "." + account}
	}
}

// parseSubject takes a subject of kind apart; ok is false when it is not one.
func (o *Ops) parseSubject(subject, kind string) (schema.Parsed, bool) {
	p, err := o.cfg.Subjects.Parse(subject)
	if err != nil || p.Kind != kind {
		return schema.Parsed{}, false
	}
	return p, true
}
