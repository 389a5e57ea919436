package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/consumer/ops"
	"github.com/b2jet/b2jet/schema"
)

// assertPage checks what every page carries: the security headers, and no raw markup or control
// bytes from a dead letter.
func assertPage(t *testing.T, r response) {
	t.Helper()
	assert.Contains(t, r.header.Get("Content-Security-Policy"), "default-src 'self'")
	assert.Contains(t, r.header.Get("Content-Security-Policy"), "script-src 'none'")
	assert.Equal(t, "DENY", r.header.Get("X-Frame-Options"))
	assert.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"))
	assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
	assert.NotContains(t, r.body, "<script")
	assert.NotContains(t, r.body, "<img")
	assert.NotContains(t, r.body, "\x1b")
	assert.NotContains(t, r.body, "\u202e")
}

func TestOverview(t *testing.T) {
	e := newEnv(t, Config{Refresh: 3 * time.Second, Version: "v9.9.9"})
	e.publish(letter{op: schema.OpAuthorize, account: "acme"})
	e.publish(letter{op: schema.OpAuthorize, account: "acme"})
	e.publish(letter{op: schema.OpListFileNames})
	_, err := e.js.Publish(e.ctx, "b2.req.authorize", []byte(`{}`))
	require.NoError(t, err)
	svc, err := ops.RegisterWorker(e.nc, ops.WorkerConfig{Version: "v1.2.3", Snapshot: func() ops.WorkerStatus {
		return ops.WorkerStatus{
			InFlight:           map[string]int{schema.OpListFileNames: 3},
			Breakers:           map[string]map[string]string{"acme": {schema.OpListFileNames: "open"}, "<script>x</script>": {"op": "closed"}},
			SessionAge:         map[string]string{"acme": "1h2m0s"},
			Paused:             map[string]string{"acme": "2.5s"},
			FleetStateFallback: map[string]string{"B2_SESSIONS": "bucket B2_SESSIONS unreachable"},
			Fleet: &ops.WorkerFleet{Bucket: "B2_FLEET", Workers: 2, Day: "2026-12-03",
				Transactions: map[string]map[string]int64{"acme": {"C": 5000}}, Budgets: map[string]int64{"acme": 5000}},
		}
	}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })

	r := e.get("/")
	require.Equal(t, http.StatusOK, r.status, r.body)
	assertPage(t, r)
	assert.Contains(t, r.body, `<meta http-equiv="refresh" content="3">`)
	assert.Contains(t, r.body, "v1.2.3")
	assert.Contains(t, r.body, "acme/list_file_names: <span class=\"state state-open\">open</span>")
	assert.Contains(t, r.body, "list_file_names: 3")
	assert.Contains(t, r.body, "acme: 1h2m0s")
	// The fleet state: the pause, the bucket it runs without, the one it shares, the budget.
	assert.Contains(t, r.body, `acme: <span class="state state-open">2.5s more</span>`)
	assert.Contains(t, r.body, "process-local without B2_SESSIONS: bucket B2_SESSIONS unreachable")
	assert.Contains(t, r.body, "shared in B2_FLEET, 2 live workers")
	assert.Contains(t, r.body, "acme: C 5000 of 5000 (budget spent) (2026-12-03 UTC)")
	assert.Contains(t, r.body, "&lt;script&gt;x&lt;/script&gt;/op")
	assert.Contains(t, r.body, "b2-authorize")
	assert.Contains(t, r.body, `<a href="/dead-letters?account=acme&amp;op=authorize">2</a>`)
	assert.Contains(t, r.body, schema.StreamDLQ)
	assert.Contains(t, r.body, "b2jet v9.9.9")
}

func TestOverviewWithoutWorkers(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.get("/")
	require.Equal(t, http.StatusOK, r.status)
	assert.Contains(t, r.body, "No worker answered")
	assert.Contains(t, r.body, "No dead letters.")
}

