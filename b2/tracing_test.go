package b2_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/b2/b2test"
)

// spanAttr returns the value of key on s.
func spanAttr(s tracetest.SpanStub, key string) attribute.Value {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// Every HTTP call is a client span, the child of the caller's span, with the operation, account,
// bucket and status; a 429 records the pause it starts, and a call that waits it out adds an
// event to the caller's span.
func TestTracingSpanPerCall(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	s := newFake(t)
	id := s.CreateBucket("traced")
	c := newClient(t, s.URL, s.MasterKey(), func(cfg *b2.Config) { cfg.TracerProvider, cfg.Name = tp, "acme" })

	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	_, err := c.ListFileNames(ctx, b2.ListRequest{BucketID: id})
	require.NoError(t, err)
	s.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 429, RetryAfter: "1", Times: 1})
	_, err = c.ListFileNames(ctx, b2.ListRequest{BucketID: id})
	require.Error(t, err)
	_, err = c.ListFileNames(ctx, b2.ListRequest{BucketID: id}) // waits out the pause
	require.NoError(t, err)
	parent.End()

	spans := exp.GetSpans()
	require.Len(t, spans, 5, "authorize, three listings and the caller's")
	names := []string{spans[0].Name, spans[1].Name, spans[2].Name, spans[3].Name}
	assert.Equal(t, []string{"b2_authorize_account", "b2_list_file_names", "b2_list_file_names", "b2_list_file_names"}, names)
	for _, sp := range spans[:4] {
		assert.Equal(t, trace.SpanKindClient, sp.SpanKind)
		assert.Equal(t, parent.SpanContext().SpanID(), sp.Parent.SpanID(), sp.Name)
		assert.Equal(t, "acme", spanAttr(sp, "b2.account").AsString())
		assert.Equal(t, sp.Name, spanAttr(sp, "b2.operation").AsString())
		assert.Equal(t, "127.0.0.1", spanAttr(sp, "server.address").AsString())
	}
	assert.Equal(t, int64(200), spanAttr(spans[1], "http.response.status_code").AsInt64())
	assert.Equal(t, id, spanAttr(spans[1], "b2.bucket.id").AsString())
	assert.Equal(t, codes.Unset, spans[1].Status.Code)

	limited := spans[2]
	assert.Equal(t, int64(429), spanAttr(limited, "http.response.status_code").AsInt64())
	assert.Equal(t, "429", spanAttr(limited, "error.type").AsString())
	assert.Equal(t, "too_many_requests", spanAttr(limited, "b2.error.code").AsString())
	assert.Equal(t, codes.Error, limited.Status.Code)
	require.Len(t, limited.Events, 1)
	assert.Equal(t, "b2.pause", limited.Events[0].Name)
	assert.Contains(t, limited.Events[0].Attributes, attribute.Int64("b2.pause_ms", 1000))

	caller := spans[4]
	require.Len(t, caller.Events, 1)
	assert.Equal(t, "b2.pause.wait", caller.Events[0].Name)
	assert.Contains(t, caller.Events[0].Attributes, attribute.String("b2.operation", "b2_list_file_names"))
	assert.False(t, spans[3].StartTime.Before(caller.Events[0].Time),
		"the third listing's span starts once the pause is over, not before it")
}
