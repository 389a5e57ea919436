package b2

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	v2Body = `{"accountId":"acc1","authorizationToken":"tok-SECRET","apiUrl":"https://api004.backblazeb2.com",
"downloadUrl":"https://f004.backblazeb2.com","s3ApiUrl":"https://s3.us-west-004.backblazeb2.com",
"recommendedPartSize":100000000,"absoluteMinimumPartSize":5000000,
"allowed":{"capabilities":["listFiles","readFiles"],"bucketId":"b1","bucketName":"photos","namePrefix":"cats/"},
"someNewField":{"x":1}}`
	v2MasterBody = `{"accountId":"acc1","authorizationToken":"t","apiUrl":"https://a","downloadUrl":"https://d",
"minimumPartSize":100000000,"absoluteMinimumPartSize":5000000,
"allowed":{"capabilities":["listBuckets","listFiles"],"bucketId":null,"bucketName":null,"namePrefix":null}}`
	v2DeletedBucketBody = `{"accountId":"acc1","authorizationToken":"t","apiUrl":"https://a","downloadUrl":"https://d",
"allowed":{"capabilities":["listFiles"],"bucketId":"b9","bucketName":null,"namePrefix":null}}`
	v3Body = `{"accountId":"acc1","authorizationToken":"t","applicationKeyExpirationTimestamp":1893456000000,
"apiInfo":{"storageApi":{"apiUrl":"https://a","downloadUrl":"https://d","s3ApiUrl":"https://s3",
"recommendedPartSize":100000000,"absoluteMinimumPartSize":5000000,"capabilities":["listFiles"],
"bucketId":"b1","bucketName":"photos","namePrefix":null,"infoType":"storageApi"},
"groupsApi":{"capabilities":["x"],"groupsApiUrl":"https://g","infoType":"groupsApi"}}}`
	v4Body = `{"accountId":"acc1","authorizationToken":"t","applicationKeyExpirationTimestamp":null,
"apiInfo":{"storageApi":{"apiUrl":"https://a","downloadUrl":"https://d","s3ApiUrl":"https://s3",
"recommendedPartSize":100000000,"absoluteMinimumPartSize":5000000,
"allowed":{"buckets":[{"id":"b1","name":"photos"},{"id":"b2","name":null}],"capabilities":["listFiles"],"namePrefix":"logs/"}}}}`
	v4MasterBody = `{"accountId":"acc1","authorizationToken":"t","apiInfo":{"storageApi":{"apiUrl":"https://a",
"downloadUrl":"https://d","allowed":{"buckets":null,"capabilities":["listFiles","listBuckets"],"namePrefix":null}}}}`
)

func TestParseSessionShapes(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		body        string
		wantAllowed Allowed
		wantPart    int64
		wantKeyExp  time.Time
		wantS3      string
	}{
		{"v2 restricted", v2Body, Allowed{Capabilities: []string{"listFiles", "readFiles"},
			Buckets: []AllowedBucket{{ID: "b1", Name: "photos"}}, NamePrefix: "cats/"}, 100000000, time.Time{}, "https://s3.us-west-004.backblazeb2.com"},
		{"v2 master with minimumPartSize", v2MasterBody, Allowed{Capabilities: []string{"listBuckets", "listFiles"}}, 100000000, time.Time{}, ""},
		{"v2 key of a deleted bucket", v2DeletedBucketBody, Allowed{Capabilities: []string{"listFiles"},
			Buckets: []AllowedBucket{{ID: "b9"}}}, 0, time.Time{}, ""},
		{"v3 single bucket", v3Body, Allowed{Capabilities: []string{"listFiles"},
			Buckets: []AllowedBucket{{ID: "b1", Name: "photos"}}}, 100000000, time.UnixMilli(1893456000000), "https://s3"},
		{"v4 multi-bucket", v4Body, Allowed{Capabilities: []string{"listFiles"},
			Buckets: []AllowedBucket{{ID: "b1", Name: "photos"}, {ID: "b2"}}, NamePrefix: "logs/"}, 100000000, time.Time{}, "https://s3"},
		{"v4 master", v4MasterBody, Allowed{Capabilities: []string{"listFiles", "listBuckets"}}, 0, time.Time{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseSession([]byte(tt.body), "vX", now, 24*time.Hour, time.Hour)
			require.NoError(t, err)
			assert.Equal(t, "acc1", s.AccountID)
			assert.NotEmpty(t, s.AuthorizationToken.Reveal())
			assert.NotEmpty(t, s.APIURL)
			assert.NotEmpty(t, s.DownloadURL)
			assert.Equal(t, tt.wantS3, s.S3APIURL)
			assert.Equal(t, tt.wantAllowed, s.Allowed)
			assert.Equal(t, tt.wantPart, s.RecommendedPartSize)
			assert.True(t, tt.wantKeyExp.Equal(s.KeyExpiresAt), "key expiry %v", s.KeyExpiresAt)
			assert.Equal(t, now.Add(23*time.Hour), s.RefreshAt)
		})
	}
}

func TestParseSessionRefreshesBeforeKeyExpiry(t *testing.T) {
	t.Parallel()
	now := time.UnixMilli(1893456000000).Add(-time.Hour)
	s, err := parseSession([]byte(v3Body), "v3", now, 24*time.Hour, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, time.UnixMilli(1893456000000), s.RefreshAt)
}

func TestParseSessionRejectsIncompleteBodies(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"not json":      `<html>`,
		"no account":    `{"authorizationToken":"t","apiUrl":"https://a"}`,
		"no token":      `{"accountId":"a","apiUrl":"https://a"}`,
		"v3 read as v2": `{"accountId":"a","authorizationToken":"t","apiInfo":{}}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseSession([]byte(body), "v2", time.Now(), 24*time.Hour, time.Hour)
			require.Error(t, err)
			assert.NotContains(t, err.Error(), `"t"`)
		})
	}
}

// TestSecretsNeverPrint formats every type that holds a secret, every way.
func TestSecretsNeverPrint(t *testing.T) {
	t.Parallel()
	const key, token = "K005-super-secret-key", "4_tok-super-secret-token"
	s, err := parseSession([]byte(strings.Replace(v2Body, "tok-SECRET", token, 1)), "v2", time.Now(), 24*time.Hour, time.Hour)
	require.NoError(t, err)
	c, err := New(Config{KeyID: "kid", Key: Secret(key), RealmURL: "http://127.0.0.1:1"})
	require.NoError(t, err)

	var logs strings.Builder
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	logger.Info("x", "session", s, "token", s.AuthorizationToken, "key", Secret(key), "client", c)
	js, err := json.Marshal(s)
	require.NoError(t, err)

	values := []any{s, *s, s.AuthorizationToken, Secret(key), c, c.cfg, s.Allowed}
	var out strings.Builder
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
	}
	out.WriteString(logs.String())
	out.Write(js)
	assert.NotContains(t, out.String(), key)
	assert.NotContains(t, out.String(), token)
	assert.Contains(t, out.String(), redacted)
	assert.Equal(t, token, s.AuthorizationToken.Reveal())
}
