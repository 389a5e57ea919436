package b2test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"
)

// Part sizes b2_authorize_account reports (b2-api.md 1.2).
const (
	RecommendedPartSize     = 100000000
	AbsoluteMinimumPartSize = 5000000
)

// S3APIURL is the s3ApiUrl the fake reports. Nothing serves it; the
// .invalid domain never resolves.
const S3APIURL = "https://s3.us-west-004.b2test.invalid"

// allCapabilities is what a Key with nil Capabilities gets (b2-api.md 1.6).
var allCapabilities = []string{
	"listKeys", "writeKeys", "deleteKeys",
	"listBuckets", "listAllBucketNames", "readBuckets", "writeBuckets", "deleteBuckets",
	"readBucketEncryption", "writeBucketEncryption",
	"readBucketRetentions", "writeBucketRetentions",
	"readFileRetentions", "writeFileRetentions",
	"readFileLegalHolds", "writeFileLegalHolds",
	"readBucketReplications", "writeBucketReplications",
	"readBucketNotifications", "writeBucketNotifications",
	"bypassGovernance",
	"listFiles", "readFiles", "shareFiles", "writeFiles", "deleteFiles",
}

// AllCapabilities returns the capabilities of a key made with nil
// Capabilities, in the order b2_authorize_account lists them.
func AllCapabilities() []string { return slices.Clone(allCapabilities) }

// Key is an application key the fake accepts in b2_authorize_account.
type Key struct {
	ID, Secret string
	// Capabilities nil means all of AllCapabilities.
	Capabilities []string
	// Buckets are the names of the buckets the key is restricted to; empty
	// means all buckets. Each name is bound to its bucket id when the key
	// is added (a name with no bucket yet is bound to the id CreateBucket
	// will give it), so deleting and re-creating a bucket leaves the key
	// restricted to the deleted one, as in B2.
	Buckets []string
	// NamePrefix restricts the key to file names starting with it; ""
	// means no restriction.
	NamePrefix string
	// MultiBucket marks a key made by v4 b2_create_key: when it is bucket
	// restricted, v1-v3 b2_authorize_account refuse it with 401 unsupported.
	// A key restricted to more than one bucket is refused there anyway.
	MultiBucket bool
	// Expires is reported as applicationKeyExpirationTimestamp (v3, v4);
	// zero means never. An expired key is refused with 401 unauthorized.
	Expires time.Time
}

// keyRec is a Key as the fake holds it. It is immutable once built; AddKey
// with the same id replaces it, and tokens keep the record they were
// issued for.
type keyRec struct {
	key       Key
	bucketIDs []string // bound ids, parallel to key.Buckets
	caps      map[string]bool
}

func (k *keyRec) can(capability string) bool { return k.caps[capability] }

// allowsBucket reports whether the key may touch the bucket with id.
func (k *keyRec) allowsBucket(id string) bool {
	return len(k.bucketIDs) == 0 || slices.Contains(k.bucketIDs, id)
}

// tokenRec is an issued authorization token.
type tokenRec struct {
	key *keyRec
	seq uint64
}

// AddKey makes k usable with b2_authorize_account, replacing any key with
// the same ID. Tokens already issued keep the old key's rights. It panics
// if k.ID is empty.
func (s *Server) AddKey(k Key) {
	if k.ID == "" {
		panic("b2test: AddKey: empty key ID")
	}
	caps := k.Capabilities
	if caps == nil {
		caps = allCapabilities
	}
	k.Capabilities = slices.Clone(caps)
	k.Buckets = slices.Clone(k.Buckets)
	rec := &keyRec{key: k, caps: make(map[string]bool, len(caps))}
	for _, c := range caps {
		rec.caps[c] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range k.Buckets {
		rec.bucketIDs = append(rec.bucketIDs, s.bindBucketLocked(name))
	}
	s.keys[k.ID] = rec
}

// MasterKey returns the key NewServer added: its ID is AccountID(), it has
// every capability and no restrictions.
func (s *Server) MasterKey() Key { return s.master }

// ExpireTokens makes every token issued so far answer 401
// expired_auth_token. Tokens issued afterwards work.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	s.expiredUpTo = s.tokenSeq
	s.mu.Unlock()
}

