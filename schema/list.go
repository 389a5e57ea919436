package schema

import (
	"bytes"
	"encoding/json"

	"github.com/vmihailenco/msgpack/v5"
)

// ListResult is the result of one list_file_names reply message (one part).
type ListResult struct {
	BucketID string `json:"bucketId" msgpack:"bucketId"`
	// Files is encoded as an empty array, never null, when there are none.
	Files []File `json:"files" msgpack:"files"`
	// NextFileName is null when the listing is complete; with allPages, non-null on the final
	// part only when limit stopped the listing.
	NextFileName *string `json:"nextFileName" msgpack:"nextFileName"`
	// Part and Final mirror the B2-Part and B2-Final headers (an extension of the contract).
	Part  int  `json:"part" msgpack:"part"`
	Final bool `json:"final" msgpack:"final"`
	// Count (files sent) and Pages (B2 calls made) are set on the final part of an allPages
	// listing.
	Count *int `json:"count,omitempty" msgpack:"count,omitempty"`
	Pages *int `json:"pages,omitempty" msgpack:"pages,omitempty"`
}

// File is one file version as B2 names its fields.
type File struct {
	FileName string `json:"fileName" msgpack:"fileName"`
	FileID   string `json:"fileId,omitempty" msgpack:"fileId,omitempty"`
	// Action is "upload", "hide", "start" or "folder" (a delimiter roll-up).
	Action        string `json:"action" msgpack:"action"`
	ContentLength int64  `json:"contentLength" msgpack:"contentLength"`
	ContentType   string `json:"contentType,omitempty" msgpack:"contentType,omitempty"`
	ContentSha1   string `json:"contentSha1,omitempty" msgpack:"contentSha1,omitempty"`
	ContentMd5    string `json:"contentMd5,omitempty" msgpack:"contentMd5,omitempty"`
	// UploadTimestamp is B2's, in milliseconds since the Unix epoch.
	UploadTimestamp int64             `json:"uploadTimestamp" msgpack:"uploadTimestamp"`
	FileInfo        map[string]string `json:"fileInfo,omitempty" msgpack:"fileInfo,omitempty"`
}

// listResultFields is ListResult without its methods, for the default encoders.
type listResultFields ListResult

func (r ListResult) withFiles() listResultFields {
	f := listResultFields(r)
	if f.Files == nil {
		f.Files = []File{}
	}
	return f
}

// MarshalJSON encodes files as [] when there are none.
func (r ListResult) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r.withFiles()); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// EncodeMsgpack encodes files as an empty array when there are none.
func (r ListResult) EncodeMsgpack(enc *msgpack.Encoder) error {
	return enc.Encode(r.withFiles())
}

// StringPtr returns a pointer to s, for NextFileName.
func StringPtr(s string) *string { return &s }

// IntPtr returns a pointer to n, for Count and Pages.
func IntPtr(n int) *int { return &n }
