package b2

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sealedFixture(t *testing.T) (*Session, []byte) {
	t.Helper()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	s, err := parseSession([]byte(v4Body), "v4", now, DefaultSessionLifetime, DefaultRefreshMargin)
	require.NoError(t, err)
	s.AuthorizationToken = "tok-SECRET-4_000"
	aead, err := newSealer("key-id", "app-key", "acme")
	require.NoError(t, err)
	v, err := seal(aead, "acme", s)
	require.NoError(t, err)
	return s, v
}

func TestSealedSessionOpensOnlyUnderItsKeyAndName(t *testing.T) {
	t.Parallel()
	s, v := sealedFixture(t)
	assert.False(t, bytes.Contains(v, []byte("tok-SECRET")), "no token in the clear")
	assert.False(t, bytes.Contains(v, []byte("app-key")))
	assert.False(t, bytes.Contains(v, []byte("https://a")), "the whole session is sealed")

	aead, err := newSealer("key-id", "app-key", "acme")
	require.NoError(t, err)
	got, err := unseal(aead, "acme", v, DefaultSessionLifetime, DefaultRefreshMargin)
	require.NoError(t, err)
	assert.Equal(t, s.AuthorizationToken.Reveal(), got.AuthorizationToken.Reveal())
	assert.Equal(t, s.Allowed, got.Allowed)
	assert.Equal(t, s.APIURL, got.APIURL)
	assert.True(t, s.RefreshAt.Equal(got.RefreshAt))
	assert.True(t, s.ObtainedAt.Equal(got.ObtainedAt))

	for name, open := range map[string]func() error{
		"another key": func() error {
			a, _ := newSealer("key-id", "other-key", "acme")
			_, err := unseal(a, "acme", v, DefaultSessionLifetime, DefaultRefreshMargin)
			return err
		},
		"another key id": func() error {
			a, _ := newSealer("other-id", "app-key", "acme")
			_, err := unseal(a, "acme", v, DefaultSessionLifetime, DefaultRefreshMargin)
			return err
		},
		"another account name": func() error {
			_, err := unseal(aead, "globex", v, DefaultSessionLifetime, DefaultRefreshMargin)
			return err
		},
		"a refresh time moved": func() error {
			w := bytes.Clone(v)
			w[8]++
			_, err := unseal(aead, "acme", w, DefaultSessionLifetime, DefaultRefreshMargin)
			return err
		},
		"a ciphertext changed": func() error {
			w := bytes.Clone(v)
			w[len(w)-20] ^= 1
			_, err := unseal(aead, "acme", w, DefaultSessionLifetime, DefaultRefreshMargin)
			return err
		},
	} {
		assert.ErrorIs(t, open(), errSealedOther, name)
	}
	_, err = unseal(aead, "acme", []byte("plain"), DefaultSessionLifetime, DefaultRefreshMargin)
	assert.ErrorIs(t, err, errSealedShape)
}

// An opened session is refreshed by the earliest of the sealer's refresh time, this client's
// own lifetime and margin, and the key's expiry.
func TestUnsealedSessionRefreshTime(t *testing.T) {
	t.Parallel()
	s, v := sealedFixture(t)
	aead, err := newSealer("key-id", "app-key", "acme")
	require.NoError(t, err)
	got, err := unseal(aead, "acme", v, DefaultSessionLifetime, 3*time.Hour)
	require.NoError(t, err)
	assert.True(t, s.ObtainedAt.Add(21*time.Hour).Equal(got.RefreshAt), "this client's wider margin")

	s.KeyExpiresAt = s.ObtainedAt.Add(2 * time.Hour)
	s.RefreshAt = s.KeyExpiresAt
	v, err = seal(aead, "acme", s)
	require.NoError(t, err)
	got, err = unseal(aead, "acme", v, DefaultSessionLifetime, DefaultRefreshMargin)
	require.NoError(t, err)
	assert.True(t, got.KeyExpiresAt.Equal(s.KeyExpiresAt))
	assert.True(t, got.RefreshAt.Equal(s.KeyExpiresAt), "the key's expiry")
	at, err := sealedRefreshAt(v)
	require.NoError(t, err)
	assert.True(t, at.Equal(s.KeyExpiresAt), "readable without the key")
}
