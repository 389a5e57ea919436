package console

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Redacted replaces a secret on the pages.
const Redacted = "[REDACTED]"

// secretName reports whether a payload field or header name says its value is a secret: B2's
// authorizationToken and applicationKey, and anything named like a token, secret, password or
// credential. Key ids are not secrets (they name a key, they do not open it). Requests carry no
// secrets by contract, but a publisher can put anything in a payload, and an authorize reply
// republished by mistake would carry a live token: the console never shows such a value.
func secretName(name string) bool {
	n := strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(name))
	if strings.HasSuffix(n, "id") {
		return false
	}
	for _, s := range []string{"token", "secret", "password", "passwd", "credential", "authorization", "applicationkey", "apikey", "privatekey"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// redactJSON returns body (a JSON document) indented, with the value of every object member whose
// name is a secretName replaced by Redacted, at any depth. ok is false when body is not JSON.
func redactJSON(body []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers stay exactly as they were
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", false
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false) // html/template escapes the page; \u003c would only hurt reading
	enc.SetIndent("", "  ")
	if err := enc.Encode(redactValue(v)); err != nil {
		return "", false
	}
	return strings.TrimSuffix(out.String(), "\n"), true
}

func redactValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if secretName(k) {
				x[k] = Redacted
			} else {
				x[k] = redactValue(e)
			}
		}
	case []any:
		for i, e := range x {
			x[i] = redactValue(e)
		}
	}
	return v
}
