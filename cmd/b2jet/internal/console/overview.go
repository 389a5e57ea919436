package console

import (
	"cmp"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/b2jet/b2jet/consumer/ops"
)

// kv is one labelled value of a worker's map fields.
type kv struct{ Key, Value string }

// workerView is one worker on the overview.
type workerView struct {
	ID, Version, Uptime string
	Accounts            []string
	Breakers            []kv // "account/op" → state
	InFlight            []kv
	SessionAge          []kv
	DeadLettersPending  int
	// Paused are the accounts in a Retry-After pause, with what is left of it; Fleet says how
	// the worker shares the fleet state (or which buckets it runs without), Transactions the
	// fleet's B2 transactions of the day per account.
	Paused       []kv
	Fleet        []string
	Transactions []kv
}

// dlqCount is the dead-letter count of one operation and account.
type dlqCount struct {
	Op, Account string
	Count       int
	Query       template.URL
}

type overviewData struct {
	Workers     []workerView
	Streams     []ops.StreamStatus
	Consumers   []ops.ConsumerStatus
	DeadLetters []dlqCount
	Problems    []string
}

func sortedKV[V any](m map[string]V, format func(V) string) []kv {
	out := make([]kv, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, kv{Key: visible(k), Value: visible(format(m[k]))})
	}
	return out
}

func workerOf(ws ops.WorkerStatus) workerView {
	v := workerView{ID: visible(ws.ID), Version: visible(ws.Version), Uptime: visible(ws.Uptime), DeadLettersPending: ws.DeadLettersPending}
	accounts := map[string]bool{}
	for a := range ws.SessionAge {
		accounts[a] = true
	}
	for a, byOp := range ws.Breakers {
		accounts[a] = true
		for op, state := range byOp {
			v.Breakers = append(v.Breakers, kv{Key: visible(a + "/" + op), Value: visible(state)})
		}
	}
	slices.SortFunc(v.Breakers, func(a, b kv) int { return cmp.Compare(a.Key, b.Key) })
	for _, a := range slices.Sorted(maps.Keys(accounts)) {
		v.Accounts = append(v.Accounts, visible(a))
	}
	v.InFlight = sortedKV(ws.InFlight, strconv.Itoa)
	v.SessionAge = sortedKV(ws.SessionAge, func(s string) string { return s })
	v.Paused = sortedKV(ws.Paused, func(s string) string { return s })
	for _, bucket := range slices.Sorted(maps.Keys(ws.FleetStateFallback)) {
		v.Fleet = append(v.Fleet, visible("process-local without "+bucket+": "+ws.FleetStateFallback[bucket]))
	}
	if f := ws.Fleet; f != nil {
		if _, local := ws.FleetStateFallback[f.Bucket]; !local {
			v.Fleet = append(v.Fleet, visible(fmt.Sprintf("shared in %s, %d live workers", f.Bucket, f.Workers)))
		}
		for _, a := range slices.Sorted(maps.Keys(f.Transactions)) {
			v.Transactions = append(v.Transactions, kv{Key: visible(a), Value: visible(f.TransactionsSummary(a) + " (" + f.Day + " UTC)")})
		}
	}
	return v
}

// overview is GET /: workers, streams, consumers and dead-letter counts; it reloads itself.
func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	st, err := c.cfg.Ops.Status(r.Context(), c.cfg.WorkerWait)
	if err != nil {
		c.failErr(w, r, "Reading the status", err)
		return
	}
	data := overviewData{Streams: st.Streams, Consumers: st.Consumers}
	for _, ws := range st.Workers {
		data.Workers = append(data.Workers, workerOf(ws))
	}
	for _, op := range slices.Sorted(maps.Keys(st.DeadLetters)) {
		for _, acct := range slices.Sorted(maps.Keys(st.DeadLetters[op])) {
			q := url.Values{"op": {op}, "account": {acct}}
			data.DeadLetters = append(data.DeadLetters, dlqCount{Op: visible(op), Account: visible(acct), Count: st.DeadLetters[op][acct], Query: template.URL(q.Encode())})
		}
	}
	for _, p := range st.Problems {
		data.Problems = append(data.Problems, visible(p))
	}
	c.render(w, r, 0, "overview", "Overview", "overview", data)
}
