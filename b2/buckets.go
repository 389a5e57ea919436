package b2

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"golang.org/x/sync/singleflight"
)

// bucketCache maps bucket names to ids for the life of the Client. An id never changes, but a
// deleted and re-created bucket gets a new one, so an entry is dropped when B2 reports it invalid.
type bucketCache struct {
	mu     sync.RWMutex
	ids    map[string]string
	flight singleflight.Group
}

func (b *bucketCache) init() { b.ids = make(map[string]string) }

func (b *bucketCache) get(name string) (string, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	id, ok := b.ids[name]
	return id, ok
}

func (b *bucketCache) put(name, id string) {
	b.mu.Lock()
	b.ids[name] = id
	b.mu.Unlock()
}

func (b *bucketCache) forget(name string) {
	b.mu.Lock()
	delete(b.ids, name)
	b.mu.Unlock()
}

// BucketID resolves a bucket name to its id: from the key's allowances when the key is
// bucket-restricted (no B2 call), else from the cache, else with one b2_list_buckets call
// (shared by concurrent callers asking for the same name). An unknown name is ErrBucketNotFound.
func (c *Client) BucketID(ctx context.Context, name string) (string, error) {
	var id string
	err := c.withSession(ctx, func(s *Session) error {
		var err error
		id, err = c.resolveBucket(ctx, s, name)
		return err
	})
	return id, err
}

func (c *Client) resolveBucket(ctx context.Context, s *Session, name string) (string, error) {
	if s.Allowed.BucketRestricted() {
		for _, b := range s.Allowed.Buckets {
			if b.Name == name {
				return b.ID, nil
			}
		}
		return "", fmt.Errorf("%w: the key may not use bucket %q", ErrNotAllowed, name)
	}
	if id, ok := c.buckets.get(name); ok {
		return id, nil
	}
	// The shared lookup must not die with whichever caller started it; each caller still stops
	// waiting when its own context ends.
	ch := c.buckets.flight.DoChan(name, func() (any, error) {
		return c.lookupBucket(context.WithoutCancel(ctx), s, name)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return "", res.Err
		}
		return res.Val.(string), nil
	case <-ctx.Done():
		return "", fmt.Errorf("b2: %s: %w", opListBuckets, ctx.Err())
	}
}

type listBucketsBody struct {
	AccountID  string `json:"accountId"`
	BucketName string `json:"bucketName"`
}

type listBucketsAnswer struct {
	Buckets []struct {
		BucketID   string `json:"bucketId"`
		BucketName string `json:"bucketName"`
	} `json:"buckets"`
}

func (c *Client) lookupBucket(ctx context.Context, s *Session, name string) (string, error) {
	var ans listBucketsAnswer
	err := c.do(ctx, request{
		op: opListBuckets, method: http.MethodPost, auth: s.AuthorizationToken.Reveal(),
		url: apiURL(s.APIURL, listAPIVersion, opListBuckets), limited: true, bucketName: name,
		body: listBucketsBody{AccountID: s.AccountID, BucketName: name},
	}, &ans)
	if err != nil {
		return "", err
	}
	for _, b := range ans.Buckets {
		if b.BucketName == name {
			c.buckets.put(name, b.BucketID)
			return b.BucketID, nil
		}
	}
	return "", fmt.Errorf("%w: %q", ErrBucketNotFound, name)
}
