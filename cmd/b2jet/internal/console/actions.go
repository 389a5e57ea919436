package console

import (
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/b2jet/b2jet/consumer/ops"
)

// resultRow is one redrive result as the pages show it.
type resultRow struct {
	Seq                       uint64
	Status                    string
	Subject, NewMsgID, Reason string
	RequestSeq                uint64
}

func resultRows(rs []ops.RedriveResult, limit int) []resultRow {
	var out []resultRow
	for i, r := range rs {
		if limit > 0 && i >= limit {
			break
		}
		out = append(out, resultRow{Seq: r.Seq, Status: r.Status, Subject: visible(r.Subject), NewMsgID: visible(r.NewMsgID),
			Reason: visible(r.Reason), RequestSeq: r.RequestSeq})
	}
	return out
}

// counts is redrive results counted by status.
type counts struct{ Redriven, Duplicate, DryRun, Refused, Failed int }

func countResults(rs []ops.RedriveResult) counts {
	var c counts
	for _, r := range rs {
		switch r.Status {
		case ops.StatusRedriven:
			c.Redriven++
		case ops.StatusDuplicate:
			c.Duplicate++
		case ops.StatusDryRun:
			c.DryRun++
		case ops.StatusRefused:
			c.Refused++
		default:
			c.Failed++
		}
	}
	return c
}

// actionData is a confirmation or result page of a redrive or purge.
type actionData struct {
	Seq     uint64
	Letter  letterRow
	Subject string
	// Results are the (dry-run) results; Counts count all of them.
	Results []resultRow
	Counts  counts
	// Purged is the number purged (result of a purge).
	Purged int
	Error  string
	// Bulk: the filter, its query, and the dry run's bound.
	Filter filterForm
	Query  template.URL
	MaxSeq uint64
	Rate   string
	// Shown is how many of the results are listed (bulk lists at most bulkListed).
	Shown, Total int
}

// bulkListed bounds the results listed on a bulk page; the counts cover all.
const bulkListed = 200

// confirmRedrive is GET /dead-letters/{seq}/redrive: what a redrive would do, and the button.
func (c *Console) confirmRedrive(w http.ResponseWriter, r *http.Request) {
	seq, ok := c.seqOf(w, r)
	if !ok {
		return
	}
	d, ok := c.loadLetter(w, r, seq)
	if !ok {
		return
	}
	res, err := c.cfg.Ops.Redrive(r.Context(), ops.RedriveOptions{Filter: ops.Filter{Seqs: []uint64{seq}}, DryRun: true, MaxRedrives: c.cfg.MaxRedrives})
	if err != nil {
		c.failErr(w, r, "Checking the redrive", err)
		return
	}
	data := actionData{Seq: seq, Letter: rowOf(d), Subject: visible(d.Subject), Results: resultRows(res, 0), Counts: countResults(res)}
	c.render(w, r, 0, "confirm-redrive", fmt.Sprintf("Redrive dead letter %d?", seq), "dead-letters", data)
}

// redrive is POST /dead-letters/{seq}/redrive.
func (c *Console) redrive(w http.ResponseWriter, r *http.Request) {
	seq, ok := c.seqOf(w, r)
	if !ok {
		return
	}
	ctx, cancel := c.actionContext(r)
	defer cancel()
	res, err := c.cfg.Ops.Redrive(ctx, ops.RedriveOptions{Filter: ops.Filter{Seqs: []uint64{seq}}, MaxRedrives: c.cfg.MaxRedrives})
	data := actionData{Seq: seq, Results: resultRows(res, 0), Counts: countResults(res)}
	if err != nil {
		data.Error = visible(strings.TrimPrefix(err.Error(), "ops: "))
	}
	for _, x := range res {
		c.cfg.Log.Info("console: dead letter redrive", "by", c.who(r), "seq", x.Seq, "status", x.Status,
			"request_seq", x.RequestSeq, "reason", x.Reason)
	}
	status := http.StatusOK
	if err != nil || data.Counts.Failed > 0 {
		status = http.StatusBadGateway
	}
	c.render(w, r, status, "redriven", fmt.Sprintf("Redrive of dead letter %d", seq), "dead-letters", data)
}

