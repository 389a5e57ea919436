package mdsection

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	begin = "<!-- x:begin -->"
	end   = "<!-- x:end -->"
)

// Only the lines between the markers change; the marker lines and the rest stay byte for byte.
func TestReplaceKeepsTheRest(t *testing.T) {
	doc := []byte("# Title\n\nintro\n\n" + begin + "\nold table\nold line\n" + end + "\n\n## After\n\nkept\n")
	out, err := Replace(doc, begin, end, []byte("| new |\n"))
	require.NoError(t, err)
	assert.Equal(t, "# Title\n\nintro\n\n"+begin+"\n| new |\n"+end+"\n\n## After\n\nkept\n", string(out))

	again, err := Replace(out, begin, end, []byte("| newer |"))
	require.NoError(t, err)
	assert.Equal(t, "# Title\n\nintro\n\n"+begin+"\n| newer |\n"+end+"\n\n## After\n\nkept\n", string(again),
		"a body without a final newline gets one, so the end marker keeps its own line")
	assert.Contains(t, string(doc), "old table", "the input is not modified")

	// A marker with more on its line (a note to editors) keeps the whole line.
	noted := []byte(begin + " (generated; do not edit)\nold\n  " + end + " trailing\n")
	out, err = Replace(noted, begin, end, []byte("new\n"))
	require.NoError(t, err)
	assert.Equal(t, begin+" (generated; do not edit)\nnew\n  "+end+" trailing\n", string(out))

	empty, err := Replace([]byte(begin+"\n"+end), begin, end, nil)
	require.NoError(t, err)
	assert.Equal(t, begin+"\n"+end, string(empty))
}

// Missing, repeated or misordered markers are an error, never a guess about where the section goes.
func TestReplaceNeedsBothMarkers(t *testing.T) {
	for name, doc := range map[string]string{
		"none":        "# Title\n\ntext\n",
		"no end":      begin + "\ntext\n",
		"no begin":    "text\n" + end + "\n",
		"end first":   end + "\ntext\n" + begin + "\n",
		"same line":   begin + " " + end + "\n",
		"begin twice": begin + "\n" + begin + "\n" + end + "\n",
		"end twice":   begin + "\n" + end + "\n" + end + "\n",
		"empty":       "",
	} {
		_, err := Replace([]byte(doc), begin, end, []byte("body\n"))
		assert.ErrorIs(t, err, ErrNoMarkers, name)
	}
}

// RewriteFile rewrites the section in place and leaves a file without markers untouched.
func TestRewriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "doc.md")
	require.NoError(t, os.WriteFile(path, []byte("a\n"+begin+"\nold\n"+end+"\nb\n"), 0o644))
	require.NoError(t, RewriteFile(path, begin, end, []byte("new\n")))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "a\n"+begin+"\nnew\n"+end+"\nb\n", string(got))

	bare := filepath.Join(dir, "bare.md")
	require.NoError(t, os.WriteFile(bare, []byte("no markers\n"), 0o644))
	err = RewriteFile(bare, begin, end, []byte("new\n"))
	assert.ErrorIs(t, err, ErrNoMarkers)
	assert.Contains(t, err.Error(), bare, "the error names the file")
	got, err = os.ReadFile(bare)
	require.NoError(t, err)
	assert.Equal(t, "no markers\n", string(got))

	err = RewriteFile(filepath.Join(dir, "missing.md"), begin, end, []byte("new\n"))
	assert.True(t, errors.Is(err, os.ErrNotExist), "a missing file is an error: %v", err)
}

func TestSection(t *testing.T) {
	assert.Equal(t, begin+"\nbody\n"+end+"\n", string(Section(begin, end, []byte("body"))))
}
