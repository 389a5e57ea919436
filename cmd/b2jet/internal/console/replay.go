package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/b2jet/b2jet/consumer/ops"
)

// replayForm is the replay form as typed: the options of `b2jet replay`.
type replayFormData struct {
	Since, FromTime, FromSeq, Until, UntilSeq string
	Op, Account, ReplyTo, Rate                string
	IncludeReplays                            bool
}

func readReplayForm(v url.Values) replayFormData {
	g := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	return replayFormData{
		Since: g("since"), FromTime: g("from-time"), FromSeq: g("from-seq"), Until: g("until"), UntilSeq: g("until-seq"),
		Op: g("op"), Account: g("account"), ReplyTo: g("reply-to"), Rate: g("rate"),
		IncludeReplays: v.Get("include-replays") != "",
	}
}

// Submitted reports whether any range field is set (the form was sent, not just opened).
func (f replayFormData) Submitted() bool { return f.Since != "" || f.FromTime != "" || f.FromSeq != "" }

// options parses the form into ops options; ops checks the combination (exactly one start).
func (f replayFormData) options() (ops.ReplayOptions, error) {
	o := ops.ReplayOptions{Op: f.Op, Account: f.Account, ReplyTo: f.ReplyTo, IncludeReplays: f.IncludeReplays}
	var err error
	if f.Since != "" {
		if o.Since, err = time.ParseDuration(f.Since); err != nil || o.Since <= 0 {
			return o, fmt.Errorf("since %q is not a duration such as 1h", f.Since)
		}
	}
	for _, t := range []struct {
		name, v string
		dst     *time.Time
	}{{"from-time", f.FromTime, &o.FromTime}, {"until", f.Until, &o.Until}} {
		if t.v != "" {
			if *t.dst, err = time.Parse(time.RFC3339Nano, t.v); err != nil {
				return o, fmt.Errorf("%s %q is not an RFC 3339 time such as 2026-05-14T09:00:00Z", t.name, t.v)
			}
		}
	}
	for _, s := range []struct {
		name, v string
		dst     *uint64
	}{{"from-seq", f.FromSeq, &o.FromSeq}, {"until-seq", f.UntilSeq, &o.UntilSeq}} {
		if s.v != "" {
			if *s.dst, err = strconv.ParseUint(s.v, 10, 64); err != nil || *s.dst == 0 {
				return o, fmt.Errorf("%s %q is not a stream sequence (from 1)", s.name, s.v)
			}
		}
	}
	if r := strings.TrimSuffix(f.Rate, "/s"); r != "" {
		if o.Rate, err = strconv.ParseFloat(r, 64); err != nil || o.Rate < 0 || o.Rate != o.Rate {
			return o, fmt.Errorf("rate %q is not a number of republishes per second such as 20", f.Rate)
		}
	}
	return o, nil
}

// replayData is the replay page.
type replayData struct {
	Form    replayFormData
	Problem string
	// DryRun is the count of a dry run; Confirm the form that replays exactly its range.
	DryRun  *ops.ReplayReport
	Confirm replayFormData
	// Result is the report of a replay; Error why it stopped early.
	Result *ops.ReplayReport
	Error  string
}

// replayForm is GET /replay: the form, and with a range given, its dry run and the confirmation.
func (c *Console) replayForm(w http.ResponseWriter, r *http.Request) {
	form := readReplayForm(r.URL.Query())
	data := replayData{Form: form}
	if !form.Submitted() {
		c.render(w, r, 0, "replay", "Replay", "replay", data)
		return
	}
	opts, err := form.options()
	if err != nil {
		data.Problem = cleanProblem(err)
		c.render(w, r, http.StatusBadRequest, "replay", "Replay", "replay", data)
		return
	}
	// Fix the range to what is counted now: a "since" start moves with the clock.
	if opts.Since > 0 {
		opts.FromTime, opts.Since = time.Now().Add(-opts.Since), 0
	}
	opts.DryRun = true
	rep, err := c.cfg.Ops.Replay(r.Context(), opts)
	if isInvalid(err) {
		data.Problem = cleanProblem(err)
		c.render(w, r, http.StatusBadRequest, "replay", "Replay", "replay", data)
		return
	}
	if err != nil {
		c.failErr(w, r, "Counting the replay", err)
		return
	}
	data.DryRun = &rep
	data.Confirm = form
	data.Confirm.Since = ""
	if !opts.FromTime.IsZero() {
		data.Confirm.FromTime = opts.FromTime.UTC().Format(time.RFC3339Nano)
	}
	if rep.LastSeq > 0 {
		data.Confirm.UntilSeq = strconv.FormatUint(rep.LastSeq, 10)
	}
	c.render(w, r, 0, "replay", "Replay", "replay", data)
}

// replay is POST /replay: the replay of the confirmed range.
func (c *Console) replay(w http.ResponseWriter, r *http.Request) {
	form := readReplayForm(r.PostForm)
	data := replayData{Form: form}
	opts, err := form.options()
	if err != nil {
		data.Problem = cleanProblem(err)
		c.render(w, r, http.StatusBadRequest, "replay", "Replay", "replay", data)
		return
	}
	ctx, cancel := c.actionContext(r)
	defer cancel()
	rep, err := c.cfg.Ops.Replay(ctx, opts)
	if isInvalid(err) {
		data.Problem = cleanProblem(err)
		c.render(w, r, http.StatusBadRequest, "replay", "Replay", "replay", data)
		return
	}
	data.Result = &rep
	status := http.StatusOK
	if err != nil {
		data.Error = visible(strings.TrimPrefix(err.Error(), "ops: "))
		status = http.StatusBadGateway
	}
	c.cfg.Log.Info("console: replay", "by", c.who(r), "from_seq", opts.FromSeq, "from_time", opts.FromTime, "until_seq", opts.UntilSeq,
		"op", opts.Op, "account", opts.Account, "reply_to", opts.ReplyTo, "selected", rep.Selected, "republished", rep.Republished,
		"duplicates", rep.Duplicates, "err", err)
	c.render(w, r, status, "replay", "Replay", "replay", data)
}

// cleanProblem is an options error as the form shows it.
func cleanProblem(err error) string {
	s := strings.TrimPrefix(err.Error(), "ops: ")
	return visible(strings.TrimPrefix(s, "invalid options: "))
}