// ExpireTokensEvery makes the fake call ExpireTokens after every n-th call
// of ep from now on, that call included: the n-th call itself then answers
// 401 expired_auth_token, as does every call still holding an older token.
// It counts calls as Calls does. n <= 0 turns it off.
func (s *Server) ExpireTokensEvery(ep Endpoint, n int) {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	s.expireEp, s.expireEvery, s.expireCount = ep, max(n, 0), 0
}

// checkToken finds the key behind the request's Authorization token.
func (s *Server) checkToken(r *http.Request) (*keyRec, *apiError) {
	tok := r.Header.Get("Authorization")
	if tok == "" {
		return nil, newError(http.StatusUnauthorized, CodeBadAuthToken, "missing Authorization header")
	}
	s.mu.RLock()
	rec, expiredUpTo := s.tokens[tok], s.expiredUpTo
	s.mu.RUnlock()
	switch {
	case rec == nil:
		return nil, newError(http.StatusUnauthorized, CodeBadAuthToken, "Invalid authorization token")
	case rec.seq <= expiredUpTo:
		return nil, newError(http.StatusUnauthorized, CodeExpiredAuthToken, "Authorization token has expired")
	}
	return rec.key, nil
}

// bucketRef is a bound bucket of a key: name is nil if it no longer exists.
type bucketRef struct {
	ID   string  `json:"id"`
	Name *string `json:"name"`
}

// authorize serves b2_authorize_account.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, version int) *apiError {
	id, secret, ok := r.BasicAuth()
	if !ok {
		return unauthorized("missing or malformed Basic Authorization header")
	}
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return badRequest("reading body: " + err.Error())
		}
		var obj map[string]any
		if len(body) > 0 && json.Unmarshal(body, &obj) != nil {
			return newError(http.StatusBadRequest, CodeBadJSON, "body must be empty or a JSON object")
		}
	}

	s.mu.Lock()
	rec := s.keys[id]
	if rec == nil || rec.key.Secret != secret {
		s.mu.Unlock()
		return unauthorized("invalid application key id or key")
	}
	k := rec.key
	if !k.Expires.IsZero() && !time.Now().Before(k.Expires) {
		s.mu.Unlock()
		return unauthorized("application key has expired")
	}
	if version < 4 && (len(k.Buckets) > 1 || (k.MultiBucket && len(k.Buckets) > 0)) {
		s.mu.Unlock()
		return newError(http.StatusUnauthorized, CodeUnsupported,
			fmt.Sprintf("this application key can only be used with b2api v4 or later, not v%d", version))
	}
	s.tokenSeq++
	tok := fmt.Sprintf("4_%s_%08x_%s", s.accountID, s.tokenSeq, rand.Text())
	s.tokens[tok] = &tokenRec{key: rec, seq: s.tokenSeq}
	var refs []bucketRef
	for _, bid := range rec.bucketIDs {
		ref := bucketRef{ID: bid}
		if b := s.byID[bid]; b != nil {
			ref.Name = &b.name
		}
		refs = append(refs, ref)
	}
	s.mu.Unlock()

	writeJSON(w, http.StatusOK, s.authResponse(version, tok, k, refs))
	return nil
}

