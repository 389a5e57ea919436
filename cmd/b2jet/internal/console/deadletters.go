package console

import (
	"cmp"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/b2jet/b2jet/consumer/ops"
	"github.com/b2jet/b2jet/schema"
)

// filterForm is the dead-letter filter of a query or form, as typed.
type filterForm struct {
	Op, Account, Code, Since string
}

// readFilter reads op, account, code and since from v.
func readFilter(v url.Values) (filterForm, ops.Filter, error) {
	ff := filterForm{
		Op:      strings.TrimSpace(v.Get("op")),
		Account: strings.TrimSpace(v.Get("account")),
		Code:    strings.TrimSpace(v.Get("code")),
		Since:   strings.TrimSpace(v.Get("since")),
	}
	f := ops.Filter{Op: ff.Op, Account: ff.Account, Code: ff.Code}
	if ff.Since != "" {
		d, err := time.ParseDuration(ff.Since)
		if err != nil || d < 0 {
			return ff, f, fmt.Errorf("since %q is not a duration such as 24h or 90m", ff.Since)
		}
		f.Since = d
	}
	if strings.ContainsAny(f.Code, " \t\r\n") {
		return ff, f, fmt.Errorf("code %q is not an error code", f.Code)
	}
	return ff, f, nil
}

// Values returns the filter as query parameters (the empty ones left out).
func (ff filterForm) Values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"op": ff.Op, "account": ff.Account, "code": ff.Code, "since": ff.Since} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// query is the filter as an encoded query string, for links.
func (ff filterForm) query() template.URL { return template.URL(ff.Values().Encode()) }

// Empty reports whether no filter field is set.
func (ff filterForm) Empty() bool { return ff == filterForm{} }

// letterRow is one line of the dead-letter list.
type letterRow struct {
	Seq                          uint64
	Time                         time.Time
	Op, Account, Code, RequestID string
	Error, Problem               string
	Attempts, Redrives           int
}

func rowOf(d ops.DeadLetter) letterRow {
	attempts, _ := strconv.Atoi(d.Header.Get(schema.HeaderAttempts))
	return letterRow{
		Seq: d.Seq, Time: d.Time, Op: visible(d.Op), Account: visible(d.Account), Code: visible(d.Code()),
		RequestID: visible(d.Header.Get(schema.HeaderRequestID)), Error: visible(d.Header.Get(schema.HeaderError)),
		Problem: visible(d.Problem), Attempts: attempts, Redrives: d.RedriveCount,
	}
}

// listData is the dead-letter list page.
type listData struct {
	Filter   filterForm
	Problem  string // a bad filter
	Rows     []letterRow
	Newest   bool         // this is the first page
	Next     template.URL // query of the next (older) page; "" when none
	BulkLink template.URL // query of the bulk redrive confirmation
}

// deadLetters is GET /dead-letters: a page of dead letters, newest first.
func (c *Console) deadLetters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ff, f, err := readFilter(q)
	data := listData{Filter: ff, BulkLink: ff.query()}
	if err != nil {
		data.Problem = err.Error()
		c.render(w, r, http.StatusBadRequest, "dead-letters", "Dead letters", "dead-letters", data)
		return
	}
	var before uint64
	if b := q.Get("before"); b != "" {
		if before, err = strconv.ParseUint(b, 10, 64); err != nil {
			c.fail(w, r, http.StatusBadRequest, "before must be a sequence number")
			return
		}
	}
	data.Newest = before == 0
	p, err := c.cfg.Ops.DeadLetterPage(r.Context(), f, before, c.cfg.PageSize)
	if isInvalid(err) {
		data.Problem = strings.TrimPrefix(strings.TrimPrefix(err.Error(), "ops: "), "invalid options: ")
		c.render(w, r, http.StatusBadRequest, "dead-letters", "Dead letters", "dead-letters", data)
		return
	}
	if err != nil {
		c.failErr(w, r, "Reading the dead letters", err)
		return
	}
	for _, d := range p.DeadLetters {
		data.Rows = append(data.Rows, rowOf(d))
	}
	if p.Next > 0 {
		v := ff.Values()
		v.Set("before", strconv.FormatUint(p.Next, 10))
		data.Next = template.URL(v.Encode()) // encoded: safe in a URL
	}
	c.render(w, r, 0, "dead-letters", "Dead letters", "dead-letters", data)
}

