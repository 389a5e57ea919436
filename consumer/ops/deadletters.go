package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/schema"
)

// Filter selects dead letters. Every set field must match; the zero value selects everything.
type Filter struct {
	// Op is the operation ("authorize", "list_file_names"); "" means any.
	Op string `json:"op,omitempty"`
	// Account is the account; "" means any, "default" also matches subjects without an account.
	Account string `json:"account,omitempty"`
	// Code is the B2-Error-Code; "" means any.
	Code string `json:"code,omitempty"`
	// Since keeps dead letters stored within this duration before now; 0 means any age.
	Since time.Duration `json:"since,omitempty"`
	// Seqs restricts the selection to these dead-letter stream sequences (the other fields still
	// filter them); empty means every sequence.
	Seqs []uint64 `json:"seqs,omitempty"`
	// Limit keeps only the newest Limit matches; 0 means no limit.
	Limit int `json:"limit,omitempty"`
	// MaxSeq keeps dead letters stored at or before this dead-letter stream sequence; 0 means no
	// bound. A confirmation step uses it to act on exactly what its dry run counted, not on dead
	// letters stored since.
	MaxSeq uint64 `json:"maxSeq,omitempty"`
}

func (f Filter) validate() error {
	if err := checkToken("op", f.Op); err != nil {
		return err
	}
	if err := checkToken("account", f.Account); err != nil {
		return err
	}
	if f.Since < 0 {
		return invalid("since %v is negative", f.Since)
	}
	if f.Limit < 0 {
		return invalid("limit %d is negative", f.Limit)
	}
	if slices.Contains(f.Seqs, 0) {
		return invalid("sequence 0 does not exist")
	}
	return nil
}

// DeadLetter is one record of the dead-letter stream.
type DeadLetter struct {
	// Seq is the sequence in the dead-letter stream.
	Seq uint64 `json:"seq"`
	// Time is when the dead letter was stored.
	Time time.Time `json:"time"`
	// Subject is the dead-letter subject, e.g. "b2.dlq.list_file_names.acme".
	Subject string `json:"subject"`
	// Op and Account come from Subject; Account is "default" when it has no account token.
	Op      string `json:"op"`
	Account string `json:"account"`
	// Info holds the B2-* failure headers (original subject, error code and message, attempts,
	// request id, failure time). It is incomplete when Problem is set.
	Info schema.DeadLetter `json:"info"`
	// Problem says why the failure headers could not be read in full; "" when they could. Such a
	// dead letter is listed but never redriven.
	Problem string `json:"problem,omitempty"`
	// History is the B2-Attempt values: one record per failed attempt, oldest first.
	History []string `json:"history,omitempty"`
	// Header is every header of the record, without the ones the server adds to a direct get.
	Header nats.Header `json:"header"`
	// Data is the request payload, byte for byte.
	Data []byte `json:"data"`
	// RedriveCount is the B2-Redrive-Count header: how often the request was redriven before it
	// failed again (0 when absent).
	RedriveCount int `json:"redriveCount"`
}

// Code returns the error code (B2-Error-Code), also when Problem is set.
func (d DeadLetter) Code() string { return d.Header.Get(schema.HeaderErrorCode) }

// JSONBody returns the payload as JSON, decoded by its Content-Type (msgpack when absent): a JSON
// payload is returned compacted, a msgpack one is converted. An empty payload is "{}" (the empty
// request).
func (d DeadLetter) JSONBody() (json.RawMessage, error) {
	return bodyJSON(d.Header.Get(schema.HeaderContentType), d.Data)
}

func bodyJSON(contentType string, data []byte) (json.RawMessage, error) {
	c, err := schema.CodecFor(contentType)
	if err != nil {
		return nil, fmt.Errorf("ops: decode body: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return json.RawMessage("{}"), nil
	}
	if c == schema.JSON {
		var buf bytes.Buffer
		if err := json.Compact(&buf, data); err != nil {
			return nil, fmt.Errorf("ops: decode JSON body: %w", err)
		}
		return buf.Bytes(), nil
	}
	var v any
	if err := c.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("ops: decode msgpack body: %w", err)
	}
	out, err := schema.JSON.Marshal(jsonable(v))
	if err != nil {
		return nil, fmt.Errorf("ops: encode body as JSON: %w", err)
	}
	return out, nil
}

// jsonable turns what msgpack decodes into something encoding/json accepts (maps with non-string
// keys).
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = jsonable(e)
		}
		return x
	}
	return v
}

