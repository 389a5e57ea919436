package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"slices"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/stretchr/testify/require"
)

// model returns the parsed kong model of the CLI.
func model(t *testing.T) *kong.Application {
	t.Helper()
	var cli CLI
	p, err := newParser(&cli, io.Discard, io.Discard, func(int) {})
	require.NoError(t, err)
	return p.Model
}

// command returns the command node called name (a direct child of the application).
func command(t *testing.T, app *kong.Application, name string) *kong.Node {
	t.Helper()
	for _, c := range app.Children {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no command %q in the CLI model", name)
	return nil
}

// envNames returns every environment variable the flags of node and its descendants read.
func envNames(node *kong.Node) []string {
	var out []string
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range n.Flags {
			out = append(out, f.Envs...)
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(node)
	slices.Sort(out)
	return slices.Compact(out)
}

// clearEnv unsets every variable the CLI reads for the rest of the test (restored afterwards),
// so that the machine's environment cannot leak into a test.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, name := range envNames(model(t).Node) {
		t.Setenv(name, "") // registers the restore
		require.NoError(t, os.Unsetenv(name))
	}
}

// runCLI runs the CLI in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}
