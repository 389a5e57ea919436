package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/b2jet/b2jet/cmd/internal/workerproc"
)

// chaosBucket is the fake's bucket; its files are data/0000000 … (fakeFiles of them).
const (
	chaosBucket = "chaos-bucket"
	fakeFiles   = 2000
	chaosKeyID  = "chaos-key-id"
)

// fakeB2 is a cmd/b2fake process and its control API.
type fakeB2 struct {
	p                           *workerproc.Proc
	url, control, bucketID, key string
}

// fakeStats is the control API's GET /stats.
type fakeStats struct {
	Calls map[string]int `json:"calls"`
	// PrefixCalls are the list calls under each prefix of b2fake's -add.
	PrefixCalls map[string]int `json:"prefixCalls"`
	Violations  []struct {
		Endpoint string    `json:"Endpoint"`
		At       time.Time `json:"At"`
	} `json:"violations"`
	Tokens []string `json:"tokens"`
}

func (s fakeStats) total() int {
	n := 0
	for _, c := range s.Calls {
		n += c
	}
	return n
}

// startFake starts the fake B2 with the chaos key (secret key) and the chaos bucket, and b2fake's
// extra args.
func startFake(t *testing.T, key string, extra ...string) *fakeB2 {
	t.Helper()
	p := workerproc.StartTest(t, "b2fake", bins.b2fake, append(os.Environ(), "B2FAKE_KEY="+key),
		append([]string{"-key-id", chaosKeyID, "-bucket", chaosBucket, "-files", fmt.Sprint(fakeFiles)}, extra...)...)
	line := waitLine(t, p, `"control"`, 30*time.Second)
	var b struct{ URL, Control, BucketID string }
	if err := json.Unmarshal([]byte(line), &b); err != nil {
		t.Fatalf("b2fake banner %q: %v", line, err)
	}
	return &fakeB2{p: p, url: b.URL, control: b.Control, bucketID: b.BucketID, key: key}
}

// do calls the control API, failing the test on any error.
func (f *fakeB2) do(t *testing.T, method, path string, body any) []byte {
	t.Helper()
	var rd bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&rd).Encode(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, f.control+path, &rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("b2fake %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("b2fake %s %s: %s: %s", method, path, resp.Status, out.String())
	}
	return out.Bytes()
}

// fault is the control API's fault spec.
type fault struct {
	Endpoint   string `json:"endpoint"`
	Status     int    `json:"status,omitempty"`
	RetryAfter string `json:"retryAfter,omitempty"`
	Drop       bool   `json:"drop,omitempty"`
	Latency    string `json:"latency,omitempty"`
	Times      int    `json:"times,omitempty"`
	Prefix     string `json:"prefix,omitempty"`
}

const (
	epAuthorize   = "b2_authorize_account"
	epList        = "b2_list_file_names"
	epListBuckets = "b2_list_buckets"
)

func (f *fakeB2) inject(t *testing.T, spec fault) { f.do(t, "POST", "/faults", spec) }
func (f *fakeB2) clearFaults(t *testing.T)        { f.do(t, "DELETE", "/faults", nil) }

// expireTokens makes every token issued so far answer 401 expired_auth_token.
func (f *fakeB2) expireTokens(t *testing.T) { f.do(t, "POST", "/expire-tokens", nil) }

func (f *fakeB2) stats(t *testing.T) fakeStats {
	t.Helper()
	var s fakeStats
	if err := json.Unmarshal(f.do(t, "GET", "/stats", nil), &s); err != nil {
		t.Fatal(err)
	}
	return s
}
