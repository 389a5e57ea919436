package procenv

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestClean(t *testing.T) {
	t.Setenv("NATS_URL", "nats://elsewhere:4222")
	t.Setenv("B2_APPLICATION_KEY", "secret")
	t.Setenv("B2JET_CONCURRENCY", "3")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
	t.Setenv("B2FAKE_KEY", "kept")
	t.Setenv("PROCENV_OTHER", "kept")
	env := Clean("B2_APPLICATION_KEY_ID=given")
	for _, kv := range env {
		assert.NotContains(t, []string{"NATS_URL=nats://elsewhere:4222", "B2_APPLICATION_KEY=secret", "B2JET_CONCURRENCY=3",
			"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318"}, kv)
	}
	assert.Contains(t, env, "B2FAKE_KEY=kept")
	assert.Contains(t, env, "PROCENV_OTHER=kept")
	assert.Equal(t, "B2_APPLICATION_KEY_ID=given", env[len(env)-1], "extra comes last")
	assert.Equal(t, 1, len(slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return kv != "B2_APPLICATION_KEY_ID=given" })))
}
