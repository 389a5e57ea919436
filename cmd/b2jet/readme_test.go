package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readDoc returns a documentation file by its path from the repository root.
func readDoc(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(path)))
	require.NoError(t, err)
	return string(raw)
}

// readmeSection returns the text of a markdown document (the README or a page of docs/) from the
// heading line to the next heading of the same or a higher level.
func readmeSection(t *testing.T, readme, heading string) string {
	t.Helper()
	start := strings.Index(readme, "\n"+heading+"\n")
	require.GreaterOrEqual(t, start, 0, "no heading %q", heading)
	rest := readme[start+len(heading)+2:]
	level := strings.SplitN(heading, " ", 2)[0]
	for i := 0; i < len(rest); {
		j := strings.IndexByte(rest[i:], '\n')
		if j < 0 {
			break
		}
		line := rest[i : i+j]
		if strings.HasPrefix(line, "#") {
			if l := strings.SplitN(line, " ", 2)[0]; len(l) <= len(level) {
				return rest[:i]
			}
		}
		i += j + 1
	}
	return rest
}

// The configuration tables (docs/configuration.md) list every flag with its environment variable
// and default, as the CLI defines them, so that the documentation cannot drift from --help; the
// README's quick start is exactly the commands a new user runs.
func TestREADMEConfigurationTables(t *testing.T) {
	readme := readDoc(t, "README.md")
	conf := readDoc(t, "docs/configuration.md")
	app := model(t)

	worker := readmeSection(t, conf, "## `b2jet worker`")
	for _, f := range command(t, app, "worker").Flags {
		row := tableRow(worker, "`--"+f.Name+"`")
		if !assert.NotEmpty(t, row, "worker table has no row for --%s", f.Name) {
			continue
		}
		for _, env := range f.Envs {
			assert.Contains(t, row, "`"+env+"`", "--%s", f.Name)
		}
		if f.HasDefault && f.Default != "" {
			assert.Contains(t, row, "`"+f.Default+"`", "default of --%s", f.Name)
		}
	}

	consoleTable := readmeSection(t, conf, "## `b2jet console`")
	opsFlags := map[string]bool{}
	for _, f := range command(t, app, "status").Flags {
		opsFlags[f.Name] = true // the shared operator flags, documented in the table above it
	}
	for _, f := range command(t, app, "console").Flags {
		if opsFlags[f.Name] && f.Name != "max-redrives" {
			continue
		}
		row := tableRow(consoleTable, "`--"+f.Name+"`")
		if !assert.NotEmpty(t, row, "console table has no row for --%s", f.Name) {
			continue
		}
		for _, env := range f.Envs {
			assert.Contains(t, row, "`"+env+"`", "--%s", f.Name)
		}
		if f.HasDefault && f.Default != "" {
			assert.Contains(t, row, "`"+f.Default+"`", "default of --%s", f.Name)
		}
	}

	request := readmeSection(t, conf, "## `b2jet request`")
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range n.Flags {
			assert.Contains(t, request, "--"+f.Name, "request table lacks --%s", f.Name)
			for _, env := range f.Envs {
				assert.Contains(t, request, "`"+env+"`", "--%s", f.Name)
			}
			if f.HasDefault && f.Default != "" {
				assert.Contains(t, request, "`"+f.Default+"`", "default of --%s", f.Name)
			}
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(command(t, app, "request"))

	// The quick start is exactly the commands.
	quick := readmeSection(t, readme, "## Quick start (60 seconds, only Go needed)")
	for _, cmd := range []string{
		"make run",
		"go run ./cmd/b2jet request list --bucket b2jet-demo --match 'exports/2026-05/**.csv' --all",
		"go run ./cmd/b2jet request authorize",
		"make test",
	} {
		assert.Contains(t, quick, "\n"+cmd+"\n", "quick start lacks %q", cmd)
	}
	assert.Contains(t, readme, SandboxBucket)
}

// tableRow returns the first table line of text that contains cell.
func tableRow(text, cell string) string {
	for line := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(line, "| ") && strings.Contains(line, cell) {
			return line
		}
	}
	return ""
}

// The README is read in ten minutes: the reference lives in docs/, and a README that grows past
// 300 lines has taken some of it back.
func TestREADMEStaysShort(t *testing.T) {
	lines := strings.Count(readDoc(t, "README.md"), "\n")
	assert.Less(t, lines, 300, "README.md has %d lines; move reference material to docs/", lines)
}
