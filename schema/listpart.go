package schema

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"
)

// ListPartEncoder builds list_file_names reply parts from files added one at a time, each
// encoded once, straight into the part's bytes: the same bytes as Codec.Marshal of the
// Reply[ListResult], and the same split as PartitionFiles. A listing of 10,000-name pages
// spent most of its CPU encoding every file twice (once to size the parts, once in the part)
// through reflection and re-validating the result's own MarshalJSON output, and growing the
// buffers of a 1 MB part copied it several times over. It is not safe for concurrent use.
type ListPartEncoder struct {
	json bool
	// files holds the encoded files of the part being built (JSON: separated by commas), then
	// the file added last when it did not fit (from pending on).
	files   []byte
	pending int // start of a file that did not fit; -1 when there is none
	n       int // files in the part
	size    int // the part's files as PartitionFiles counts them
	fixed   int // PartitionFiles' fixed cost of the files array
	perFile int // and its cost per file beyond the file's bytes
	scratch bytes.Buffer
	enc     *msgpack.Encoder
}

// NewListPartEncoder returns an encoder for c, JSON or Msgpack.
func NewListPartEncoder(c Codec) (*ListPartEncoder, error) {
	e := &ListPartEncoder{pending: -1}
	switch c.(type) {
	case jsonCodec:
		e.json, e.perFile = true, 1
	case msgpackCodec:
		e.fixed = 5
		e.enc = msgpack.NewEncoder(&e.scratch)
		configureEncoder(e.enc)
	default:
		return nil, fmt.Errorf("schema: no list part encoder for codec %T", c)
	}
	e.size = e.fixed
	return e, nil
}

// Len is the number of files in the part being built.
func (e *ListPartEncoder) Len() int { return e.n }

// Add encodes f as the part's next file and reports whether the part's files still add at most
// maxBytes to its envelope (as PartitionFiles counts them). When they would not, the part is
// full without f: Encode it, and f is the first file of the next part. A file that does not fit
// in maxBytes alone is an error wrapping ErrFileTooLarge.
func (e *ListPartEncoder) Add(f *File, maxBytes int) (fits bool, err error) {
	if e.pending >= 0 {
		return false, fmt.Errorf("schema: a list part is full: encode it before adding more")
	}
	start := len(e.files)
	if e.json && e.n > 0 {
		e.files = append(e.files, ',')
	}
	fileStart := len(e.files)
	if e.json {
		e.files = appendJSONFile(e.files, f)
	} else {
		e.scratch.Reset()
		if err := e.enc.Encode(f); err != nil {
			e.files = e.files[:start]
			return false, fmt.Errorf("schema: encoding file %q: %w", f.FileName, err)
		}
		e.files = append(e.files, e.scratch.Bytes()...)
	}
	cost := len(e.files) - fileStart + e.perFile
	if e.fixed+cost > maxBytes {
		e.files = e.files[:start]
		return false, fmt.Errorf("%w: %q encodes to %d bytes, %d allowed", ErrFileTooLarge, f.FileName, e.fixed+cost, maxBytes)
	}
	if e.n > 0 && e.size+cost > maxBytes {
		e.pending = fileStart
		return false, nil
	}
	e.n++
	e.size += cost
	return true, nil
}

// Encode returns the encoding of env with the part's files as its result's files (env.Result's
// own Files are ignored), a slice of its own, and starts the next part: empty, or with the file
// that did not fit. env is a successful reply (OK, no Error) with a Result.
func (e *ListPartEncoder) Encode(env Reply[ListResult]) ([]byte, error) {
	if !env.OK || env.Error != nil || env.Result == nil {
		return nil, fmt.Errorf("schema: a list part is a successful reply with a result")
	}
	end := len(e.files)
	if e.pending >= 0 {
		end = e.pending
		if e.json && e.n > 0 {
			end-- // its comma
		}
	}
	var out []byte
	if e.json {
		out = e.jsonReply(env, e.files[:end])
	} else {
		out = e.msgpackReply(env, e.files[:end])
	}
	e.n, e.size = 0, e.fixed
	if e.pending >= 0 {
		cost := len(e.files) - e.pending + e.perFile
		e.files = append(e.files[:0], e.files[e.pending:]...)
		e.pending, e.n, e.size = -1, 1, e.fixed+cost
	} else {
		e.files = e.files[:0]
	}
	return out, nil
}

