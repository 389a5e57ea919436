package consumer

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/b2jet/b2jet/schema"
)

type describedErr struct{ code, detail string }

func (e describedErr) Error() string { return e.code }
func (e describedErr) Fault() Fault {
	return Fault{Error: schema.Error{Code: e.code, Retryable: true}, Detail: e.detail}
}

func TestAttemptRecord(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		err   error
		delay time.Duration
		want  string
	}{
		{"described, retried", fmt.Errorf("wrapped: %w", describedErr{"unavailable", "b2=503/service_unavailable"}), 2 * time.Second,
			"3 2026-05-01T12:00:00Z unavailable b2=503/service_unavailable delay=2s"},
		{"retry-after", RetryAfter(describedErr{"unavailable", "b2=429/too_many_requests"}, 5*time.Second), 5 * time.Second,
			"3 2026-05-01T12:00:00Z unavailable b2=429/too_many_requests retry-after=5s delay=5s"},
		{"permanent without detail", Permanent(describedErr{"bucket_not_found", ""}), 0,
			"3 2026-05-01T12:00:00Z bucket_not_found"},
		{"watchdog", fmt.Errorf("%w: x", ErrNoProgress), time.Second,
			"3 2026-05-01T12:00:00Z unavailable no progress within the ack wait delay=1s"},
		{"anything else", errors.New("boom"), 0, "3 2026-05-01T12:00:00Z internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, attemptRecord(3, at, FaultOf(tt.err), tt.delay))
		})
	}
}
