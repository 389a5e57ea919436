package handlers

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Attributes of the breaker events.
const (
	attrBreaker = attribute.Key("b2jet.breaker") // "<account>/<op>"
	attrWaitMs  = attribute.Key("b2jet.wait_ms")
)

// breakerEvent adds event name to the span of ctx (the delivery's, when the worker traces):
// "breaker.wait" when a request starts being held by its open breaker, "breaker.resume" with
// how long it waited, "breaker.held_out" when it is put back instead. Nothing is built when the
// span does not record.
func breakerEvent(ctx context.Context, name, breaker string, waited time.Duration) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{attrBreaker.String(breaker)}
	if waited > 0 {
		attrs = append(attrs, attrWaitMs.Int64(waited.Milliseconds()))
	}
	span.AddEvent(name, trace.WithAttributes(attrs...))
}
