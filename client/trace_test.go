package client_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/b2jet/b2jet/client"
	"github.com/b2jet/b2jet/schema"
)

// With a TracerProvider the client starts a producer span per request and the stored request
// carries that span's trace context; a traceparent of the caller's is kept and linked instead.
func TestTracerProviderStartsProducerSpan(t *testing.T) {
	s := newSandbox(t, sandboxOptions{})
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	c := newClient(t, s, client.Options{TracerProvider: tp})

	_, err := c.Authorize(context.Background(), schema.AuthorizeRequest{})
	require.NoError(t, err)
	spans := rec.Ended()
	require.Len(t, spans, 1)
	span := spans[0]
	assert.Equal(t, trace.SpanKindProducer, span.SpanKind())
	assert.Equal(t, "publish b2.req.authorize", span.Name())
	req := lastRequest(t, s, "b2.req.authorize")
	want := "00-" + span.SpanContext().TraceID().String() + "-" + span.SpanContext().SpanID().String() + "-01"
	assert.Equal(t, want, req.Header.Get(schema.HeaderTraceParent), "the worker's spans are the producer span's children")
	attrs := map[string]string{}
	for _, a := range span.Attributes() {
		attrs[string(a.Key)] = a.Value.AsString()
	}
	assert.Equal(t, "nats", attrs["messaging.system"])
	assert.Equal(t, req.Header.Get(schema.HeaderMsgID), attrs["messaging.message.id"])

	const given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	_, err = c.Authorize(client.WithTraceparent(context.Background(), given), schema.AuthorizeRequest{})
	require.NoError(t, err)
	spans = rec.Ended()
	require.Len(t, spans, 2)
	assert.Equal(t, given, lastRequest(t, s, "b2.req.authorize").Header.Get(schema.HeaderTraceParent))
	require.Len(t, spans[1].Links(), 1)
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", spans[1].Links()[0].SpanContext.TraceID().String())
}
