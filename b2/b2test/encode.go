package b2test

import (
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"strconv"
	"sync"
	"unicode/utf8"
)

// The list_file_names answer is appended to a byte slice by hand: with
// encoding/json a page of 1,000 files cost ~10 allocations and ~1 KB per
// file, which dominated benchmarks that page through a million names.
// The output is what encoding/json would produce for the same values, but
// without HTML escaping of <, > and &.

// pagePool recycles page buffers.
var pagePool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// maxPooled keeps a rare huge buffer from being held forever.
const maxPooled = 8 << 20

func getBuf() *[]byte { return pagePool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) <= maxPooled {
		*b = (*b)[:0]
		pagePool.Put(b)
	}
}

// Fixed parts of an entry. An entry starts with entryHead(accountID,
// bucketID) and continues with "contentLength".
const (
	fileTail   = `,"fileRetention":{"isClientAuthorizedToRead":true,"value":null},"legalHold":{"isClientAuthorizedToRead":true,"value":null},"replicationStatus":null,"serverSideEncryption":{"mode":"none"},"uploadTimestamp":`
	folderBody = `"contentLength":0,"contentMd5":null,"contentSha1":null,"contentType":null,"fileId":null,"fileInfo":{},"fileName":`
	folderTail = `,"replicationStatus":null,"uploadTimestamp":0}`
)

// entryHead returns `{"accountId":…,"action":"<action>","bucketId":…,`.
func entryHead(accountID, action, bucketID string) []byte {
	b := append([]byte(`{"accountId":`), quote(accountID)...)
	b = append(b, `,"action":"`+action+`","bucketId":`...)
	b = appendString(b, bucketID)
	return append(b, ',')
}

func quote(s string) []byte { return appendString(nil, s) }

// appendFile appends one upload entry; head is entryHead(..., "upload", ...).
func appendFile(b, head []byte, bucketID string, f *fileRec) []byte {
	ct, sha, md, ts := "", "", "", int64(0)
	var info [][2]string
	if m := f.meta; m != nil {
		ct, sha, md, ts, info = m.contentType, m.sha1, m.md5, m.uploadTimestamp, m.info
	}
	b = append(b, head...)
	b = append(b, `"contentLength":`...)
	b = strconv.AppendInt(b, f.size, 10)
	b = append(b, `,"contentMd5":`...)
	if md != "" {
		b = appendString(b, md)
	} else {
		sum := md5.Sum([]byte(f.name))
		b = appendHexString(b, sum[:])
	}
	b = append(b, `,"contentSha1":`...)
	if sha != "" {
		b = appendString(b, sha)
	} else {
		sum := sha1.Sum([]byte(f.name))
		b = appendHexString(b, sum[:])
	}
	b = append(b, `,"contentType":`...)
	if ct == "" {
		ct = contentTypeOf(f.name)
	}
	b = appendString(b, ct)
	b = append(b, `,"fileId":"4_z`...)
	b = append(b, bucketID...) // hex, no escaping needed
	b = append(b, "_f"...)
	b = strconv.AppendUint(b, f.seq, 16)
	b = append(b, `","fileInfo":{`...)
	for i, kv := range info {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, kv[0])
		b = append(b, ':')
		b = appendString(b, kv[1])
	}
	b = append(b, `},"fileName":`...)
	b = appendString(b, f.name)
	b = append(b, fileTail...)
	if ts == 0 {
		ts = DefaultUploadTimestamp
	}
	b = strconv.AppendInt(b, ts, 10)
	return append(b, '}')
}

// appendFolder appends one folder entry; head is entryHead(..., "folder", ...).
func appendFolder(b, head []byte, name string) []byte {
	b = append(b, head...)
	b = append(b, folderBody...)
	b = appendString(b, name)
	return append(b, folderTail...)
}

// appendHexString appends sum as a quoted lowercase hex string.
func appendHexString(b, sum []byte) []byte {
	b = append(b, '"')
	b = hex.AppendEncode(b, sum)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Like encoding/json it escapes
// control characters, U+2028 and U+2029, and turns invalid UTF-8 into
// U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