// newDeadLetter builds the record of a stored message; ok is false when subject is not a
// dead-letter subject.
func (o *Ops) newDeadLetter(seq uint64, at time.Time, subject string, h nats.Header, data []byte) (DeadLetter, bool) {
	p, ok := o.parseSubject(subject, "dlq")
	if !ok {
		return DeadLetter{}, false
	}
	d := DeadLetter{
		Seq:     seq,
		Time:    at,
		Subject: subject,
		Op:      p.Op,
		Account: p.AccountOrDefault(),
		Header:  cleanHeader(h),
		Data:    data,
	}
	d.History = d.Header.Values(schema.HeaderAttempt)
	var problems []error
	info, err := schema.ParseDeadLetter(d.Header)
	if err != nil {
		problems = append(problems, err)
	}
	d.Info = info
	if d.RedriveCount, err = redriveCount(d.Header); err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		d.Problem = errors.Join(problems...).Error()
	}
	return d, true
}

// match reports whether d passes the filter's op, account, code, age and MaxSeq (not Seqs or
// Limit).
func (f Filter) match(d DeadLetter, now time.Time) bool {
	switch {
	case f.Op != "" && d.Op != f.Op,
		f.Account != "" && d.Account != f.Account,
		f.Code != "" && d.Code() != f.Code,
		f.Since > 0 && d.Time.Before(now.Add(-f.Since)),
		f.MaxSeq > 0 && d.Seq > f.MaxSeq:
		return false
	}
	return true
}

// DeadLetters returns the dead letters that match f, newest first; Limit applies after filtering.
// With Seqs, the sequences that are not in the stream are left out.
func (o *Ops) DeadLetters(ctx context.Context, f Filter) ([]DeadLetter, error) {
	found, _, err := o.selectDeadLetters(ctx, f)
	if err != nil {
		return nil, err
	}
	slices.Reverse(found)
	return found, nil
}

// DeadLetter returns the dead letter stored at seq. The error wraps ErrNotFound when there is none.
func (o *Ops) DeadLetter(ctx context.Context, seq uint64) (DeadLetter, error) {
	st, err := o.js.Stream(ctx, o.cfg.DLQStream)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("ops: stream %s: %w", o.cfg.DLQStream, err)
	}
	return o.getDeadLetter(ctx, st, seq)
}

func (o *Ops) getDeadLetter(ctx context.Context, st jetstream.Stream, seq uint64) (DeadLetter, error) {
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, fmt.Errorf("%w: no dead letter %d in stream %s", ErrNotFound, seq, o.cfg.DLQStream)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("ops: get dead letter %d: %w", seq, err)
	}
	d, ok := o.newDeadLetter(m.Sequence, m.Time, m.Subject, m.Header, m.Data)
	if !ok {
		return DeadLetter{}, fmt.Errorf("%w: message %d of stream %s has subject %q, not a dead-letter subject",
			ErrNotFound, seq, o.cfg.DLQStream, m.Subject)
	}
	return d, nil
}

// selectDeadLetters returns the dead letters matching f in stream order (oldest first), keeping
// the newest f.Limit, and the sequences of f.Seqs that are not dead letters in the stream.
func (o *Ops) selectDeadLetters(ctx context.Context, f Filter) (found []DeadLetter, missing []uint64, err error) {
	if err := f.validate(); err != nil {
		return nil, nil, err
	}
	now := o.now()
	if len(f.Seqs) > 0 {
		st, err := o.js.Stream(ctx, o.cfg.DLQStream)
		if err != nil {
			return nil, nil, fmt.Errorf("ops: stream %s: %w", o.cfg.DLQStream, err)
		}
		seqs := slices.Clone(f.Seqs)
		slices.Sort(seqs)
		seqs = slices.Compact(seqs)
		for _, seq := range seqs {
			d, err := o.getDeadLetter(ctx, st, seq)
			if errors.Is(err, ErrNotFound) {
				missing = append(missing, seq)
				continue
			}
			if err != nil {
				return nil, nil, err
			}
			if f.match(d, now) {
				found = append(found, d)
			}
		}
		return keepNewest(found, f.Limit), missing, nil
	}

	plan := walkPlan{stream: o.cfg.DLQStream, filters: o.filterSubjects("dlq", f.Op, f.Account), endSeq: f.MaxSeq}
	if f.Since > 0 {
		plan.startTime = now.Add(-f.Since)
	}
	err = o.walk(ctx, plan, nil, func(m jetstream.Msg, md *jetstream.MsgMetadata) (bool, error) {
		d, ok := o.newDeadLetter(md.Sequence.Stream, md.Timestamp, m.Subject(), m.Headers(), m.Data())
		if ok && f.match(d, now) {
			found = append(found, d)
			if f.Limit > 0 && len(found) >= 2*f.Limit {
				found = keepNewest(found, f.Limit) // bound memory on a large stream
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return keepNewest(found, f.Limit), nil, nil
}

// keepNewest returns the last limit elements of ds (all when limit is 0).
func keepNewest(ds []DeadLetter, limit int) []DeadLetter {
	if limit <= 0 || len(ds) <= limit {
		return ds
	}
	return slices.Clone(ds[len(ds)-limit:])
}
