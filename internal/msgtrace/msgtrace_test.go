package msgtrace_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/b2jet/b2jet/internal/msgtrace"
)

const given = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

func TestExtractInjectRoundTrip(t *testing.T) {
	h := map[string][]string{"traceparent": {given}, "tracestate": {"vendor=x"}}
	sc := trace.SpanContextFromContext(msgtrace.Extract(context.Background(), h))
	require.True(t, sc.IsRemote())
	assert.Equal(t, "0af7651916cd43dd8448eb211c80319c", sc.TraceID().String())

	out := map[string][]string{}
	msgtrace.Inject(sc, out)
	assert.Equal(t, map[string][]string{"traceparent": {given}, "tracestate": {"vendor=x"}}, out,
		"lower-case names, as the contract spells traceparent")

	none := map[string][]string{"Traceparent": {given}}
	assert.False(t, trace.SpanContextFromContext(msgtrace.Extract(context.Background(), none)).IsValid(),
		"NATS headers are case-sensitive")
	msgtrace.Inject(trace.SpanContext{}, none)
	assert.Len(t, none, 1, "an invalid span context writes nothing")
}

// A tracestate longer than W3C's 512 characters is cut by whole members from its end.
func TestInjectBoundsTraceState(t *testing.T) {
	var members []string
	for i := range 30 {
		members = append(members, fmt.Sprintf("v%02d=%s", i, strings.Repeat("x", 30)))
	}
	long := strings.Join(members, ",")
	require.Greater(t, len(long), msgtrace.MaxTraceStateBytes)
	sc := trace.SpanContextFromContext(msgtrace.Extract(context.Background(),
		map[string][]string{"traceparent": {given}, "tracestate": {long}}))
	out := map[string][]string{}
	msgtrace.Inject(sc, out)
	got := out["tracestate"][0]
	assert.LessOrEqual(t, len(got), msgtrace.MaxTraceStateBytes)
	assert.True(t, strings.HasPrefix(long, got+","), "whole members from the start: %q", got)
	assert.Equal(t, []string{given}, out["traceparent"])
}

func TestStartPublish(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	t.Run("injects its own context", func(t *testing.T) {
		h := map[string][]string{}
		_, span := msgtrace.StartPublish(context.Background(), tp, "b2.req.authorize", h)
		span.End()
		sc := trace.SpanContextFromContext(msgtrace.Extract(context.Background(), h))
		assert.Equal(t, span.SpanContext().SpanID(), sc.SpanID())
		s := exp.GetSpans()[len(exp.GetSpans())-1]
		assert.Equal(t, "publish b2.req.authorize", s.Name)
		assert.Equal(t, trace.SpanKindProducer, s.SpanKind)
		assert.Empty(t, s.Links)
	})
	t.Run("keeps the caller's and links to it", func(t *testing.T) {
		h := map[string][]string{"traceparent": {given}}
		_, span := msgtrace.StartPublish(context.Background(), tp, "b2.req.authorize", h)
		span.End()
		assert.Equal(t, []string{given}, h["traceparent"])
		s := exp.GetSpans()[len(exp.GetSpans())-1]
		require.Len(t, s.Links, 1)
		assert.Equal(t, "b7ad6b7169203331", s.Links[0].SpanContext.SpanID().String())
	})
	t.Run("does nothing without a provider", func(t *testing.T) {
		h := map[string][]string{}
		ctx, span := msgtrace.StartPublish(context.Background(), nil, "b2.req.authorize", h)
		span.End()
		assert.Empty(t, h)
		assert.False(t, span.IsRecording())
		assert.False(t, trace.SpanContextFromContext(ctx).IsValid())
	})
}