func TestDeadLettersListFiltersAndPages(t *testing.T) {
	e := newEnv(t, Config{PageSize: 2})
	a1 := e.publish(letter{op: schema.OpAuthorize, account: "acme", code: schema.CodeUnauthorized})
	l1 := e.publish(letter{op: schema.OpListFileNames, code: schema.CodeUnavailable})
	a2 := e.publish(letter{op: schema.OpAuthorize, account: "acme", code: schema.CodeUnauthorized})
	a3 := e.publish(letter{op: schema.OpAuthorize, code: schema.CodeUnavailable})
	link := func(seq uint64) string { return `<a href="/dead-letters/` + strconv.FormatUint(seq, 10) + `">` }

	r := e.get("/dead-letters")
	require.Equal(t, http.StatusOK, r.status, r.body)
	assertPage(t, r)
	assert.Contains(t, r.body, link(a3))
	assert.Contains(t, r.body, link(a2))
	assert.NotContains(t, r.body, link(l1), "page size 2")
	assert.Contains(t, r.body, `href="/dead-letters?before=`+strconv.FormatUint(a2, 10)+`">older`)

	r = e.get("/dead-letters?before=" + strconv.FormatUint(a2, 10))
	require.Equal(t, http.StatusOK, r.status)
	assert.Contains(t, r.body, link(l1))
	assert.Contains(t, r.body, link(a1))
	assert.NotContains(t, r.body, "older »")
	assert.Contains(t, r.body, "« newest")

	r = e.get("/dead-letters?op=authorize&account=acme")
	require.Equal(t, http.StatusOK, r.status)
	assert.Contains(t, r.body, link(a2))
	assert.Contains(t, r.body, link(a1))
	assert.NotContains(t, r.body, link(a3))
	assert.Contains(t, r.body, `href="/dead-letters/redrive?account=acme&amp;op=authorize"`)

	r = e.get("/dead-letters?code=unavailable&since=1h")
	assert.Contains(t, r.body, link(a3))
	assert.Contains(t, r.body, link(l1))
	assert.NotContains(t, r.body, link(a1))

	r = e.get("/dead-letters?op=nope")
	assert.Contains(t, r.body, "No dead letters match the filter.")

	for _, q := range []string{"since=yesterday", "op=a.b", "account=*", "before=x"} {
		r = e.get("/dead-letters?" + q)
		assert.Equal(t, http.StatusBadRequest, r.status, q)
	}
}

// Dead letters are attacker-controlled: markup and control bytes in the subject, headers and
// payload are escaped, and secrets in the payload and headers are never shown.
func TestDeadLetterHostileContentEscaped(t *testing.T) {
	e := newEnv(t, Config{})
	hostileAccount := "<script>alert(1)</script>"
	seq := e.publish(letter{
		op: schema.OpAuthorize, account: hostileAccount, code: "<img src=x onerror=alert(2)>",
		header: nats.Header{
			"X-Evil":        {"<script>alert(3)</script>\x1b[31m\u202e"},
			"Authorization": {"Bearer 4_liveTokenInAHeader"},
		},
		data:     []byte(`{"bucketName":"<script>alert(4)</script>\u001b\u202e","authorizationToken":"4_liveToken","nested":[{"applicationKey":"K00secret"}],"applicationKeyId":"0041234"}`),
		attempts: []string{"1 2026-05-01T00:00:00Z unavailable <script>alert(5)</script>"},
	})
	for _, path := range []string{
		"/dead-letters", "/dead-letters/" + strconv.FormatUint(seq, 10),
		"/dead-letters/" + strconv.FormatUint(seq, 10) + "/redrive", "/dead-letters/" + strconv.FormatUint(seq, 10) + "/purge",
		"/dead-letters/redrive", "/",
	} {
		r := e.get(path)
		require.Equal(t, http.StatusOK, r.status, "%s: %s", path, r.body)
		assertPage(t, r)
		assert.NotContains(t, r.body, "4_liveToken", path)
		assert.NotContains(t, r.body, "K00secret", path)
	}
	r := e.get("/dead-letters/" + strconv.FormatUint(seq, 10))
	assert.Contains(t, r.body, "&lt;script&gt;alert(1)&lt;/script&gt;")
	assert.Contains(t, r.body, "&lt;script&gt;alert(3)&lt;/script&gt;\\x1b[31m\\u202e")
	assert.Contains(t, r.body, "&lt;script&gt;alert(4)&lt;/script&gt;")
	assert.Contains(t, r.body, "&lt;script&gt;alert(5)&lt;/script&gt;")
	assert.Contains(t, r.body, "&lt;img src=x onerror=alert(2)&gt;")
	assert.Contains(t, r.body, `&#34;authorizationToken&#34;: &#34;[REDACTED]&#34;`)
	assert.Contains(t, r.body, `&#34;applicationKey&#34;: &#34;[REDACTED]&#34;`)
	assert.Contains(t, r.body, `&#34;applicationKeyId&#34;: &#34;0041234&#34;`, "key ids are not secrets")
	assert.Contains(t, r.body, "[REDACTED]</td>", "the Authorization header")
}

