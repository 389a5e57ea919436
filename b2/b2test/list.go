package b2test

import (
	"net/http"
	"strconv"
	"strings"
)

// listFileNames serves b2_list_file_names for a request parsed without error.
func (s *Server) listFileNames(w http.ResponseWriter, r *http.Request, req *listRequest) *apiError {
	key, err := s.checkToken(r)
	if err != nil {
		return err
	}
	switch {
	case !key.can("listFiles"):
		return unauthorized("application key lacks the listFiles capability")
	case !key.allowsBucket(req.bucketID):
		return unauthorized("application key is not allowed to list this bucket")
	case !strings.HasPrefix(req.prefix, key.key.NamePrefix):
		return unauthorized("application key is restricted to names starting with " +
			strconv.Quote(key.key.NamePrefix) + "; prefix must start with it")
	}
	b := s.bucketByID(req.bucketID)
	if b == nil {
		return newError(http.StatusBadRequest, CodeInvalidBucketID, "invalid bucketId: "+req.bucketID)
	}
	buf := getBuf()
	defer putBuf(buf)
	*buf = s.appendPage(*buf, b, req)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(*buf)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(*buf) // a failed write means the client went away
	return nil
}

// appendPage appends the answer {"files":[…],"nextFileName":…} to out in
// O(log n + page): a binary search for the start, then one more per folder
// to skip past the names under it.
func (s *Server) appendPage(out []byte, b *bucket, req *listRequest) []byte {
	b.rlockSorted()
	defer b.mu.RUnlock()

	fileHead := entryHead(s.accountID, "upload", b.id)
	folderHead := entryHead(s.accountID, "folder", b.id)
	out = append(out, `{"files":[`...)

	start := max(req.startFileName, req.prefix) // every name with the prefix is >= it
	i, n := b.search(start), len(b.files)
	// last is the continuation key: the successor of the last folder, or
	// the last file name (" " is appended only when it is needed).
	count, last, lastIsFile, canContinue := 0, "", false, false
	for i < n && count < req.maxFileCount {
		f := &b.files[i]
		if !strings.HasPrefix(f.name, req.prefix) {
			break
		}
		if count > 0 {
			out = append(out, ',')
		}
		count++
		if req.delimiter != "" {
			if j := strings.Index(f.name[len(req.prefix):], req.delimiter); j >= 0 {
				folder := f.name[:len(req.prefix)+j+len(req.delimiter)]
				out = appendFolder(out, folderHead, folder)
				last, canContinue = prefixSuccessor(folder)
				lastIsFile = false
				if canContinue {
					i = b.search(last)
				} else {
					i = n
				}
				continue
			}
		}
		out = appendFile(out, fileHead, b.id, f)
		last, lastIsFile, canContinue = f.name, true, true
		i++
	}

	out = append(out, `],"nextFileName":`...)
	more := i < n && strings.HasPrefix(b.files[i].name, req.prefix)
	if count == req.maxFileCount && canContinue && (more || s.fullPageContinuation.Load()) {
		if lastIsFile {
			last += " " // the smallest legal name after it
		}
		out = appendString(out, last)
	} else {
		out = append(out, "null"...)
	}
	return append(out, "}\n"...)
}

// prefixSuccessor returns the smallest string greater than every string
// that starts with p: for a folder "a/b/" and delimiter "/" that is "a/b0".
// It reports false if there is none (p is all 0xff bytes). For a delimiter
// whose last byte is 0xbf the result is not valid UTF-8 and would reach the
// client as U+FFFD; ASCII delimiters such as "/" are not affected.
func prefixSuccessor(p string) (string, bool) {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] != 0xff {
			return p[:i] + string([]byte{p[i] + 1}), true
		}
	}
	return "", false
}
