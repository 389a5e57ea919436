// Package procenv owns the environment that the programs and tests under cmd/ give a b2jet
// subprocess (end-to-end tests, the chaos suite, the benchmark program), so that nothing in the
// caller's environment configures it by accident.
package procenv

import (
	"os"
	"strings"
)

// prefixes are those of every variable b2jet reads (OTEL_*: the worker's tracing).
var prefixes = []string{"NATS_", "B2_", "B2JET_", "OTEL_"}

// Clean returns this process's environment without the variables b2jet reads (NATS_*, B2_*,
// B2JET_*, OTEL_*), followed by extra ("NAME=value" each).
func Clean(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !readByB2jet(name) {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

func readByB2jet(name string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
