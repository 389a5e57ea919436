package schema

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The encoder's parts are the codec's own encoding of the same replies, split where
// PartitionFiles splits.
func TestListPartEncoderIsTheCodecsEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			e, err := NewListPartEncoder(cc.codec)
			require.NoError(t, err)
			for range 300 {
				files := make([]File, r.IntN(120))
				for i := range files {
					files[i] = randFile(r)
				}
				if r.IntN(10) == 0 {
					for i := range files {
						files[i].FileInfo = nil // encoded as null
					}
				}
				budget := 1000 + r.IntN(20000)
				want, err := PartitionFiles(cc.codec, files, budget)
				if err != nil {
					require.ErrorIs(t, err, ErrFileTooLarge)
					continue
				}
				var got [][]File
				start := 0
				part := func(end int, last bool) {
					env := Reply[ListResult]{ID: randString(r, 40), Op: OpListFileNames, OK: true,
						Attempt: r.IntN(10), DurationMs: r.Int64N(math.MaxInt64)}
					res := &ListResult{BucketID: randString(r, 24), Part: r.IntN(math.MaxInt32), Final: last && r.IntN(2) == 0}
					if res.Final || r.IntN(5) == 0 {
						if r.IntN(2) == 0 {
							res.NextFileName = StringPtr(randString(r, 100))
						}
						if r.IntN(2) == 0 {
							res.Count, res.Pages = IntPtr(r.IntN(1<<40)), IntPtr(r.IntN(1000))
						}
					}
					env.Result = res
					require.Equal(t, end-start, e.Len())
					b, err := e.Encode(env)
					require.NoError(t, err)
					res.Files = files[start:end]
					wantBytes, err := cc.codec.Marshal(env)
					require.NoError(t, err)
					require.Equal(t, wantBytes, b)
					got = append(got, files[start:end])
					start = end
				}
				for i := range files {
					fits, err := e.Add(&files[i], budget)
					require.NoError(t, err)
					if !fits {
						part(i, false)
					}
				}
				part(len(files), true)
				require.Equal(t, len(want), len(got))
				for i := range want {
					assert.Equal(t, len(want[i]), len(got[i]), "part %d", i)
				}
			}
		})
	}
}

func TestListPartEncoderRefusesATooLargeFile(t *testing.T) {
	for _, cc := range codecs {
		e, err := NewListPartEncoder(cc.codec)
		require.NoError(t, err)
		small, big := File{FileName: "a", Action: "upload"}, File{FileName: string(make([]byte, 200)), Action: "upload"}
		fits, err := e.Add(&small, 100)
		require.NoError(t, err)
		require.True(t, fits)
		_, err = e.Add(&big, 100)
		require.ErrorIs(t, err, ErrFileTooLarge, cc.name)
		b, err := e.Encode(Reply[ListResult]{ID: "x", Op: OpListFileNames, OK: true, Result: &ListResult{Final: true}})
		require.NoError(t, err)
		want, err := cc.codec.Marshal(Reply[ListResult]{ID: "x", Op: OpListFileNames, OK: true,
			Result: &ListResult{Files: []File{small}, Final: true}})
		require.NoError(t, err)
		assert.Equal(t, want, b, "the refused file is not in the part")
	}
	_, err := NewListPartEncoder(nil)
	require.Error(t, err)
}
