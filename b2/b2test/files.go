package b2test

import (
	"cmp"
	"maps"
	"path"
	"slices"
	"strings"
)

// Defaults for the fields of a File left zero, and for AddFiles.
const (
	// DefaultUploadTimestamp is 2024-01-01T00:00:00Z in milliseconds.
	DefaultUploadTimestamp = 1704067200000
	// DefaultContentType is the content type of names with no known extension.
	DefaultContentType = "application/octet-stream"
	// DefaultSize is the contentLength of files added by AddFiles.
	DefaultSize = 1024
)

// File is a file version as b2_list_file_names reports it. Only Name is
// required.
type File struct {
	Name        string
	Size        int64
	ContentType string // "" => by extension (.csv is text/csv), else DefaultContentType
	SHA1, MD5   string // "" => hex digests of the name, so they are stable per name
	// UploadTimestamp is in milliseconds; 0 means DefaultUploadTimestamp.
	UploadTimestamp int64
	Info            map[string]string // fileInfo; nil => {}
}

// fileRec is one entry of a bucket's index, kept small: a million of them
// must fit comfortably.
type fileRec struct {
	name string
	size int64
	seq  uint64    // number in the fileId; grows with every add
	meta *fileMeta // nil for defaults
}

// fileMeta holds the File fields given to AddFile.
type fileMeta struct {
	contentType, sha1, md5 string
	uploadTimestamp        int64
	info                   [][2]string // sorted by key, as encoding/json orders a map
}

// AddFile adds f to the bucket called bucket, replacing the file of the
// same name (the replacement gets a new fileId). The bucket is created if it
// does not exist.
func (s *Server) AddFile(bucket string, f File) {
	rec := fileRec{name: f.Name, size: f.Size, seq: s.fileSeq.Add(1)}
	if f.ContentType != "" || f.SHA1 != "" || f.MD5 != "" || f.UploadTimestamp != 0 || len(f.Info) > 0 {
		rec.meta = &fileMeta{
			contentType:     f.ContentType,
			sha1:            f.SHA1,
			md5:             f.MD5,
			uploadTimestamp: f.UploadTimestamp,
			info:            sortedPairs(f.Info),
		}
	}
	b := s.bucketByName(bucket)
	b.mu.Lock()
	b.appendLocked(rec)
	b.mu.Unlock()
}

// AddFiles adds files with the given names and default attributes (size
// DefaultSize) to the bucket called bucket, creating the bucket if needed.
// It only appends: the index is sorted once, by the next list call, so
// adding a million names costs little more than building the slice.
func (s *Server) AddFiles(bucket string, names ...string) {
	if len(names) == 0 {
		return
	}
	first := s.fileSeq.Add(uint64(len(names))) - uint64(len(names)) + 1
	b := s.bucketByName(bucket)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.files = slices.Grow(b.files, len(names))
	for i, name := range names {
		b.appendLocked(fileRec{name: name, size: DefaultSize, seq: first + uint64(i)})
	}
}

// FileCount returns how many file names the bucket called bucket holds
// (0 if there is no such bucket).
func (s *Server) FileCount(bucket string) int {
	s.mu.RLock()
	b := s.buckets[bucket]
	s.mu.RUnlock()
	if b == nil {
		return 0
	}
	b.rlockSorted()
	defer b.mu.RUnlock()
	return len(b.files)
}

// appendLocked adds rec; the index stays clean while names arrive in
// strictly increasing order. b.mu must be held for writing.
func (b *bucket) appendLocked(rec fileRec) {
	if n := len(b.files); n > 0 && !b.dirty && b.files[n-1].name >= rec.name {
		b.dirty = true
	}
	b.files = append(b.files, rec)
}

// rlockSorted read-locks b with its index sorted. Release with b.mu.RUnlock.
func (b *bucket) rlockSorted() {
	for {
		b.mu.RLock()
		if !b.dirty {
			return
		}
		b.mu.RUnlock()
		b.mu.Lock()
		if b.dirty {
			b.sortLocked()
		}
		b.mu.Unlock()
	}
}

// sortLocked sorts the index by name in byte order and keeps only the
// latest addition of each name. b.mu must be held for writing.
func (b *bucket) sortLocked() {
	slices.SortFunc(b.files, func(x, y fileRec) int {
		if c := strings.Compare(x.name, y.name); c != 0 {
			return c
		}
		return cmp.Compare(x.seq, y.seq)
	})
	out := b.files[:0]
	for i, f := range b.files {
		if i+1 < len(b.files) && b.files[i+1].name == f.name {
			continue // replaced by a later add
		}
		out = append(out, f)
	}
	clear(b.files[len(out):])
	b.files = out
	b.dirty = false
}

// search returns the index of the first name >= name. b must be read-locked
// and sorted.
func (b *bucket) search(name string) int {
	i, _ := slices.BinarySearchFunc(b.files, name, func(f fileRec, name string) int {
		return strings.Compare(f.name, name)
	})
	return i
}

// sortedPairs returns the entries of m sorted by key.
func sortedPairs(m map[string]string) [][2]string {
	var out [][2]string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, [2]string{k, m[k]})
	}
	return out
}

// contentTypes are the types guessed from a name's extension.
var contentTypes = map[string]string{
	".csv":  "text/csv",
	".json": "application/json",
	".txt":  "text/plain",
	".jpg":  "image/jpeg",
	".png":  "image/png",
	".gz":   "application/gzip",
}

func contentTypeOf(name string) string {
	if t, ok := contentTypes[strings.ToLower(path.Ext(name))]; ok {
		return t
	}
	return DefaultContentType
}
