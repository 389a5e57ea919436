package client

import "context"

type traceparentKey struct{}

// WithTraceparent returns a context whose requests carry tp (a W3C trace context,
// "00-<trace id>-<span id>-<flags>") in their traceparent header. Workers carry it onto their
// replies and dead letters (a worker that traces sends its own span's instead, in the same
// trace), so a trace spans the publisher and the worker: take tp from the current span of yours,
// or set Options.TracerProvider and let the client start a producer span.
func WithTraceparent(ctx context.Context, tp string) context.Context {
	return context.WithValue(ctx, traceparentKey{}, tp)
}

func traceparent(ctx context.Context) string {
	tp, _ := ctx.Value(traceparentKey{}).(string)
	return tp
}