// Response shapes of b2_authorize_account by version (b2-api.md 1.2-1.4).
type (
	authV2 struct {
		AccountID               string    `json:"accountId"`
		AuthorizationToken      string    `json:"authorizationToken"`
		APIURL                  string    `json:"apiUrl"`
		DownloadURL             string    `json:"downloadUrl"`
		S3APIURL                string    `json:"s3ApiUrl"`
		RecommendedPartSize     int64     `json:"recommendedPartSize"`
		AbsoluteMinimumPartSize int64     `json:"absoluteMinimumPartSize"`
		MinimumPartSize         int64     `json:"minimumPartSize,omitempty"` // v1 only
		Allowed                 allowedV2 `json:"allowed"`
	}
	allowedV2 struct {
		Capabilities []string `json:"capabilities"`
		BucketID     *string  `json:"bucketId"`
		BucketName   *string  `json:"bucketName"`
		NamePrefix   *string  `json:"namePrefix"`
	}
	authV3 struct {
		AccountID          string `json:"accountId"`
		AuthorizationToken string `json:"authorizationToken"`
		// ApplicationKeyExpirationTimestamp is null for keys that never expire.
		ApplicationKeyExpirationTimestamp *int64 `json:"applicationKeyExpirationTimestamp"`
		APIInfo                           struct {
			StorageAPI any `json:"storageApi"`
		} `json:"apiInfo"`
	}
	storageAPI struct {
		APIURL                  string `json:"apiUrl"`
		DownloadURL             string `json:"downloadUrl"`
		S3APIURL                string `json:"s3ApiUrl"`
		RecommendedPartSize     int64  `json:"recommendedPartSize"`
		AbsoluteMinimumPartSize int64  `json:"absoluteMinimumPartSize"`
	}
	storageV3 struct {
		storageAPI
		Capabilities []string `json:"capabilities"`
		BucketID     *string  `json:"bucketId"`
		BucketName   *string  `json:"bucketName"`
		NamePrefix   *string  `json:"namePrefix"`
		InfoType     string   `json:"infoType"`
	}
	storageV4 struct {
		storageAPI
		Allowed allowedV4 `json:"allowed"`
	}
	allowedV4 struct {
		Buckets      []bucketRef `json:"buckets"` // null when unrestricted
		Capabilities []string    `json:"capabilities"`
		NamePrefix   *string     `json:"namePrefix"`
	}
)

// authResponse builds the body for version. refs holds at most one bucket
// unless version is 4 (authorize refused the other cases).
func (s *Server) authResponse(version int, tok string, k Key, refs []bucketRef) any {
	var prefix, bucketID, bucketName *string
	if k.NamePrefix != "" {
		prefix = &k.NamePrefix
	}
	if len(refs) > 0 {
		bucketID, bucketName = &refs[0].ID, refs[0].Name
	}
	storage := storageAPI{
		APIURL:                  s.URL,
		DownloadURL:             s.URL,
		S3APIURL:                S3APIURL,
		RecommendedPartSize:     RecommendedPartSize,
		AbsoluteMinimumPartSize: AbsoluteMinimumPartSize,
	}
	if version <= 2 {
		resp := authV2{
			AccountID:               s.accountID,
			AuthorizationToken:      tok,
			APIURL:                  storage.APIURL,
			DownloadURL:             storage.DownloadURL,
			S3APIURL:                storage.S3APIURL,
			RecommendedPartSize:     RecommendedPartSize,
			AbsoluteMinimumPartSize: AbsoluteMinimumPartSize,
			Allowed: allowedV2{
				Capabilities: k.Capabilities,
				BucketID:     bucketID,
				BucketName:   bucketName,
				NamePrefix:   prefix,
			},
		}
		if version == 1 {
			resp.MinimumPartSize = RecommendedPartSize
		}
		return resp
	}
	resp := authV3{AccountID: s.accountID, AuthorizationToken: tok}
	if !k.Expires.IsZero() {
		ms := k.Expires.UnixMilli()
		resp.ApplicationKeyExpirationTimestamp = &ms
	}
	if version == 3 {
		resp.APIInfo.StorageAPI = storageV3{
			storageAPI:   storage,
			Capabilities: k.Capabilities,
			BucketID:     bucketID,
			BucketName:   bucketName,
			NamePrefix:   prefix,
			InfoType:     "storageApi",
		}
		return resp
	}
	resp.APIInfo.StorageAPI = storageV4{
		storageAPI: storage,
		Allowed:    allowedV4{Buckets: refs, Capabilities: k.Capabilities, NamePrefix: prefix},
	}
	return resp
}
