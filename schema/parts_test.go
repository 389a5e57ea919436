package schema

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPartitionFiles(t *testing.T) {
	files := make([]File, 10)
	for i := range files {
		files[i] = File{FileName: fmt.Sprintf("f%02d", i), Action: "upload"}
	}
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			one, err := cc.codec.Marshal(files[0])
			require.NoError(t, err)
			per, fixed := len(one), 5
			if cc.codec == JSON {
				per, fixed = len(one)+1, 0
			}
			tests := []struct {
				name     string
				files    []File
				maxBytes int
				sizes    []int
			}{
				{"nil files give one empty chunk", nil, 100, []int{0}},
				{"empty files give one empty chunk", []File{}, 0, []int{0}},
				{"all fit", files, fixed + 10*per, []int{10}},
				{"one byte short", files, fixed + 10*per - 1, []int{9, 1}},
				{"three per chunk", files, fixed + 3*per, []int{3, 3, 3, 1}},
				{"one per chunk", files, fixed + per, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					chunks, err := PartitionFiles(cc.codec, tt.files, tt.maxBytes)
					require.NoError(t, err)
					var sizes []int
					var joined []File
					for _, c := range chunks {
						sizes = append(sizes, len(c))
						joined = append(joined, c...)
					}
					assert.Equal(t, tt.sizes, sizes)
					assert.Equal(t, len(tt.files), len(joined))
					for i := range joined {
						assert.Equal(t, tt.files[i], joined[i], "order kept")
					}
				})
			}
			_, err = PartitionFiles(cc.codec, files, fixed+per-1)
			require.ErrorIs(t, err, ErrFileTooLarge)
			assert.Contains(t, err.Error(), `"f00"`)
		})
	}
}

func TestPartitionFilesChunksDoNotAlias(t *testing.T) {
	files := []File{{FileName: "a"}, {FileName: "b"}}
	chunks, err := PartitionFiles(JSON, files, 100)
	require.NoError(t, err)
	require.Len(t, chunks, 2)
	chunks[0] = append(chunks[0], File{FileName: "x"})
	assert.Equal(t, "b", files[1].FileName, "appending to a chunk does not overwrite the next file")
}

func TestEnvelopeOverhead(t *testing.T) {
	env := Reply[ListResult]{ID: "r", Op: OpListFileNames, OK: true,
		Result: &ListResult{BucketID: "b", Files: sampleFiles()}}
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			n, err := EnvelopeOverhead(cc.codec, env)
			require.NoError(t, err)
			empty := env
			empty.Result = &ListResult{BucketID: "b"}
			b, err := EncodeListPart(cc.codec, empty)
			require.NoError(t, err)
			assert.Equal(t, len(b), n)
			assert.Len(t, env.Result.Files, 3, "env is not modified")

			n, err = EnvelopeOverhead(cc.codec, Reply[ListResult]{})
			require.NoError(t, err)
			b, err = cc.codec.Marshal(Reply[ListResult]{Result: &ListResult{}})
			require.NoError(t, err)
			assert.Equal(t, len(b), n, "a nil result counts as an empty one")
		})
	}
}

func randString(r *rand.Rand, maxLen int) string {
	const alphabet = "abcXYZ019-_./ <>&\"\\é日\x7f"
	runes := []rune(alphabet)
	n := r.IntN(maxLen + 1)
	var b strings.Builder
	for range n {
		if r.IntN(50) == 0 {
			b.WriteByte(byte(r.IntN(32))) // control characters expand in JSON
			continue
		}
		b.WriteRune(runes[r.IntN(len(runes))])
	}
	return b.String()
}

func randFile(r *rand.Rand) File {
	f := File{FileName: randString(r, 200), Action: []string{"upload", "hide", "folder", "start"}[r.IntN(4)]}
	if r.IntN(2) == 0 {
		f.FileID = randString(r, 100)
		f.ContentLength = r.Int64N(math.MaxInt64)
		f.ContentType = randString(r, 30)
		f.ContentSha1 = strings.Repeat("a", 40)
		f.UploadTimestamp = r.Int64()
	}
	if r.IntN(3) == 0 {
		f.ContentMd5 = strings.Repeat("b", 32)
		f.FileInfo = map[string]string{}
		for range r.IntN(5) {
			f.FileInfo[randString(r, 20)] = randString(r, 50)
		}
	}
	return f
}

// TestPartitionFilesProperty: a part built from a chunk of PartitionFiles(limit − overhead −
// EnvelopeMargin) encodes to at most limit bytes, even after the fields EnvelopeMargin covers
// change to their largest values.
func TestPartitionFilesProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			skipped, multi := 0, 0
			for iter := range 300 {
				files := make([]File, r.IntN(150))
				for i := range files {
					files[i] = randFile(r)
				}
				limit := 2000 + r.IntN(30000)
				var next *string
				if r.IntN(2) == 0 {
					next = StringPtr(randString(r, 1024))
				}
				base := Reply[ListResult]{ID: randString(r, 64), Op: OpListFileNames, OK: true, Attempt: 1,
					Result: &ListResult{BucketID: randString(r, 24), NextFileName: next, Part: 1}}
				overhead, err := EnvelopeOverhead(cc.codec, base)
				require.NoError(t, err)
				budget := limit - overhead - EnvelopeMargin
				chunks, err := PartitionFiles(cc.codec, files, budget)
				if err != nil {
					require.ErrorIs(t, err, ErrFileTooLarge)
					skipped++
					continue
				}
				require.NotEmpty(t, chunks)
				total := 0
				for i, chunk := range chunks {
					total += len(chunk)
					env := base
					res := *base.Result
					res.Files = chunk
					res.Part = math.MaxInt64 - i
					env.DurationMs = math.MaxInt64
					env.Attempt = math.MaxInt64
					if i == len(chunks)-1 {
						res.Final = true
						res.Count = IntPtr(math.MinInt64)
						res.Pages = IntPtr(math.MaxInt64)
					}
					env.Result = &res
					b, err := EncodeListPart(cc.codec, env)
					require.NoError(t, err)
					require.LessOrEqual(t, len(b), limit, "iteration %d chunk %d of %d (%d files)", iter, i, len(chunks), len(chunk))
					if i < len(chunks)-1 && iter%5 == 0 {
						// Chunks are greedy: the next file would not have fitted.
						again, err := PartitionFiles(cc.codec, append(chunk[:len(chunk):len(chunk)], chunks[i+1][0]), budget)
						require.NoError(t, err)
						require.Len(t, again, 2)
					}
				}
				require.Equal(t, len(files), total)
				if len(chunks) > 1 {
					multi++
				}
			}
			// The random sets exercise the interesting cases.
			assert.Less(t, skipped, 60, "too many sets with a file over budget")
			assert.Greater(t, multi, 100, "too few sets split into several parts")
			t.Logf("%d sets skipped, %d split", skipped, multi)
		})
	}
}
