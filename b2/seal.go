package b2

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// A session leaves the process (Config.Sessions) only sealed: AES-256-GCM under a key derived
// with HKDF-SHA256 from the application key (secret) and its key id (salt), bound to the
// account's name. Whoever reads the store without the application key learns nothing usable,
// and cannot write a value that this key accepts. A process configured with another key for the
// same account name fails to open the value, and takes it for someone else's.
//
// Layout: version (1 byte) | refresh time, Unix ms (8 bytes, big endian) | nonce (12) | ciphertext.
// The refresh time is in the clear, authenticated with the rest, so that a process that cannot
// open a value still knows when its owners stop using it.

const (
	sealVersion    byte = 1
	sealHeaderSize      = 1 + 8
	sealInfo            = "b2jet sealed session v1"
)

var (
	// errSealedOther: the value was sealed under another key (or tampered with).
	errSealedOther = errors.New("b2: stored session sealed under another key")
	errSealedShape = errors.New("b2: stored session is not a sealed session")
)

// sealedSession is the plaintext of a sealed session: Session with the token in the clear (a
// Secret marshals as "[REDACTED]").
type sealedSession struct {
	AccountID               string          `json:"accountId"`
	Token                   string          `json:"token"`
	APIURL                  string          `json:"apiUrl"`
	DownloadURL             string          `json:"downloadUrl"`
	S3APIURL                string          `json:"s3ApiUrl,omitempty"`
	RecommendedPartSize     int64           `json:"recommendedPartSize,omitempty"`
	AbsoluteMinimumPartSize int64           `json:"absoluteMinimumPartSize,omitempty"`
	Capabilities            []string        `json:"capabilities"`
	Buckets                 []AllowedBucket `json:"buckets"` // null: every bucket
	NamePrefix              string          `json:"namePrefix,omitempty"`
	KeyExpiresAt            int64           `json:"keyExpiresAt,omitempty"` // Unix ms
	ObtainedAt              int64           `json:"obtainedAt"`             // Unix ms
	APIVersion              string          `json:"apiVersion"`
}

// newSealer derives the sealing AEAD of an application key.
func newSealer(keyID string, key Secret, name string) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, []byte(key.Reveal()), []byte(keyID), sealInfo+"\x00"+name, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal returns s sealed under aead for the account name.
func seal(aead cipher.AEAD, name string, s *Session) ([]byte, error) {
	plain, err := json.Marshal(sealedSession{
		AccountID: s.AccountID, Token: s.AuthorizationToken.Reveal(), APIURL: s.APIURL,
		DownloadURL: s.DownloadURL, S3APIURL: s.S3APIURL, RecommendedPartSize: s.RecommendedPartSize,
		AbsoluteMinimumPartSize: s.AbsoluteMinimumPartSize, Capabilities: s.Allowed.Capabilities,
		Buckets: s.Allowed.Buckets, NamePrefix: s.Allowed.NamePrefix, KeyExpiresAt: unixMilli(s.KeyExpiresAt),
		ObtainedAt: s.ObtainedAt.UnixMilli(), APIVersion: s.APIVersion,
	})
	if err != nil {
		return nil, err
	}
	out := make([]byte, sealHeaderSize, sealHeaderSize+aead.NonceSize()+len(plain)+aead.Overhead())
	out[0] = sealVersion
	binary.BigEndian.PutUint64(out[1:], uint64(s.RefreshAt.UnixMilli()))
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plain, sealAAD(out[:sealHeaderSize], name)), nil
}

// sealedRefreshAt reads the refresh time in the clear of a sealed value, whoever sealed it.
func sealedRefreshAt(v []byte) (time.Time, error) {
	if len(v) < sealHeaderSize || v[0] != sealVersion {
		return time.Time{}, errSealedShape
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(v[1:]))), nil
}

// unseal opens a sealed value into a session whose refresh time is the sealer's, or earlier when
// this client's lifetime and margin say so.
func unseal(aead cipher.AEAD, name string, v []byte, lifetime, margin time.Duration) (*Session, error) {
	refreshAt, err := sealedRefreshAt(v)
	if err != nil {
		return nil, err
	}
	ns := aead.NonceSize()
	if len(v) < sealHeaderSize+ns+aead.Overhead() {
		return nil, errSealedShape
	}
	nonce := v[sealHeaderSize : sealHeaderSize+ns]
	plain, err := aead.Open(nil, nonce, v[sealHeaderSize+ns:], sealAAD(v[:sealHeaderSize], name))
	if err != nil {
		return nil, errSealedOther
	}
	var p sealedSession
	if err := json.Unmarshal(plain, &p); err != nil {
		return nil, fmt.Errorf("%w: %v", errSealedShape, err)
	}
	s := &Session{
		AccountID: p.AccountID, AuthorizationToken: Secret(p.Token), APIURL: p.APIURL,
		DownloadURL: p.DownloadURL, S3APIURL: p.S3APIURL, RecommendedPartSize: p.RecommendedPartSize,
		AbsoluteMinimumPartSize: p.AbsoluteMinimumPartSize,
		Allowed:                 Allowed{Capabilities: p.Capabilities, Buckets: p.Buckets, NamePrefix: p.NamePrefix},
		ObtainedAt:              time.UnixMilli(p.ObtainedAt), RefreshAt: refreshAt, APIVersion: p.APIVersion,
	}
	if p.KeyExpiresAt != 0 {
		s.KeyExpiresAt = time.UnixMilli(p.KeyExpiresAt)
	}
	if own := s.ObtainedAt.Add(lifetime - margin); own.Before(s.RefreshAt) {
		s.RefreshAt = own
	}
	if !s.KeyExpiresAt.IsZero() && s.KeyExpiresAt.Before(s.RefreshAt) {
		s.RefreshAt = s.KeyExpiresAt
	}
	if s.AuthorizationToken == "" || s.APIURL == "" {
		return nil, errSealedShape
	}
	return s, nil
}

func sealAAD(header []byte, name string) []byte {
	return append(append([]byte(nil), header...), name...)
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
