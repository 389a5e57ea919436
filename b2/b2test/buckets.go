package b2test

import (
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// bucketType is the type of every bucket of the fake.
const bucketType = "allPrivate"

// bucket is one bucket and its file index.
type bucket struct {
	id, name string // immutable

	mu    sync.RWMutex
	files []fileRec // sorted by name, one per name, unless dirty
	dirty bool      // files were appended since the last sort
}

// CreateBucket creates a bucket and returns its id: 24 lowercase hex
// digits, deterministic for a given fake. If the bucket exists already its
// id is returned.
func (s *Server) CreateBucket(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bucketLocked(name).id
}

// DeleteBucket deletes a bucket and its files; it does nothing if there is
// no such bucket. Later calls with its id answer 400 invalid_bucket_id, and
// a bucket created again under the same name gets a new id.
func (s *Server) DeleteBucket(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.buckets[name]; b != nil {
		delete(s.buckets, name)
		delete(s.byID, b.id)
	}
}

// BucketID returns the id of the bucket called name, if it exists.
func (s *Server) BucketID(name string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if b := s.buckets[name]; b != nil {
		return b.id, true
	}
	return "", false
}

// bucketLocked returns the bucket called name, creating it if needed.
// s.mu must be held for writing.
func (s *Server) bucketLocked(name string) *bucket {
	if b := s.buckets[name]; b != nil {
		return b
	}
	id, ok := s.reserved[name]
	if ok {
		delete(s.reserved, name)
	} else {
		id = s.newBucketIDLocked()
	}
	b := &bucket{id: id, name: name}
	s.buckets[name] = b
	s.byID[id] = b
	return b
}

// bindBucketLocked returns the id a key restricted to bucket name is bound
// to: the bucket's id, or one reserved for when it is created.
func (s *Server) bindBucketLocked(name string) string {
	if b := s.buckets[name]; b != nil {
		return b.id
	}
	if id, ok := s.reserved[name]; ok {
		return id
	}
	id := s.newBucketIDLocked()
	s.reserved[name] = id
	return id
}

func (s *Server) newBucketIDLocked() string {
	s.bucketSeq++
	sum := sha1.Sum([]byte(s.accountID + "/bucket/" + strconv.FormatUint(s.bucketSeq, 10)))
	return hex.EncodeToString(sum[:12])
}

// bucketByName returns the bucket called name, creating it if needed.
func (s *Server) bucketByName(name string) *bucket {
	s.mu.RLock()
	b := s.buckets[name]
	s.mu.RUnlock()
	if b != nil {
		return b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bucketLocked(name)
}

// bucketByID returns the live bucket with id, or nil.
func (s *Server) bucketByID(id string) *bucket {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byID[id]
}

// bucketJSON is a bucket as b2_list_buckets returns it.
type bucketJSON struct {
	AccountID      string            `json:"accountId"`
	BucketID       string            `json:"bucketId"`
	BucketName     string            `json:"bucketName"`
	BucketType     string            `json:"bucketType"`
	BucketInfo     map[string]string `json:"bucketInfo"`
	CORSRules      []any             `json:"corsRules"`
	LifecycleRules []any             `json:"lifecycleRules"`
	Revision       int               `json:"revision"`
	Options        []string          `json:"options"`
}

// knownBucketTypes are the bucketTypes values list_buckets accepts.
var knownBucketTypes = []string{"all", "allPublic", "allPrivate", "snapshot", "shared", "restricted"}

// listBuckets serves b2_list_buckets.
func (s *Server) listBuckets(w http.ResponseWriter, r *http.Request) *apiError {
	key, err := s.checkToken(r)
	if err != nil {
		return err
	}
	req, err := parseListBucketsRequest(r)
	if err != nil {
		return err
	}
	switch {
	case req.accountID == "":
		return badRequest("accountId is required")
	case req.accountID != s.accountID:
		return badRequest("accountId does not match the authorized account")
	}
	if req.typesSet {
		switch {
		case len(req.bucketTypes) == 0:
			return badRequest("bucketTypes must not be empty")
		case len(req.bucketTypes) > 1 && slices.Contains(req.bucketTypes, "all"):
			return badRequest(`bucketTypes "all" cannot be combined with other types`)
		}
		for _, t := range req.bucketTypes {
			if !slices.Contains(knownBucketTypes, t) {
				return badRequest("unknown bucket type: " + t)
			}
		}
	}
	if !key.can("listBuckets") {
		return unauthorized("application key lacks the listBuckets capability")
	}

	s.mu.RLock()
	var list []*bucket
	for _, b := range s.byID {
		if (req.bucketID == "" || b.id == req.bucketID) && (req.bucketName == "" || b.name == req.bucketName) {
			list = append(list, b)
		}
	}
	byName := s.buckets[req.bucketName]
	s.mu.RUnlock()

	if len(key.bucketIDs) > 0 {
		switch {
		case req.bucketID == "" && req.bucketName == "":
			return unauthorized("application key is restricted to a bucket: pass its bucketId or bucketName")
		case req.bucketID != "" && !key.allowsBucket(req.bucketID),
			req.bucketName != "" && (byName == nil || !key.allowsBucket(byName.id)):
			return unauthorized("application key is not allowed to list this bucket")
		}
	}
	if req.typesSet && !slices.Contains(req.bucketTypes, "all") && !slices.Contains(req.bucketTypes, bucketType) {
		list = nil
	}

	slices.SortFunc(list, func(a, b *bucket) int { return strings.Compare(a.name, b.name) })
	out := make([]bucketJSON, 0, len(list))
	for _, b := range list {
		out = append(out, bucketJSON{
			AccountID:      s.accountID,
			BucketID:       b.id,
			BucketName:     b.name,
			BucketType:     bucketType,
			BucketInfo:     map[string]string{},
			CORSRules:      []any{},
			LifecycleRules: []any{},
			Revision:       1,
			Options:        []string{},
		})
	}
	writeJSON(w, http.StatusOK, struct {
		Buckets []bucketJSON `json:"buckets"`
	}{out})
	return nil
}
