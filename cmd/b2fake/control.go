package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/b2jet/b2jet/b2/b2test"
)

// The control API, JSON over HTTP:
//
//	POST   /faults         inject a fault: faultSpec
//	DELETE /faults         clear every fault
//	POST   /latency        {"endpoint":"b2_list_file_names","latency":"20ms"} ("0s" removes it)
//	POST   /expire-tokens  every token issued so far answers 401 expired_auth_token
//	POST   /reset-calls    set the call counters to zero
//	GET    /stats          stats: calls per endpoint, list calls per -add prefix, Retry-After
//	                       violations, issued tokens

// faultSpec is b2test.Fault as JSON, for one endpoint.
type faultSpec struct {
	Endpoint   b2test.Endpoint `json:"endpoint"`
	Status     int             `json:"status"`
	Code       string          `json:"code"`
	RetryAfter string          `json:"retryAfter"`
	Drop       bool            `json:"drop"`
	Latency    duration        `json:"latency"`
	Times      int             `json:"times"`
	Prefix     string          `json:"prefix"`
}

// latencySpec sets the latency of an endpoint.
type latencySpec struct {
	Endpoint b2test.Endpoint `json:"endpoint"`
	Latency  duration        `json:"latency"`
}

// stats is what GET /stats answers.
type stats struct {
	Calls map[b2test.Endpoint]int `json:"calls"`
	// PrefixCalls are the list calls under each prefix of -add.
	PrefixCalls map[string]int     `json:"prefixCalls"`
	Violations  []b2test.Violation `json:"violations"`
	Tokens      []string           `json:"tokens"`
}

// duration is a time.Duration written as Go writes it ("1.5s").
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"20ms\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}

var endpoints = []b2test.Endpoint{b2test.EndpointAuthorize, b2test.EndpointListBuckets, b2test.EndpointListFileNames}

func knownEndpoint(ep b2test.Endpoint) error {
	for _, e := range endpoints {
		if e == ep {
			return nil
		}
	}
	return fmt.Errorf("unknown endpoint %q", ep)
}

// newControl returns the control API of fake, whose list calls under each of prefixes it counts.
func newControl(fake *b2test.Server, prefixes []string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /faults", func(w http.ResponseWriter, r *http.Request) {
		var f faultSpec
		if !decode(w, r, &f) {
			return
		}
		fake.Inject(f.Endpoint, b2test.Fault{Status: f.Status, Code: f.Code, RetryAfter: f.RetryAfter, Drop: f.Drop,
			Latency: time.Duration(f.Latency), Times: f.Times, Prefix: f.Prefix})
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /faults", func(w http.ResponseWriter, _ *http.Request) {
		fake.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /latency", func(w http.ResponseWriter, r *http.Request) {
		var l latencySpec
		if !decode(w, r, &l) {
			return
		}
		fake.SetLatency(l.Endpoint, time.Duration(l.Latency))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /expire-tokens", func(w http.ResponseWriter, _ *http.Request) {
		fake.ExpireTokens()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /reset-calls", func(w http.ResponseWriter, _ *http.Request) {
		fake.ResetCalls()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		st := stats{Calls: map[b2test.Endpoint]int{}, PrefixCalls: map[string]int{}, Violations: fake.Violations(), Tokens: fake.Tokens()}
		for _, ep := range endpoints {
			st.Calls[ep] = fake.Calls(ep)
		}
		for _, p := range prefixes {
			st.PrefixCalls[p] = fake.PrefixCalls(p)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st) // a failed write means the caller went away
	})
	return mux
}

// decode reads a JSON body into v, whose Endpoint must be known; it answers 400 and returns false
// when it cannot.
func decode[T interface{ endpoint() b2test.Endpoint }](w http.ResponseWriter, r *http.Request, v T) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		err = knownEndpoint(v.endpoint())
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func (f *faultSpec) endpoint() b2test.Endpoint   { return f.Endpoint }
func (l *latencySpec) endpoint() b2test.Endpoint { return l.Endpoint }
