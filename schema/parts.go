package schema

import (
	"errors"
	"fmt"
)

// EnvelopeMargin is the number of bytes to keep free, on top of EnvelopeOverhead, for envelope
// fields that change after the files are partitioned: part (up to 19 digits), durationMs (up to
// 19 digits), count and pages (absent to 19 digits each) and final. It covers them in both codecs.
const EnvelopeMargin = 128

// ErrFileTooLarge is returned (wrapped) by PartitionFiles when one file alone exceeds the budget.
var ErrFileTooLarge = errors.New("schema: file entry too large for one reply part")

// EncodeListPart encodes one list_file_names reply part. It is c.Marshal, named for symmetry with
// EnvelopeOverhead.
func EncodeListPart(c Codec, env Reply[ListResult]) ([]byte, error) { return c.Marshal(env) }

// EnvelopeOverhead returns the encoded size of env with its result's files removed (an empty
// files array). With limit the largest payload allowed, PartitionFiles(c, files,
// limit-overhead-EnvelopeMargin) yields chunks whose parts encode to at most limit bytes, as
// long as env's id, op, bucketId, nextFileName and error are those of the parts (the fields that
// EnvelopeMargin covers may change). A nil Result counts as an empty one.
func EnvelopeOverhead(c Codec, env Reply[ListResult]) (int, error) {
	var res ListResult
	if env.Result != nil {
		res = *env.Result
	}
	res.Files = nil
	env.Result = &res
	b, err := c.Marshal(env)
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

// PartitionFiles splits files into consecutive chunks, in order, each of which adds at most
// maxBytes to an envelope encoded with an empty files array. Each file is encoded on its own: in
// JSON a chunk costs the sum of its files' sizes plus one separator byte per file; in msgpack the
// sum plus 5 bytes for the array header. There is always at least one chunk (an empty page gives
// one empty chunk). A file that does not fit in maxBytes alone is an error wrapping
// ErrFileTooLarge.
func PartitionFiles(c Codec, files []File, maxBytes int) ([][]File, error) {
	perFile, fixed := 0, 0
	switch c.ContentType() {
	case ContentTypeJSON:
		perFile = 1
	default:
		fixed = 5
	}
	chunks := make([][]File, 0, 1)
	start, size := 0, fixed
	for i := range files {
		b, err := c.Marshal(files[i])
		if err != nil {
			return nil, fmt.Errorf("schema: encoding file %q: %w", files[i].FileName, err)
		}
		cost := len(b) + perFile
		if fixed+cost > maxBytes {
			return nil, fmt.Errorf("%w: %q encodes to %d bytes, %d allowed",
				ErrFileTooLarge, files[i].FileName, fixed+cost, maxBytes)
		}
		if size+cost > maxBytes {
			chunks = append(chunks, files[start:i:i])
			start, size = i, fixed
		}
		size += cost
	}
	chunks = append(chunks, files[start:len(files):len(files)])
	return chunks, nil
}
