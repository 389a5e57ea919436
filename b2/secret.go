package b2

import (
	"fmt"
	"log/slog"
)

// Secret holds an application key or an authorization token. Every way of printing it (String,
// GoString, any fmt verb, JSON) shows "[REDACTED]"; Reveal returns the value.
type Secret string

const redacted = "[REDACTED]"

// Reveal returns the secret's value. Call it only where the value must leave the process on
// purpose (an Authorization header, the authorize reply).
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer.
func (s Secret) GoString() string { return redacted }

// Format implements fmt.Formatter so that %s, %v, %q, %x and friends all redact.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalJSON redacts the secret in JSON too.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// LogValue keeps log/slog from printing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }
