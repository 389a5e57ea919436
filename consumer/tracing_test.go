package consumer

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/b2jet/b2jet/internal/msgtrace"
	"github.com/b2jet/b2jet/schema"
)

// traceparentOf is the traceparent header of sc.
func traceparentOf(sc trace.SpanContext) string {
	h := map[string][]string{}
	msgtrace.Inject(sc, h)
	return h[schema.HeaderTraceParent][0]
}

// A rejected request's span is the child of the request's traceparent, is what the handler's
// context carries, ends as dead-lettered with the error code, and its trace context (tracestate
// included) is on the error reply and on the dead letter instead of the request's.
func TestTracingDeadLetterCarriesTheDeliverySpan(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg := testConfig(t)
	cfg.TracerProvider = tp

	seen := make(chan trace.SpanContext, 1)
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		seen <- trace.SpanContextFromContext(ctx)
		return Permanent(errors.New("undecodable request"))
	}}
	startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpListFileNames, h, nil) })
	inbox := e.nc.NewInbox()
	replies, err := e.nc.SubscribeSync(inbox)
	require.NoError(t, err)

	const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	seq := e.publish("b2.req.list_file_names.acme", []byte(`{}`), nats.Header{
		schema.HeaderReplyTo:     {inbox},
		schema.HeaderTraceParent: {parent},
		"tracestate":             {"vendor=x"},
	})
	r, err := replies.NextMsg(10 * time.Second)
	require.NoError(t, err)
	dl := e.lastDeadLetter("b2.dlq.list_file_names.acme")

	var spans tracetest.SpanStubs
	require.Eventually(t, func() bool { spans = exp.GetSpans(); return len(spans) == 1 }, 10*time.Second, 10*time.Millisecond)
	s := spans[0]
	assert.Equal(t, "process b2.req.list_file_names.{account}", s.Name, "the account token is templated")
	assert.Equal(t, "b2.req.list_file_names.acme", attrOf(s, "messaging.destination.name"))
	assert.Equal(t, "b2.req.list_file_names.{account}", attrOf(s, "messaging.destination.template"))
	assert.Equal(t, "acme", attrOf(s, "b2jet.account"))
	assert.Equal(t, "0af7651916cd43dd8448eb211c80319c", s.SpanContext.TraceID().String())
	assert.Equal(t, "b7ad6b7169203331", s.Parent.SpanID().String())
	assert.Equal(t, s.SpanContext, <-seen, "the handler's context carries the delivery span")
	assert.Equal(t, codes.Error, s.Status.Code)
	assert.Equal(t, schema.CodeInvalidRequest, attrOf(s, "error.type"))
	assert.Equal(t, "dead_lettered", attrOf(s, "b2jet.outcome"))
	require.NotEmpty(t, s.Events)
	assert.Equal(t, "dead_letter", s.Events[len(s.Events)-1].Name)
	assert.Equal(t, "B2_REQUESTS-"+itoa(seq), attrOf(s, "messaging.message.id"))

	own := traceparentOf(s.SpanContext)
	assert.NotEqual(t, parent, own)
	assert.Equal(t, []string{own}, r.Header.Values(schema.HeaderTraceParent), "error reply")
	assert.Equal(t, "vendor=x", r.Header.Get("tracestate"))
	assert.Equal(t, []string{own}, dl.Header.Values(schema.HeaderTraceParent), "dead letter")
	assert.Equal(t, "vendor=x", dl.Header.Get("tracestate"))
}

// attrOf returns the string value of key on s.
func attrOf(s tracetest.SpanStub, key string) string {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// With no tracer provider, the tracing steps of a delivery allocate nothing: no attribute, span
// or header is built.
func TestTracingOffAllocatesNothing(t *testing.T) {
	w := &Worker{cfg: Config{}.withDefaults()}
	r := &opRunner{w: w, op: schema.OpListFileNames}
	m := &Message{Subject: "b2.req.list_file_names.acme", Op: schema.OpListFileNames, Account: "acme",
		Header: Header{schema.HeaderTraceParent: {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}}
	d := &delivery{r: r, m: m, accountToken: "acme", rw: &replyWriter{}}
	ctx := context.Background()
	cause := errors.New("b2 failed")
	allocs := testing.AllocsPerRun(100, func() {
		d.startSpan()
		_ = d.spanContext(ctx)
		d.spanNak(time.Second, nakRetry, cause)
		d.spanEnding("acked", cause)
		d.spanDeadLettered(rejection{Code: schema.CodeUnavailable}, true)
		_ = d.deadLetterHeader()
		d.endSpan()
	})
	assert.Zero(t, allocs)
	assert.Nil(t, d.span)
	assert.Nil(t, d.rw.trace)
}
