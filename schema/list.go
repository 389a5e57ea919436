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
	// NextFileName is written on the final part only: null when the listing is complete, else
	// where it resumes (B2's, or with allPages where limit stopped it).
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
	UploadTimestamp int64 `json:"uploadTimestamp" msgpack:"uploadTimestamp"`
	// FileInfo is always written, {} when empty, as B2 does.
	FileInfo map[string]string `json:"fileInfo" msgpack:"fileInfo"`
}

// listResultFields is ListResult without its methods, for the default encoders: the final part,
// whose nextFileName is always present (null when the listing is complete).
type listResultFields ListResult

// listPartFields is a non-final part: nextFileName is left out, since only the final part says
// where the listing stands (a null there would claim the listing is complete).
type listPartFields struct {
	BucketID     string  `json:"bucketId" msgpack:"bucketId"`
	Files        []File  `json:"files" msgpack:"files"`
	NextFileName *string `json:"nextFileName,omitempty" msgpack:"nextFileName,omitempty"`
	Part         int     `json:"part" msgpack:"part"`
	Final        bool    `json:"final" msgpack:"final"`
	Count        *int    `json:"count,omitempty" msgpack:"count,omitempty"`
	Pages        *int    `json:"pages,omitempty" msgpack:"pages,omitempty"`
}

// wire is what the encoders write: files as [] when there are none, and nextFileName only on
// the final part.
func (r ListResult) wire() any {
	if r.Files == nil {
		r.Files = []File{}
	}
	if r.Final {
		return listResultFields(r)
	}
	return listPartFields(r)
}

// MarshalJSON encodes files as [] when there are none, and nextFileName on the final part only.
func (r ListResult) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r.wire()); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// EncodeMsgpack is MarshalJSON's msgpack twin.
func (r ListResult) EncodeMsgpack(enc *msgpack.Encoder) error {
	return enc.Encode(r.wire())
}

// StringPtr returns a pointer to s, for NextFileName.
func StringPtr(s string) *string { return &s }

// IntPtr returns a pointer to n, for Count and Pages.
func IntPtr(n int) *int { return &n }
