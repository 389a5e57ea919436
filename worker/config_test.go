package worker

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/handlers"
)

// One failing account may hold at most half the handler slots unless MaxHeld says otherwise.
func TestDefaultMaxHeldIsHalfTheConcurrency(t *testing.T) {
	tests := []struct {
		name        string
		concurrency int
		maxHeld     int
		want        int
	}{
		{"consumer default concurrency", 0, 0, consumer.DefaultConcurrency / 2},
		{"even", 8, 0, 4},
		{"one slot", 1, 0, 1},
		{"explicit", 8, 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Consumer: consumer.Config{Concurrency: tt.concurrency}, Breakers: handlers.BreakerSettings{MaxHeld: tt.maxHeld}}
			assert.Equal(t, tt.want, c.withDefaults().Breakers.MaxHeld)
		})
	}
}

func TestLoggerIsTheConsumersByDefault(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	assert.Same(t, log, Config{Logger: log}.withDefaults().Consumer.Logger)
	own := slog.New(slog.DiscardHandler)
	assert.Same(t, own, Config{Logger: log, Consumer: consumer.Config{Logger: own}}.withDefaults().Consumer.Logger)
	assert.NotNil(t, Config{}.withDefaults().Logger)
}

func TestTracerProviderIsTheConsumersByDefault(t *testing.T) {
	tp, own := sdktrace.NewTracerProvider(), sdktrace.NewTracerProvider()
	assert.Same(t, tp, Config{TracerProvider: tp}.withDefaults().Consumer.TracerProvider)
	assert.Same(t, own, Config{TracerProvider: tp, Consumer: consumer.Config{TracerProvider: own}}.withDefaults().Consumer.TracerProvider)
}
