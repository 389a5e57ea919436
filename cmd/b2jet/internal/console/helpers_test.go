package console

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/consumer/natstest"
	"github.com/b2jet/b2jet/consumer/ops"
	"github.com/b2jet/b2jet/schema"
)

// nopHandler lets consumer.Worker.Setup create the streams and consumers; it never runs.
type nopHandler struct{}

func (nopHandler) Handle(context.Context, *consumer.Message, consumer.ReplyWriter) error {
	return errors.New("not run")
}

// env is an embedded JetStream whose streams a consumer.Worker set up, the ops behind a console,
// and the console on an httptest server.
type env struct {
	t   *testing.T
	ctx context.Context
	nc  *nats.Conn
	js  jetstream.JetStream
	ops *ops.Ops
	srv *httptest.Server
	con *Console
	// reqSeq numbers the fake requests behind the published dead letters.
	reqSeq uint64
}

// newEnv starts everything; cfg's Ops is set here.
func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	w, err := consumer.New(nc, consumer.Config{})
	require.NoError(t, err)
	w.Handle(schema.OpAuthorize, nopHandler{}, nil)
	w.Handle(schema.OpListFileNames, nopHandler{}, nil)
	require.NoError(t, w.Setup(ctx))
	o := ops.New(js, ops.Config{})
	cfg.Ops = o
	if cfg.WorkerWait == 0 {
		cfg.WorkerWait = 200 * time.Millisecond
	}
	con, err := New(cfg)
	require.NoError(t, err)
	hs := httptest.NewServer(con)
	t.Cleanup(hs.Close)
	return &env{t: t, ctx: ctx, nc: nc, js: js, ops: o, srv: hs, con: con}
}

// letter describes a dead letter to publish.
type letter struct {
	op, account, code string
	header            nats.Header
	data              []byte
	attempts          []string // B2-Attempt values
}

// publish stores a dead letter as a worker would and returns its sequence.
func (e *env) publish(l letter) uint64 {
	e.t.Helper()
	e.reqSeq++
	s := schema.Subjects{}
	if l.code == "" {
		l.code = schema.CodeUnavailable
	}
	if l.data == nil {
		l.data = []byte(`{"bucketName":"photos"}`)
	}
	h := nats.Header{}
	for k, v := range l.header {
		h[k] = append([]string(nil), v...)
	}
	if h.Get(schema.HeaderContentType) == "" {
		h.Set(schema.HeaderContentType, schema.ContentTypeJSON)
	}
	for _, a := range l.attempts {
		h.Add(schema.HeaderAttempt, a)
	}
	schema.DeadLetter{
		RequestID:       "req-" + strconv.FormatUint(e.reqSeq, 10),
		ErrorCode:       l.code,
		Error:           "it failed: " + l.code,
		OriginalSubject: s.Request(l.op, l.account),
		Attempts:        max(len(l.attempts), 1),
		StreamSeq:       1000 + e.reqSeq,
		FailedAt:        time.Now(),
	}.SetHeaders(h)
	ack, err := e.js.PublishMsg(e.ctx, &nats.Msg{Subject: s.DeadLetter(l.op, l.account), Header: h, Data: l.data},
		jetstream.WithMsgID(schema.DeadLetterMsgID(schema.StreamRequests, 1000+e.reqSeq)))
	require.NoError(e.t, err)
	return ack.Sequence
}

// response is a finished request to the console.
type response struct {
	status int
	header http.Header
	body   string
}

// do sends a request to the console; setup may change it (headers, auth).
func (e *env) do(method, path string, form url.Values, setup ...func(*http.Request)) response {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(e.ctx, method, e.srv.URL+path, body)
	require.NoError(e.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, f := range setup {
		f(req)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	return response{status: res.StatusCode, header: res.Header, body: string(b)}
}

func (e *env) get(path string, setup ...func(*http.Request)) response {
	e.t.Helper()
	return e.do(http.MethodGet, path, nil, setup...)
}

// post sends form, with the operator's CSRF token unless form has one.
func (e *env) post(path string, form url.Values, setup ...func(*http.Request)) response {
	e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form[csrfField]; !ok {
		form.Set(csrfField, e.csrf(setup...))
	}
	return e.do(http.MethodPost, path, form, setup...)
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the token the console puts into the forms of a request that setup describes
// (tests that need the real form read it with tokenIn).
func (e *env) csrf(setup ...func(*http.Request)) string {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, f := range setup {
		f(req)
	}
	return e.con.token(req)
}

// tokenIn returns the CSRF token of the form in body.
func tokenIn(t *testing.T, body string) string {
	t.Helper()
	m := csrfInput.FindStringSubmatch(body)
	require.NotNil(t, m, "no CSRF field in:\n%s", body)
	return m[1]
}
