package b2

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Session is the result of b2_authorize_account, whatever API version answered. It is
// immutable once built; the Client replaces it as a whole on re-authorization.
type Session struct {
	AccountID          string
	AuthorizationToken Secret
	APIURL             string
	DownloadURL        string
	S3APIURL           string

	RecommendedPartSize     int64
	AbsoluteMinimumPartSize int64

	Allowed Allowed

	// KeyExpiresAt is when the application key itself expires (zero: never).
	KeyExpiresAt time.Time
	// ObtainedAt is when B2 issued the token; RefreshAt is when the cache will replace it.
	ObtainedAt time.Time
	RefreshAt  time.Time
	// APIVersion is the authorize API version that answered ("v4", "v3" or "v2").
	APIVersion string

	// rev is the Config.Sessions revision the session was loaded from or stored as; 0 when
	// it is the process's own.
	rev uint64
}

// String describes the session without its token.
func (s *Session) String() string {
	return fmt.Sprintf("b2.Session{account=%s apiUrl=%s version=%s refreshAt=%s}",
		s.AccountID, s.APIURL, s.APIVersion, s.RefreshAt.UTC().Format(time.RFC3339))
}

// Allowed is what the application key may do.
type Allowed struct {
	Capabilities []string
	// Buckets lists the buckets the key is restricted to; nil means every bucket. A v2/v3
	// single-bucket key gives one entry. Name is "" when the bucket no longer exists.
	Buckets []AllowedBucket
	// NamePrefix restricts file names; "" means no restriction.
	NamePrefix string
}

// AllowedBucket is one bucket a restricted key may use.
type AllowedBucket struct {
	ID   string
	Name string
}

// Can reports whether the key has the capability.
func (a Allowed) Can(capability string) bool { return slices.Contains(a.Capabilities, capability) }

// BucketRestricted reports whether the key is limited to some buckets.
func (a Allowed) BucketRestricted() bool { return a.Buckets != nil }

// authorizeBody is the union of the v2 (flat), v3 (apiInfo.storageApi) and v4
// (apiInfo.storageApi.allowed) answers. Pointers tell null from absent where it matters.
type authorizeBody struct {
	AccountID          string     `json:"accountId"`
	AuthorizationToken string     `json:"authorizationToken"`
	KeyExpiration      *int64     `json:"applicationKeyExpirationTimestamp"`
	APIInfo            *apiInfo   `json:"apiInfo"`
	storageFields                 // v2: flat at the top level
	Allowed            *allowedV2 `json:"allowed"`
}

type apiInfo struct {
	StorageAPI *storageAPI `json:"storageApi"`
}

type storageFields struct {
	APIURL                  string `json:"apiUrl"`
	DownloadURL             string `json:"downloadUrl"`
	S3APIURL                string `json:"s3ApiUrl"`
	RecommendedPartSize     int64  `json:"recommendedPartSize"`
	AbsoluteMinimumPartSize int64  `json:"absoluteMinimumPartSize"`
	MinimumPartSize         int64  `json:"minimumPartSize"`
}

// storageAPI is v3's and v4's apiInfo.storageApi.
type storageAPI struct {
	storageFields
	// v3
	Capabilities []string `json:"capabilities"`
	BucketID     *string  `json:"bucketId"`
	BucketName   *string  `json:"bucketName"`
	NamePrefix   *string  `json:"namePrefix"`
	// v4
	Allowed *allowedV4 `json:"allowed"`
}

type allowedV2 struct {
	Capabilities []string `json:"capabilities"`
	BucketID     *string  `json:"bucketId"`
	BucketName   *string  `json:"bucketName"`
	NamePrefix   *string  `json:"namePrefix"`
}

type allowedV4 struct {
	Buckets      []bucketV4 `json:"buckets"`
	Capabilities []string   `json:"capabilities"`
	NamePrefix   *string    `json:"namePrefix"`
}

type bucketV4 struct {
	ID   *string `json:"id"`
	Name *string `json:"name"`
}

// parseSession decodes an authorize answer of any version into a Session.
func parseSession(raw []byte, version string, now time.Time, lifetime, margin time.Duration) (*Session, error) {
	var body authorizeBody
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("decoding authorize response: %w", err)
	}
	s := &Session{
		AccountID:          body.AccountID,
		AuthorizationToken: Secret(body.AuthorizationToken),
		ObtainedAt:         now,
		APIVersion:         version,
	}
	fields := body.storageFields
	switch st := storageOf(body); {
	case st != nil:
		fields = st.storageFields
		if st.Allowed != nil { // v4
			s.Allowed = allowedFromV4(st.Allowed)
		} else { // v3
			s.Allowed = allowedFromFlat(st.Capabilities, st.BucketID, st.BucketName, st.NamePrefix)
		}
	case body.Allowed != nil: // v2
		a := body.Allowed
		s.Allowed = allowedFromFlat(a.Capabilities, a.BucketID, a.BucketName, a.NamePrefix)
	}
	s.APIURL, s.DownloadURL, s.S3APIURL = fields.APIURL, fields.DownloadURL, fields.S3APIURL
	s.RecommendedPartSize = fields.RecommendedPartSize
	if s.RecommendedPartSize == 0 {
		s.RecommendedPartSize = fields.MinimumPartSize
	}
	s.AbsoluteMinimumPartSize = fields.AbsoluteMinimumPartSize
	if body.KeyExpiration != nil && *body.KeyExpiration > 0 {
		s.KeyExpiresAt = time.UnixMilli(*body.KeyExpiration)
	}
	switch {
	case s.AccountID == "":
		return nil, fmt.Errorf("authorize response has no accountId")
	case s.AuthorizationToken == "":
		return nil, fmt.Errorf("authorize response has no authorizationToken")
	case s.APIURL == "":
		return nil, fmt.Errorf("authorize response has no apiUrl")
	}
	s.RefreshAt = now.Add(lifetime - margin)
	if !s.KeyExpiresAt.IsZero() && s.KeyExpiresAt.Before(s.RefreshAt) {
		s.RefreshAt = s.KeyExpiresAt
	}
	return s, nil
}

func storageOf(b authorizeBody) *storageAPI {
	if b.APIInfo == nil {
		return nil
	}
	return b.APIInfo.StorageAPI
}

func allowedFromFlat(caps []string, bucketID, bucketName, prefix *string) Allowed {
	a := Allowed{Capabilities: caps, NamePrefix: deref(prefix)}
	if id := deref(bucketID); id != "" {
		a.Buckets = []AllowedBucket{{ID: id, Name: deref(bucketName)}}
	}
	return a
}

func allowedFromV4(v *allowedV4) Allowed {
	a := Allowed{Capabilities: v.Capabilities, NamePrefix: deref(v.NamePrefix)}
	if v.Buckets != nil {
		a.Buckets = make([]AllowedBucket, 0, len(v.Buckets))
		for _, b := range v.Buckets {
			if id := deref(b.ID); id != "" {
				a.Buckets = append(a.Buckets, AllowedBucket{ID: id, Name: deref(b.Name)})
			}
		}
	}
	return a
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
