package handlers_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/handlers"
	"github.com/b2jet/b2jet/schema"
)

func TestAuthorizeCachesAndForces(t *testing.T) {
	t.Parallel()
	f := newFixture(t, handlers.BreakerSettings{})
	ctx := context.Background()
	for _, codec := range []schema.Codec{schema.JSON, schema.Msgpack} {
		t.Run(codec.ContentType(), func(t *testing.T) {
			w := newRecorder()
			require.NoError(t, f.set.Authorize.Handle(ctx, message(t, schema.OpAuthorize, "", codec, map[string]any{}), w))
			require.NoError(t, f.set.Authorize.Handle(ctx, message(t, schema.OpAuthorize, "", codec, map[string]any{"id": "mine"}), w))
			replies := decodeReplies[schema.AuthorizeResult](t, w)
			require.Len(t, replies, 2)
			for _, rep := range w.all() {
				assert.Equal(t, codec.ContentType(), rep.Header.Get(schema.HeaderContentType), "the reply uses the request's encoding")
				assert.Equal(t, schema.StatusOK, rep.Header.Get(schema.HeaderStatus))
			}
			res := replies[1]
			assert.Equal(t, "mine", res.ID)
			assert.True(t, res.OK)
			assert.Equal(t, schema.OpAuthorize, res.Op)
			assert.Equal(t, 1, res.Attempt)
			assert.Equal(t, f.fake.AccountID(), res.Result.AccountID)
			assert.NotEmpty(t, res.Result.AuthorizationToken)
			assert.Equal(t, f.fake.URL, res.Result.APIURL)
			assert.NotEmpty(t, res.Result.DownloadURL)
			assert.NotEmpty(t, res.Result.ExpiresAt)
			assert.True(t, res.Result.Cached)
			assert.Contains(t, res.Result.Allowed.Capabilities, "listFiles")
		})
	}
	assert.Equal(t, 1, f.fake.Calls(b2test.EndpointAuthorize))

	w := newRecorder()
	require.NoError(t, f.set.Authorize.Handle(ctx, message(t, schema.OpAuthorize, "", schema.JSON, map[string]any{"force": true}), w))
	forced := decodeReplies[schema.AuthorizeResult](t, w)[0]
	assert.False(t, forced.Result.Cached)
	assert.Equal(t, 2, f.fake.Calls(b2test.EndpointAuthorize))
}

func TestAuthorizeReportsAllowances(t *testing.T) {
	t.Parallel()
	f := newFixture(t, handlers.BreakerSettings{})
	one := f.fake.CreateBucket("one-bucket")
	two := f.fake.CreateBucket("two-bucket")
	f.addAccount(t, "single", b2test.Key{ID: "k1", Secret: "s1", Buckets: []string{"one-bucket"}, NamePrefix: "p/"}, handlers.BreakerSettings{})
	f.addAccount(t, "multi", b2test.Key{ID: "k2", Secret: "s2", Buckets: []string{"one-bucket", "two-bucket"}, MultiBucket: true}, handlers.BreakerSettings{})
	ctx := context.Background()

	w := newRecorder()
	require.NoError(t, f.set.Authorize.Handle(ctx, message(t, schema.OpAuthorize, "single", schema.JSON, map[string]any{}), w))
	a := decodeReplies[schema.AuthorizeResult](t, w)[0].Result.Allowed
	assert.Equal(t, one, a.BucketID)
	assert.Equal(t, "one-bucket", a.BucketName)
	assert.Equal(t, "p/", a.NamePrefix)

	w = newRecorder()
	require.NoError(t, f.set.Authorize.Handle(ctx, message(t, schema.OpAuthorize, "multi", schema.JSON, map[string]any{}), w))
	a = decodeReplies[schema.AuthorizeResult](t, w)[0].Result.Allowed
	assert.ElementsMatch(t, []schema.AllowedBucket{{ID: one, Name: "one-bucket"}, {ID: two, Name: "two-bucket"}}, a.Buckets)
}

func TestAuthorizeFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(t, handlers.BreakerSettings{})
	f.addAccount(t, "wrong", b2test.Key{ID: "wk", Secret: "ws"}, handlers.BreakerSettings{})
	f.fake.AddKey(b2test.Key{ID: "wk", Secret: "other-secret"}) // the worker's secret is now wrong
	ctx := context.Background()
	tests := []struct {
		name      string
		msg       *consumer.Message
		permanent bool
		code      string
	}{
		{"unknown account", message(t, schema.OpAuthorize, "nobody", schema.JSON, map[string]any{}), true, schema.CodeUnknownAccount},
		{"refused key", message(t, schema.OpAuthorize, "wrong", schema.JSON, map[string]any{}), true, schema.CodeUnauthorized},
		{"bad field", message(t, schema.OpAuthorize, "", schema.JSON, map[string]any{"force": "yes"}), true, schema.CodeInvalidRequest},
		{"past deadline", message(t, schema.OpAuthorize, "", schema.JSON, map[string]any{"deadline": "2001-01-01T00:00:00Z"}), true, schema.CodeDeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newRecorder()
			err := f.set.Authorize.Handle(ctx, tt.msg, w)
			require.Error(t, err)
			assert.Equal(t, tt.permanent, consumer.IsPermanent(err))
			assert.Equal(t, tt.code, handlers.ContractErrorOf(err).Code)
			assert.Empty(t, w.all(), "Handle sends no error reply: the consumer has it written")
		})
	}
}

