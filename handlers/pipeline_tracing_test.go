package handlers_test

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/internal/msgtrace"
	"github.com/b2jet/b2jet/schema"
)

// traced is an OpenTelemetry SDK tracer provider whose spans are kept in memory as they end.
type traced struct {
	exp *tracetest.InMemoryExporter
	tp  *sdktrace.TracerProvider
}

func newTraced(t *testing.T) *traced {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &traced{exp: exp, tp: tp}
}

// named returns the ended spans called name, in the order they ended.
func (tr *traced) named(name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range tr.exp.GetSpans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// waitNamed waits until n spans called name have ended and returns them.
func (tr *traced) waitNamed(t *testing.T, name string, n int) []tracetest.SpanStub {
	t.Helper()
	require.Eventually(t, func() bool { return len(tr.named(name)) >= n }, 15*time.Second, 10*time.Millisecond,
		"waiting for %d spans %q", n, name)
	return tr.named(name)
}

// childrenOf returns the ended spans called name whose parent is span.
func (tr *traced) childrenOf(span tracetest.SpanStub, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range tr.named(name) {
		if s.Parent.SpanID() == span.SpanContext.SpanID() {
			out = append(out, s)
		}
	}
	return out
}

// attr returns the value of key on s (an empty Value when absent).
func attr(s tracetest.SpanStub, key string) attribute.Value {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// eventNamed returns the first event of s called name.
func eventNamed(t *testing.T, s tracetest.SpanStub, name string) sdktrace.Event {
	t.Helper()
	for _, e := range s.Events {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("span %q has no event %q (events: %v)", s.Name, name, s.Events)
	return sdktrace.Event{}
}

// traceparentOf is the traceparent header of sc.
func traceparentOf(sc trace.SpanContext) string {
	h := map[string][]string{}
	msgtrace.Inject(sc, h)
	return h[schema.HeaderTraceParent][0]
}

const processList = "process b2.req.list_file_names"

// A request that fails once is delivered twice: each delivery is a consumer span, the child of the
// publisher's span, with its delivery count; the first records the retry, and each has the spans
// of its own B2 calls; the reply carries the second delivery's trace context.
func TestPipelineTracesRedelivery(t *testing.T) {
	t.Parallel()
	tr := newTraced(t)
	p := newPipe(t)
	p.cfg.TracerProvider, p.tp = tr.tp, tr.tp
	p.fake.AddFiles(e2eBucket, "flaky/a")
	p.startWorker(t)
	p.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503, Times: 1, Prefix: "flaky/"})

	hdr := nats.Header{}
	_, pub := msgtrace.StartPublish(context.Background(), tr.tp, "b2.req.list_file_names", hdr)
	pub.End()
	c := p.publish(t, "b2.req.list_file_names", schema.JSON,
		[]byte(`{"bucketName":"e2e-bucket","prefix":"flaky/","id":"traced-1"}`), hdr)
	env, reply := one[schema.ListResult](t, c, 20*time.Second)
	require.True(t, env.OK)
	require.Equal(t, 2, env.Attempt)

	deliveries := tr.waitNamed(t, processList, 2)
	require.Len(t, deliveries, 2)
	// In delivery order: the first span may end after the second (its attempt record is written
	// after the nak).
	slices.SortFunc(deliveries, func(a, b tracetest.SpanStub) int {
		return cmp.Compare(attr(a, "b2jet.delivery_count").AsInt64(), attr(b, "b2jet.delivery_count").AsInt64())
	})
	first, second := deliveries[0], deliveries[1]
	for i, d := range deliveries {
		assert.Equal(t, trace.SpanKindConsumer, d.SpanKind)
		assert.Equal(t, pub.SpanContext().TraceID(), d.SpanContext.TraceID(), "delivery %d is in the publisher's trace", i+1)
		assert.Equal(t, pub.SpanContext().SpanID(), d.Parent.SpanID(), "delivery %d is the publisher span's child", i+1)
		require.Len(t, d.Links, 1)
		assert.Equal(t, pub.SpanContext().SpanID(), d.Links[0].SpanContext.SpanID(), "and links to it")
		assert.Equal(t, int64(i+1), attr(d, "b2jet.delivery_count").AsInt64())
		assert.Equal(t, "nats", attr(d, "messaging.system").AsString())
		assert.Equal(t, "process", attr(d, "messaging.operation.type").AsString())
		assert.Equal(t, "process", attr(d, "messaging.operation.name").AsString())
		assert.Equal(t, "b2.req.list_file_names", attr(d, "messaging.destination.name").AsString())
		assert.Equal(t, "b2-list-file-names", attr(d, "messaging.consumer.group.name").AsString())
		assert.Equal(t, "B2_REQUESTS-"+itoa(c.seq), attr(d, "messaging.message.id").AsString())
		assert.Equal(t, "traced-1", attr(d, "b2jet.request_id").AsString())
	}

	retry := eventNamed(t, first, "retry")
	var delay attribute.Value
	for _, kv := range retry.Attributes {
		if kv.Key == "b2jet.delay_ms" {
			delay = kv.Value
		}
	}
	assert.Positive(t, delay.AsInt64(), "the retry event carries the nak delay")
	assert.Equal(t, codes.Error, first.Status.Code)
	assert.Equal(t, "retry", attr(first, "b2jet.outcome").AsString())
	assert.Equal(t, codes.Unset, second.Status.Code)
	assert.Equal(t, "acked", attr(second, "b2jet.outcome").AsString())

	// Each delivery's B2 calls are its children: the failed page under the first, the good one
	// under the second (the session and the bucket id are cached by then).
	failed := tr.childrenOf(first, "b2_list_file_names")
	require.Len(t, failed, 1)
	assert.Equal(t, int64(503), attr(failed[0], "http.response.status_code").AsInt64())
	assert.Equal(t, codes.Error, failed[0].Status.Code)
	assert.Equal(t, trace.SpanKindClient, failed[0].SpanKind)
	assert.Equal(t, "default", attr(failed[0], "b2.account").AsString())
	assert.Equal(t, "b2_list_file_names", attr(failed[0], "b2.operation").AsString())
	bucketID, _ := p.fake.BucketID(e2eBucket)
	assert.Equal(t, bucketID, attr(failed[0], "b2.bucket.id").AsString())
	require.Len(t, tr.childrenOf(first, "b2_authorize_account"), 1)
	lookup := tr.childrenOf(first, "b2_list_buckets")
	require.Len(t, lookup, 1)
	assert.Equal(t, e2eBucket, attr(lookup[0], "b2.bucket.name").AsString())
	good := tr.childrenOf(second, "b2_list_file_names")
	require.Len(t, good, 1)
	assert.Equal(t, int64(200), attr(good[0], "http.response.status_code").AsInt64())

	assert.Equal(t, traceparentOf(second.SpanContext), reply.Header.Get(schema.HeaderTraceParent),
		"the reply carries the trace context of the delivery that answered")
}

// An allPages listing is one consumer span with a B2 call span per page, and every reply part
// carries that consumer span's trace context.
func TestPipelineTracesListingParts(t *testing.T) {
	t.Parallel()
	tr := newTraced(t)
	p := newPipe(t)
	p.cfg.TracerProvider, p.tp = tr.tp, tr.tp
	for i := range 5 {
		p.fake.AddFiles(e2eBucket, "parts/"+strconv.Itoa(i))
	}
	p.startWorker(t)

	hdr := nats.Header{}
	_, pub := msgtrace.StartPublish(context.Background(), tr.tp, "b2.req.list_file_names", hdr)
	pub.End()
	c := p.publish(t, "b2.req.list_file_names", schema.JSON,
		[]byte(`{"bucketName":"e2e-bucket","prefix":"parts/","maxFileCount":2,"allPages":true}`), hdr)
	parts := c.replies(t, 20*time.Second)
	require.Len(t, parts, 3, "a part per page of 2 names")

	deliveries := tr.waitNamed(t, processList, 1)
	require.Len(t, deliveries, 1)
	d := deliveries[0]
	assert.Equal(t, pub.SpanContext().SpanID(), d.Parent.SpanID())
	pages := tr.childrenOf(d, "b2_list_file_names")
	require.Len(t, pages, 3, "a B2 call span per page")
	for _, pg := range pages {
		assert.Equal(t, int64(200), attr(pg, "http.response.status_code").AsInt64())
		assert.Equal(t, d.SpanContext.TraceID(), pg.SpanContext.TraceID())
	}
	want := traceparentOf(d.SpanContext)
	assert.NotEqual(t, hdr.Get(schema.HeaderTraceParent), want)
	for i, part := range parts {
		assert.Equal(t, []string{want}, part.Header.Values(schema.HeaderTraceParent), "part %d", i+1)
	}
}