func TestDeadLetterPage(t *testing.T) {
	e := newEnv(t, Config{})
	seq := e.publish(letter{op: schema.OpListFileNames, account: "acme", attempts: []string{
		"1 2026-05-01T00:00:00Z unavailable b2=503/service_unavailable delay=1s",
		"2 2026-05-01T00:00:01Z unavailable b2=503/service_unavailable delay=2s",
		"3 2026-05-01T00:00:03Z unavailable b2=503/service_unavailable",
	}, header: nats.Header{schema.HeaderOriginalMsgID: {"orig-id-1"}}})
	r := e.get("/dead-letters/" + strconv.FormatUint(seq, 10))
	require.Equal(t, http.StatusOK, r.status)
	assertPage(t, r)
	assert.Equal(t, 3, strings.Count(r.body, `<li class="mono">`), "every attempt")
	assert.Contains(t, r.body, "b2.req.list_file_names.acme")
	assert.Contains(t, r.body, "b2.dlq.list_file_names.acme")
	assert.Contains(t, r.body, "req-1")
	assert.Contains(t, r.body, "orig-id-1")
	assert.Contains(t, r.body, `&#34;bucketName&#34;: &#34;photos&#34;`)
	assert.Contains(t, r.body, `href="/dead-letters/`+strconv.FormatUint(seq, 10)+`/redrive"`)

	for path, status := range map[string]int{"/dead-letters/999": 404, "/dead-letters/0": 404, "/dead-letters/x": 404, "/nope": 404} {
		assert.Equal(t, status, e.get(path).status, path)
	}
}

func TestDeadLetterUndecodablePayloadNotShown(t *testing.T) {
	e := newEnv(t, Config{})
	seq := e.publish(letter{op: schema.OpAuthorize, data: []byte("not json 4_liveToken"),
		header: nats.Header{schema.HeaderContentType: {schema.ContentTypeJSON}}})
	r := e.get("/dead-letters/" + strconv.FormatUint(seq, 10))
	require.Equal(t, http.StatusOK, r.status)
	assert.Contains(t, r.body, "not shown: it cannot be decoded")
	assert.NotContains(t, r.body, "4_liveToken")
}

func TestRedriveOne(t *testing.T) {
	e := newEnv(t, Config{})
	seq := e.publish(letter{op: schema.OpAuthorize, account: "acme"})
	path := "/dead-letters/" + strconv.FormatUint(seq, 10) + "/redrive"

	r := e.get(path)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Contains(t, r.body, "status-dry-run")
	assert.Contains(t, r.body, "Confirm redrive")
	assert.True(t, exists(t, e, seq), "the confirmation changes nothing")

	r = e.post(path, url.Values{csrfField: {tokenIn(t, r.body)}})
	require.Equal(t, http.StatusOK, r.status, r.body)
	assertPage(t, r)
	assert.Contains(t, r.body, `<span class="status status-redriven">redriven</span>`)
	assert.Contains(t, r.body, "b2.req.authorize.acme")
	assert.False(t, exists(t, e, seq), "the dead letter is deleted after the republish")
	st, err := e.js.Stream(e.ctx, schema.StreamRequests)
	require.NoError(t, err)
	m, err := st.GetLastMsgForSubject(e.ctx, "b2.req.authorize.acme")
	require.NoError(t, err)
	assert.Equal(t, strconv.FormatUint(seq, 10), m.Header.Get(ops.HeaderRedriveOf))

	// Again: it is gone, and the page says so.
	r = e.post(path, nil)
	assert.Equal(t, http.StatusBadGateway, r.status)
	assert.Contains(t, r.body, "status-failed")
}

// The loop guard of `b2jet dlq redrive` holds in the console: it is the same code.
func TestRedriveLoopGuard(t *testing.T) {
	e := newEnv(t, Config{MaxRedrives: 2})
	seq := e.publish(letter{op: schema.OpAuthorize, header: nats.Header{ops.HeaderRedriveCount: {"2"}}})
	path := "/dead-letters/" + strconv.FormatUint(seq, 10) + "/redrive"
	r := e.get(path)
	assert.Contains(t, r.body, "status-refused")
	assert.Contains(t, r.body, "already redriven 2 times (limit 2)")
	assert.NotContains(t, r.body, "Confirm redrive")
	r = e.post(path, nil)
	assert.Contains(t, r.body, "status-refused")
	assert.True(t, exists(t, e, seq))
}

func TestPurgeOne(t *testing.T) {
	e := newEnv(t, Config{})
	seq := e.publish(letter{op: schema.OpAuthorize})
	path := "/dead-letters/" + strconv.FormatUint(seq, 10) + "/purge"
	r := e.get(path)
	require.Equal(t, http.StatusOK, r.status)
	assert.Contains(t, r.body, "Confirm purge")
	assert.True(t, exists(t, e, seq))
	r = e.post(path, url.Values{csrfField: {tokenIn(t, r.body)}})
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Contains(t, r.body, "status-purged")
	assert.False(t, exists(t, e, seq))
	assert.Equal(t, http.StatusNotFound, e.get(path).status)
}

