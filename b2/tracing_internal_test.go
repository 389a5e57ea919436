package b2

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// With no tracer provider and no recording span in the context, the tracing steps of a B2 call
// allocate nothing: no attribute or span is built.
func TestTracingOffAllocatesNothing(t *testing.T) {
	c := &Client{}
	r := request{op: opListFileNames, method: http.MethodPost, url: "https://api.example.com/b2api/v2/b2_list_file_names", bucketID: "b1"}
	ctx := context.Background()
	err := errors.New("b2 failed")
	allocs := testing.AllocsPerRun(100, func() {
		span := c.startSpan(ctx, r)
		spanPause(span, http.StatusTooManyRequests, time.Second)
		endSpan(span, http.StatusTooManyRequests, "too_many_requests", err)
		waitEvent(ctx, "b2.pause.wait", r.op, time.Second)
	})
	assert.Zero(t, allocs)
}
