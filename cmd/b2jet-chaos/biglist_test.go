package chaos

import (
	"encoding/json"
	"fmt"
)

// Big listings: allPages listings of many pages under a prefix of their own (b2fake -add), whose
// B2 list calls the fake counts apart from the other requests'. A listing whose worker is killed
// must resume from its checkpoint: its calls stay near its pages instead of starting over.
const (
	bigPrefix = "big/"
	bigFiles  = 5000
)

// bigFakeArgs are the b2fake arguments that add the big listings' files.
func bigFakeArgs() []string { return []string{"-add", fmt.Sprintf("%s=%d", bigPrefix, bigFiles)} }

// withBigListings turns every hundredth request of reqs (from the 26th on) into an allPages
// listing of the big files in pages of page names.
func withBigListings(reqs []request, page int) {
	for i := range reqs {
		if i%100 != 25 {
			continue
		}
		reqs[i].op, reqs[i].big = "list_file_names", true
		reqs[i].data, _ = json.Marshal(map[string]any{"bucketName": chaosBucket, "prefix": bigPrefix,
			"maxFileCount": page, "allPages": true})
	}
}

// bigCalls is the accounting of the big listings' B2 list calls.
type bigCalls struct {
	listings int
	// pages are the pages listed: each final ok part's pages (a listing answered again after its
	// final part counts twice, as its calls do).
	pages, finals int
	// redelivered is the deliveries after a listing's first (its highest attempt − 1); each may
	// cost at most two calls besides its pages: the page fetched ahead when its worker died, and
	// the page of the part sent without a checkpoint (sent again with the same number).
	redelivered int
}

// bound is the most list calls the big listings may have cost.
func (b bigCalls) bound() int { return b.pages + 2*b.redelivered }

// bigListings sums up the big listings of reqs from their replies.
func (l *ledger) bigListings(reqs []request) bigCalls {
	var b bigCalls
	for _, r := range reqs {
		if !r.big {
			continue
		}
		b.listings++
		top := 0
		for _, x := range l.replies[r.id] {
			if !x.ok {
				continue
			}
			top = max(top, x.attempt)
			if x.final {
				b.pages += x.pages
				b.finals++
			}
		}
		b.redelivered += max(0, top-1)
	}
	return b
}

// note is the summary's note on the big listings, with the calls the fake counted.
func (b bigCalls) note(calls int) string {
	each := 0
	if b.finals > 0 {
		each = b.pages / b.finals
	}
	return fmt.Sprintf("%d big listings of %d pages: %d B2 list calls for %d pages listed, %d redeliveries (bound %d)",
		b.listings, each, calls, b.pages, b.redelivered, b.bound())
}
