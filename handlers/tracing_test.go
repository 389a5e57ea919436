package handlers_test

import (
	"context"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/schema"
)

// A request held by its open breaker records the wait on its span: when it started being held,
// and when (and after how long) it stopped.
func TestBreakerWaitIsTraced(t *testing.T) {
	t.Parallel()
	tr := newTraced(t)
	f := newFixture(t, fastBreaker)
	f.fake.CreateBucket("traced-bucket")
	body := map[string]any{"bucketName": "traced-bucket"}
	f.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 500})
	for range 3 {
		require.Error(t, listOnce(t, f, context.Background(), newRecorder(), body))
	}
	require.Equal(t, gobreaker.StateOpen, f.set.Breakers.State("default", schema.OpListFileNames))

	ctx, span := tr.tp.Tracer("test").Start(context.Background(), "delivery")
	short, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, listOnce(t, f, short, newRecorder(), body), context.DeadlineExceeded)
	span.End()

	spans := tr.named("delivery")
	require.Len(t, spans, 1)
	wait := eventNamed(t, spans[0], "breaker.wait")
	assert.Contains(t, wait.Attributes, attribute.String("b2jet.breaker", "default/list_file_names"))
	resume := eventNamed(t, spans[0], "breaker.resume")
	assert.False(t, resume.Time.Before(wait.Time))
}