// header is one header line of a dead letter.
type header struct{ Name, Value string }

// letterData is a dead letter's page.
type letterData struct {
	letterRow
	Subject, OriginalSubject, OriginalMsgID, FailedAt string
	StreamSeq                                         string
	History                                           []string
	Headers                                           []header
	ContentType                                       string
	Size                                              int
	Body                                              string // redacted, indented JSON
	BodyProblem                                       string // why Body is empty
}

func letterOf(d ops.DeadLetter) letterData {
	l := letterData{
		letterRow:       rowOf(d),
		Subject:         visible(d.Subject),
		OriginalSubject: visible(d.Header.Get(schema.HeaderOriginalSubject)),
		OriginalMsgID:   visible(d.Header.Get(schema.HeaderOriginalMsgID)),
		FailedAt:        visible(d.Header.Get(schema.HeaderFailedAt)),
		StreamSeq:       visible(d.Header.Get(schema.HeaderStreamSeq)),
		ContentType:     visible(cmp.Or(d.Header.Get(schema.HeaderContentType), schema.ContentTypeMsgpack+" (no Content-Type header)")),
		Size:            len(d.Data),
	}
	for _, a := range d.History {
		l.History = append(l.History, visible(a))
	}
	names := make([]string, 0, len(d.Header))
	for k := range d.Header {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int {
		ab, bb := strings.HasPrefix(a, "B2-"), strings.HasPrefix(b, "B2-")
		if ab != bb {
			if ab {
				return -1
			}
			return 1
		}
		return cmp.Compare(a, b)
	})
	for _, k := range names {
		for _, v := range d.Header[k] {
			if secretName(k) {
				v = Redacted
			}
			l.Headers = append(l.Headers, header{Name: visible(k), Value: visible(v)})
		}
	}
	body, err := d.JSONBody()
	switch {
	case err != nil:
		// Without a structure there is nothing to redact by name: the bytes are not shown.
		l.BodyProblem = "not shown: it cannot be decoded (" + visible(strings.TrimPrefix(err.Error(), "ops: ")) + "); `b2jet dlq show` prints it raw"
	default:
		if s, ok := redactJSON(body); ok {
			l.Body = visibleBlock(s)
		} else {
			l.BodyProblem = "not shown: it is not JSON after decoding"
		}
	}
	return l
}

// seqOf reads the {seq} of the path; it renders the error and returns false when it is bad.
func (c *Console) seqOf(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		c.fail(w, r, http.StatusNotFound, "A dead letter's address is /dead-letters/<sequence>, a number from 1.")
		return 0, false
	}
	return seq, true
}

// loadLetter reads dead letter seq; it renders the error and returns false when it cannot.
func (c *Console) loadLetter(w http.ResponseWriter, r *http.Request, seq uint64) (ops.DeadLetter, bool) {
	d, err := c.cfg.Ops.DeadLetter(r.Context(), seq)
	if errors.Is(err, ops.ErrNotFound) {
		c.fail(w, r, http.StatusNotFound, fmt.Sprintf("There is no dead letter %d in %s (redriven, purged or expired?).", seq, c.cfg.Streams.DLQStream))
		return ops.DeadLetter{}, false
	}
	if err != nil {
		c.failErr(w, r, "Reading the dead letter", err)
		return ops.DeadLetter{}, false
	}
	return d, true
}

// deadLetter is GET /dead-letters/{seq}.
func (c *Console) deadLetter(w http.ResponseWriter, r *http.Request) {
	seq, ok := c.seqOf(w, r)
	if !ok {
		return
	}
	d, ok := c.loadLetter(w, r, seq)
	if !ok {
		return
	}
	c.render(w, r, 0, "dead-letter", fmt.Sprintf("Dead letter %d", seq), "dead-letters", letterOf(d))
}

// isInvalid reports whether err is the operator's mistake (bad options or filters).
func isInvalid(err error) bool { return errors.Is(err, ops.ErrInvalidOptions) }