// confirmPurge is GET /dead-letters/{seq}/purge.
func (c *Console) confirmPurge(w http.ResponseWriter, r *http.Request) {
	seq, ok := c.seqOf(w, r)
	if !ok {
		return
	}
	d, ok := c.loadLetter(w, r, seq)
	if !ok {
		return
	}
	data := actionData{Seq: seq, Letter: rowOf(d), Subject: visible(d.Subject)}
	c.render(w, r, 0, "confirm-purge", fmt.Sprintf("Purge dead letter %d?", seq), "dead-letters", data)
}

// purge is POST /dead-letters/{seq}/purge.
func (c *Console) purge(w http.ResponseWriter, r *http.Request) {
	seq, ok := c.seqOf(w, r)
	if !ok {
		return
	}
	ctx, cancel := c.actionContext(r)
	defer cancel()
	n, err := c.cfg.Ops.Purge(ctx, ops.Filter{Seqs: []uint64{seq}}, false)
	data := actionData{Seq: seq, Purged: n}
	status := http.StatusOK
	if err != nil {
		data.Error = visible(strings.TrimPrefix(err.Error(), "ops: "))
		status = http.StatusBadGateway
	}
	c.cfg.Log.Info("console: dead letter purge", "by", c.who(r), "seq", seq, "purged", n, "err", err)
	c.render(w, r, status, "purged", fmt.Sprintf("Purge of dead letter %d", seq), "dead-letters", data)
}

// confirmBulkRedrive is GET /dead-letters/redrive?<filter>: a dry run over every dead letter
// matching the filter, and the button that redrives exactly those (up to the dry run's last
// sequence).
func (c *Console) confirmBulkRedrive(w http.ResponseWriter, r *http.Request) {
	ff, f, err := readFilter(r.URL.Query())
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	res, err := c.cfg.Ops.Redrive(r.Context(), ops.RedriveOptions{Filter: f, All: true, DryRun: true, MaxRedrives: c.cfg.MaxRedrives})
	if err != nil {
		c.failErr(w, r, "Counting the dead letters", err)
		return
	}
	data := actionData{Filter: ff, Query: ff.query(), Results: resultRows(res, bulkListed), Counts: countResults(res),
		Shown: min(len(res), bulkListed), Total: len(res)}
	for _, x := range res {
		data.MaxSeq = max(data.MaxSeq, x.Seq)
	}
	c.render(w, r, 0, "confirm-bulk", "Redrive every matching dead letter?", "dead-letters", data)
}

// bulkRedrive is POST /dead-letters/redrive: the filter, max-seq (the dry run's last sequence)
// and rate come from the form.
func (c *Console) bulkRedrive(w http.ResponseWriter, r *http.Request) {
	ff, f, err := readFilter(r.PostForm)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	f.MaxSeq, err = strconv.ParseUint(r.PostForm.Get("max-seq"), 10, 64)
	if err != nil || f.MaxSeq == 0 {
		c.fail(w, r, http.StatusBadRequest, "max-seq is missing: start from the dry run.")
		return
	}
	rate := 0.0
	if s := strings.TrimSuffix(strings.TrimSpace(r.PostForm.Get("rate")), "/s"); s != "" {
		if rate, err = strconv.ParseFloat(s, 64); err != nil || rate < 0 || rate != rate {
			c.fail(w, r, http.StatusBadRequest, "rate must be a number of republishes per second such as 20 (0: no limit).")
			return
		}
	}
	ctx, cancel := c.actionContext(r)
	defer cancel()
	res, err := c.cfg.Ops.Redrive(ctx, ops.RedriveOptions{Filter: f, All: true, Rate: rate, MaxRedrives: c.cfg.MaxRedrives})
	data := actionData{Filter: ff, Query: ff.query(), MaxSeq: f.MaxSeq, Results: resultRows(res, bulkListed),
		Counts: countResults(res), Shown: min(len(res), bulkListed), Total: len(res)}
	if err != nil {
		data.Error = visible(strings.TrimPrefix(err.Error(), "ops: "))
	}
	cn := data.Counts
	c.cfg.Log.Info("console: bulk redrive", "by", c.who(r), "op", f.Op, "account", f.Account, "code", f.Code,
		"since", f.Since, "max_seq", f.MaxSeq, "redriven", cn.Redriven, "duplicates", cn.Duplicate, "refused", cn.Refused,
		"failed", cn.Failed, "err", err)
	status := http.StatusOK
	if err != nil || cn.Failed > 0 {
		status = http.StatusBadGateway
	}
	c.render(w, r, status, "bulk-redriven", "Bulk redrive", "dead-letters", data)
}