func (e *ListPartEncoder) jsonReply(env Reply[ListResult], files []byte) []byte {
	r := env.Result
	b := make([]byte, 0, len(files)+len(env.ID)+len(env.Op)+len(r.BucketID)+256)
	return appendJSONOK(b, env.ID, env.Op, env.Attempt, env.DurationMs, func(b []byte) []byte {
		b = append(b, `{"bucketId":`...)
		b = appendJSONString(b, r.BucketID)
		b = append(b, `,"files":[`...)
		b = append(b, files...)
		b = append(b, ']')
		if r.Final || r.NextFileName != nil {
			b = append(b, `,"nextFileName":`...)
			if r.NextFileName == nil {
				b = append(b, "null"...)
			} else {
				b = appendJSONString(b, *r.NextFileName)
			}
		}
		b = append(b, `,"part":`...)
		b = strconv.AppendInt(b, int64(r.Part), 10)
		b = append(b, `,"final":`...)
		b = strconv.AppendBool(b, r.Final)
		if r.Count != nil {
			b = append(b, `,"count":`...)
			b = strconv.AppendInt(b, int64(*r.Count), 10)
		}
		if r.Pages != nil {
			b = append(b, `,"pages":`...)
			b = strconv.AppendInt(b, int64(*r.Pages), 10)
		}
		return append(b, '}')
	})
}

// msgpackReply writes what the msgpack encoder writes for Reply and ListResult's wire form:
// maps of their non-omitted fields, in field order.
func (e *ListPartEncoder) msgpackReply(env Reply[ListResult], files []byte) []byte {
	r := env.Result
	size := len(files) + len(r.BucketID) + 208
	return msgpackOK(env.ID, env.Op, env.Attempt, env.DurationMs, size, func(enc *msgpack.Encoder, buf *bytes.Buffer) {
		next := r.Final || r.NextFileName != nil
		fields := 4
		for _, present := range []bool{next, r.Count != nil, r.Pages != nil} {
			if present {
				fields++
			}
		}
		_ = enc.EncodeMapLen(fields)
		_ = enc.EncodeString("bucketId")
		_ = enc.EncodeString(r.BucketID)
		_ = enc.EncodeString("files")
		_ = enc.EncodeArrayLen(e.n)
		_, _ = buf.Write(files)
		if next {
			_ = enc.EncodeString("nextFileName")
			if r.NextFileName == nil {
				_ = enc.EncodeNil()
			} else {
				_ = enc.EncodeString(*r.NextFileName)
			}
		}
		_ = enc.EncodeString("part")
		_ = enc.EncodeInt(int64(r.Part))
		_ = enc.EncodeString("final")
		_ = enc.EncodeBool(r.Final)
		if r.Count != nil {
			_ = enc.EncodeString("count")
			_ = enc.EncodeInt(int64(*r.Count))
		}
		if r.Pages != nil {
			_ = enc.EncodeString("pages")
			_ = enc.EncodeInt(int64(*r.Pages))
		}
	})
}

// appendJSONFile appends f as the JSON codec encodes a File.
func appendJSONFile(b []byte, f *File) []byte {
	b = append(b, `{"fileName":`...)
	b = appendJSONString(b, f.FileName)
	if f.FileID != "" {
		b = append(b, `,"fileId":`...)
		b = appendJSONString(b, f.FileID)
	}
	b = append(b, `,"action":`...)
	b = appendJSONString(b, f.Action)
	b = append(b, `,"contentLength":`...)
	b = strconv.AppendInt(b, f.ContentLength, 10)
	if f.ContentType != "" {
		b = append(b, `,"contentType":`...)
		b = appendJSONString(b, f.ContentType)
	}
	if f.ContentSha1 != "" {
		b = append(b, `,"contentSha1":`...)
		b = appendJSONString(b, f.ContentSha1)
	}
	if f.ContentMd5 != "" {
		b = append(b, `,"contentMd5":`...)
		b = appendJSONString(b, f.ContentMd5)
	}
	b = append(b, `,"uploadTimestamp":`...)
	b = strconv.AppendInt(b, f.UploadTimestamp, 10)
	b = append(b, `,"fileInfo":`...)
	switch {
	case f.FileInfo == nil:
		b = append(b, "null"...)
	case len(f.FileInfo) == 1:
		for k, v := range f.FileInfo {
			b = appendJSONPair(append(b, '{'), k, v)
		}
		b = append(b, '}')
	default:
		keys := make([]string, 0, len(f.FileInfo))
		for k := range f.FileInfo {
			keys = append(keys, k)
		}
		slices.Sort(keys) // encoding/json sorts map keys
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONPair(b, k, f.FileInfo[k])
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func appendJSONPair(b []byte, k, v string) []byte {
	b = appendJSONString(b, k)
	b = append(b, ':')
	return appendJSONString(b, v)
}