// A cached session's reply is built around its result encoded once: it must be, byte for byte,
// the codec's encoding of the whole reply, as every reply was before, whatever the request's
// id, attempt and encoding; and a new session gets its own result.
func TestAuthorizeCachedReplyIsTheWholeReplyEncoded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, handlers.BreakerSettings{})
	ctx := context.Background()
	check := func(t *testing.T, codec schema.Codec, rep consumer.Reply) schema.Reply[schema.AuthorizeResult] {
		t.Helper()
		var env schema.Reply[schema.AuthorizeResult]
		require.NoError(t, codec.Unmarshal(rep.Data, &env))
		whole, err := codec.Marshal(env)
		require.NoError(t, err)
		require.Equal(t, whole, rep.Data, "%s: the reply is the codec's encoding of its values", codec.ContentType())
		s := f.clients["default"].Cached()
		require.NotNil(t, s)
		assert.True(t, env.OK)
		assert.Equal(t, schema.OpAuthorize, env.Op)
		assert.Equal(t, s.AuthorizationToken.Reveal(), env.Result.AuthorizationToken)
		assert.Equal(t, s.Allowed.Capabilities, env.Result.Allowed.Capabilities)
		assert.Equal(t, schema.FormatTime(s.RefreshAt), env.Result.ExpiresAt)
		return env
	}
	var byCodec []schema.Reply[schema.AuthorizeResult]
	for _, codec := range []schema.Codec{schema.JSON, schema.Msgpack} {
		for i, id := range []string{"", "mine", `quo"te`, "日本", strings.Repeat("x", 40)} {
			m := message(t, schema.OpAuthorize, "", codec, map[string]any{"id": id})
			m.Attempt = 1 + i*60 // 1 to 241: msgpack's int sizes
			w := newRecorder()
			require.NoError(t, f.set.Authorize.Handle(ctx, m, w))
			env := check(t, codec, w.all()[0])
			assert.Equal(t, m.Attempt, env.Attempt)
			if id == "" {
				assert.Equal(t, m.RequestID, env.ID, "the id from the headers")
			} else {
				assert.Equal(t, id, env.ID)
			}
			if i > 0 || codec == schema.Msgpack {
				assert.True(t, env.Result.Cached)
			}
			if i == 1 {
				byCodec = append(byCodec, env)
			}
		}
	}
	// Decoded, both encodings say the same.
	require.Len(t, byCodec, 2)
	byCodec[0].DurationMs, byCodec[1].DurationMs = 0, 0
	assert.Equal(t, byCodec[0], byCodec[1])

	// A forced authorization replaces the session: the next cached replies carry the new token.
	before := f.clients["default"].Cached().AuthorizationToken.Reveal()
	w := newRecorder()
	require.NoError(t, f.set.Authorize.Handle(ctx, message(t, schema.OpAuthorize, "", schema.JSON, map[string]any{"force": true}), w))
	require.NotEqual(t, before, f.clients["default"].Cached().AuthorizationToken.Reveal(), "the fake issues a new token")
	for _, codec := range []schema.Codec{schema.JSON, schema.Msgpack} {
		w := newRecorder()
		require.NoError(t, f.set.Authorize.Handle(ctx, message(t, schema.OpAuthorize, "", codec, map[string]any{}), w))
		assert.True(t, check(t, codec, w.all()[0]).Result.Cached)
	}
}

// BenchmarkAuthorizeCached is the handler's work for a request the cached session answers.
func BenchmarkAuthorizeCached(b *testing.B) {
	for _, codec := range []schema.Codec{schema.JSON, schema.Msgpack} {
		b.Run(codec.ContentType(), func(b *testing.B) {
			f := newFixture(b, handlers.BreakerSettings{})
			ctx := context.Background()
			m := message(b, schema.OpAuthorize, "", codec, map[string]any{})
			w := newRecorder()
			require.NoError(b, f.set.Authorize.Handle(ctx, m, w))
			b.ReportAllocs()
			for b.Loop() {
				w.replies = w.replies[:0]
				if err := f.set.Authorize.Handle(ctx, m, w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