func TestBulkRedrive(t *testing.T) {
	e := newEnv(t, Config{})
	a1 := e.publish(letter{op: schema.OpAuthorize, code: schema.CodeUnavailable})
	other := e.publish(letter{op: schema.OpListFileNames, code: schema.CodeUnavailable})
	a2 := e.publish(letter{op: schema.OpAuthorize, code: schema.CodeUnavailable})
	guarded := e.publish(letter{op: schema.OpAuthorize, code: schema.CodeUnavailable, header: nats.Header{ops.HeaderRedriveCount: {"3"}}})

	r := e.get("/dead-letters/redrive?op=authorize&code=unavailable")
	require.Equal(t, http.StatusOK, r.status, r.body)
	assertPage(t, r)
	assert.Contains(t, r.body, "Dry run: <b>2</b> would be redriven, <b>1</b> refused")
	assert.Contains(t, r.body, `name="max-seq" value="`+strconv.FormatUint(guarded, 10)+`"`)
	form := url.Values{csrfField: {tokenIn(t, r.body)}, "op": {"authorize"}, "code": {"unavailable"}, "max-seq": {strconv.FormatUint(guarded, 10)}, "rate": {"0"}}

	// Stored after the dry run: not redriven by its confirmation.
	late := e.publish(letter{op: schema.OpAuthorize, code: schema.CodeUnavailable})

	r = e.post("/dead-letters/redrive", form)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Contains(t, r.body, "<b>2</b> redriven")
	assert.Contains(t, r.body, "<b>1</b> refused")
	for seq, want := range map[uint64]bool{a1: false, a2: false, other: true, guarded: true, late: true} {
		assert.Equal(t, want, exists(t, e, seq), "dead letter %d kept", seq)
	}

	r = e.get("/dead-letters/redrive?op=nope")
	assert.Contains(t, r.body, "Dry run: <b>0</b>")
	assert.NotContains(t, r.body, `action="/dead-letters/redrive"`)

	delete(form, "max-seq")
	assert.Equal(t, http.StatusBadRequest, e.post("/dead-letters/redrive", form).status)
}

func TestReplay(t *testing.T) {
	e := newEnv(t, Config{})
	for range 3 {
		_, err := e.js.Publish(e.ctx, "b2.req.authorize.acme", []byte(`{}`))
		require.NoError(t, err)
	}
	_, err := e.js.Publish(e.ctx, "b2.req.list_file_names", []byte(`{"bucketName":"b"}`))
	require.NoError(t, err)

	r := e.get("/replay")
	require.Equal(t, http.StatusOK, r.status)
	assertPage(t, r)
	assert.NotContains(t, r.body, "Dry run")

	r = e.get("/replay?since=1h&op=authorize&reply-to=ops.replay.results")
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Contains(t, r.body, "Dry run: <b>3</b> requests would be replayed (sequences 1 to 3)")
	assert.Contains(t, r.body, `name="until-seq" value="3"`)
	assert.NotContains(t, r.body, `type="hidden" name="since"`, "the confirmation carries a fixed start time")
	token := tokenIn(t, r.body)

	sub, err := e.nc.SubscribeSync("b2.req.authorize.acme")
	require.NoError(t, err)
	r = e.post("/replay", url.Values{csrfField: {token}, "from-seq": {"1"}, "until-seq": {"3"}, "op": {"authorize"}, "reply-to": {"ops.replay.results"}})
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Contains(t, r.body, "Replayed: <b>3</b> republished")
	for range 3 {
		m, err := sub.NextMsg(5 * time.Second)
		require.NoError(t, err)
		assert.Equal(t, "ops.replay.results", m.Header.Get(schema.HeaderReplyTo))
		assert.NotEmpty(t, m.Header.Get(ops.HeaderReplayOf))
	}

	for _, q := range []string{"since=1h&from-seq=1", "since=soon", "from-seq=1&reply-to=b2.req.x", "from-time=yesterday"} {
		r = e.get("/replay?" + q)
		assert.Equal(t, http.StatusBadRequest, r.status, q)
		assert.Contains(t, r.body, `class="error"`, q)
	}
	r = e.post("/replay", url.Values{"since": {"1h"}, "from-seq": {"2"}})
	assert.Equal(t, http.StatusBadRequest, r.status)
}

// exists reports whether the dead-letter stream still holds seq.
func exists(t *testing.T, e *env, seq uint64) bool {
	t.Helper()
	_, err := e.ops.DeadLetter(e.ctx, seq)
	if err != nil {
		require.ErrorIs(t, err, ops.ErrNotFound)
		return false
	}
	return true
}
