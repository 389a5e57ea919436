package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The console refuses to start where it would serve beyond this machine without auth, and on
// half-given credentials, before it connects to anything.
func TestConsoleFlags(t *testing.T) {
	clearEnv(t)
	pwFile := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte("s3cret\n"), 0o600))
	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"all interfaces without auth", nil, []string{"--listen", "0.0.0.0:8080"}, "--listen (B2JET_CONSOLE_LISTEN): 0.0.0.0:8080 is not a loopback address"},
		{"empty host without auth", nil, []string{"--listen", ":8080"}, "is not a loopback address"},
		{"a LAN address without auth", nil, []string{"--listen", "192.168.1.5:8080"}, "needs --auth-user and a password"},
		{"a name without auth", nil, []string{"--listen", "console.example:8080"}, "is not a loopback address"},
		{"not host:port", nil, []string{"--listen", "8080"}, `--listen (B2JET_CONSOLE_LISTEN): "8080" is not host:port`},
		{"user without password", nil, []string{"--listen", "0.0.0.0:8080", "--auth-user", "admin"}, "--auth-password (B2JET_CONSOLE_PASSWORD): missing"},
		{"password without user", map[string]string{"B2JET_CONSOLE_PASSWORD": "x"}, nil, "--auth-user (B2JET_CONSOLE_USER): missing"},
		{"both passwords", map[string]string{"B2JET_CONSOLE_PASSWORD": "x"}, []string{"--auth-user", "a", "--auth-password-file", pwFile}, "not both"},
		{"empty password file", nil, []string{"--auth-user", "a", "--auth-password-file", empty}, "is empty"},
		{"missing password file", nil, []string{"--auth-user", "a", "--auth-password-file", empty + "x"}, "cannot read"},
		{"colon in user", map[string]string{"B2JET_CONSOLE_PASSWORD": "x"}, []string{"--auth-user", "a:b"}, "holds a ':'"},
		{"refresh too short", nil, []string{"--refresh", "100ms"}, "--refresh (B2JET_CONSOLE_REFRESH)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			code, _, stderr := runCLI(t, append([]string{"console"}, tt.args...)...)
			assert.Equal(t, exitUsage, code, stderr)
			assert.Contains(t, stderr, tt.want)
		})
	}

	t.Run("auth from a file allows any address", func(t *testing.T) {
		c := ConsoleCmd{Listen: "0.0.0.0:8080", AuthUser: "admin", AuthPasswordFile: pwFile, Refresh: 5e9, MaxRedrives: 3}
		user, pass, err := c.credentials()
		require.NoError(t, err)
		assert.Equal(t, "admin", user)
		assert.Equal(t, "s3cret", pass, "the line break is not part of the password")
	})
	t.Run("loopback needs no auth", func(t *testing.T) {
		for _, addr := range []string{"127.0.0.1:8080", "localhost:0", "[::1]:8080"} {
			c := ConsoleCmd{Listen: addr, Refresh: 5e9, MaxRedrives: 3}
			user, _, err := c.credentials()
			require.NoError(t, err, addr)
			assert.Empty(t, user)
		}
	})
}
