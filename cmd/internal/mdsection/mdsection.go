// Package mdsection rewrites the generated section of a markdown file: the lines between a begin
// and an end marker comment belong to a program (the benchmark writes its part of BENCHMARKS.md,
// the chaos suite its table in docs/reliability.md), and everything around them to people, so a
// run replaces only what it generated.
package mdsection

import (
	"bytes"
	"errors"
	"fmt"
	"os"
)

// ErrNoMarkers is returned when a document does not hold each marker exactly once, begin first.
// Writing the section anywhere else would put generated text where nobody expects it, or leave a
// stale copy beside a new one.
var ErrNoMarkers = errors.New("section markers not found")

// Section returns body between the two marker lines, as Replace leaves it in a document.
func Section(begin, end string, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString(begin)
	b.WriteByte('\n')
	b.Write(withNewline(body))
	b.WriteString(end)
	b.WriteByte('\n')
	return b.Bytes()
}

// Replace returns doc with the lines between the line that holds begin and the line that holds end
// replaced by body. The marker lines themselves and everything outside them are kept byte for
// byte; doc is not modified.
func Replace(doc []byte, begin, end string, body []byte) ([]byte, error) {
	if begin == "" || end == "" {
		return nil, fmt.Errorf("%w: empty marker", ErrNoMarkers)
	}
	nb, ne := bytes.Count(doc, []byte(begin)), bytes.Count(doc, []byte(end))
	if nb != 1 || ne != 1 {
		return nil, fmt.Errorf("%w: %q %d times, %q %d times (want once each)", ErrNoMarkers, begin, nb, end, ne)
	}
	i := bytes.Index(doc, []byte(begin)) + len(begin)
	if nl := bytes.IndexByte(doc[i:], '\n'); nl >= 0 {
		i += nl + 1 // the section starts after the begin marker's line
	} else {
		i = len(doc)
	}
	j := bytes.Index(doc, []byte(end))
	j = bytes.LastIndexByte(doc[:j], '\n') + 1 // and ends before the end marker's line
	if j < i {
		return nil, fmt.Errorf("%w: %q does not come on a line after %q", ErrNoMarkers, end, begin)
	}
	out := make([]byte, 0, len(doc)-(j-i)+len(body)+1)
	out = append(out, doc[:i]...)
	out = append(out, withNewline(body)...)
	return append(out, doc[j:]...), nil
}

// RewriteFile replaces the section of the file at path (see Replace). A file without the markers
// is an error wrapping ErrNoMarkers, and is left as it was.
func RewriteFile(path, begin, end string, body []byte) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	out, err := Replace(doc, begin, end, body)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// withNewline returns b ending with a newline (an empty body stays empty).
func withNewline(b []byte) []byte {
	if len(b) == 0 || b[len(b)-1] == '\n' {
		return b
	}
	return append(b[:len(b):len(b)], '\n')
}
