package console

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// noSecretLeft fails when a member named like a secret holds anything but Redacted.
func noSecretLeft(t *testing.T, v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if secretName(k) {
				require.Equal(t, Redacted, e, k)
				continue
			}
			noSecretLeft(t, e)
		}
	case []any:
		for _, e := range x {
			noSecretLeft(t, e)
		}
	}
}

// Payloads are attacker-controlled: whatever they hold, the page shows valid JSON with every
// secret-named member redacted, and no unprintable rune.
func FuzzRedactJSON(f *testing.F) {
	for _, s := range []string{
		`{"bucketName":"photos"}`, `{"authorizationToken":"4_x","a":[{"applicationKey":"K"}]}`,
		`{"x":"<script>\u001b\u202e</script>"}`, `[1,2.50,"token"]`, `"s"`, `{"Password":{"nested":1}}`, `{`, `1E1000`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, ok := redactJSON(body)
		if !ok {
			return
		}
		// Numbers are decoded as json.Number: the page shows them as sent, and a valid JSON number
		// such as 1E1000 has no float64.
		dec := json.NewDecoder(strings.NewReader(out))
		dec.UseNumber()
		var v any
		require.NoError(t, dec.Decode(&v), out)
		noSecretLeft(t, v)
		shown := visibleBlock(out)
		require.True(t, utf8.ValidString(shown))
		for _, line := range strings.Split(shown, "\n") {
			require.False(t, strings.ContainsFunc(line, unprintable), "%q", line)
		}
	})
}
