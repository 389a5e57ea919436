package b2

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzParseSession feeds arbitrary authorize bodies to the decoder: it must never panic, and a
// session it accepts must have the fields every later call depends on.
func FuzzParseSession(f *testing.F) {
	for _, body := range []string{v2Body, v2MasterBody, v2DeletedBucketBody, v3Body, v4Body, v4MasterBody,
		`{}`, `null`, `[]`, `{"apiInfo":null}`, `{"apiInfo":{"storageApi":{"allowed":{"buckets":[null,{"id":null}]}}}}`} {
		f.Add([]byte(body))
	}
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := parseSession(body, "v4", now, 24*time.Hour, time.Hour)
		if err != nil {
			return
		}
		if s.AccountID == "" || s.AuthorizationToken == "" || s.APIURL == "" {
			t.Fatalf("accepted a session without its essentials: %v", s)
		}
		if s.RefreshAt.After(now.Add(23 * time.Hour)) {
			t.Fatalf("refresh at %v is past the margin", s.RefreshAt)
		}
		for _, b := range s.Allowed.Buckets {
			if b.ID == "" {
				t.Fatalf("allowed bucket without id: %+v", s.Allowed)
			}
		}
		if strings.Contains(s.String(), s.AuthorizationToken.Reveal()) && len(s.AuthorizationToken) > 8 {
			t.Fatalf("String shows the token")
		}
	})
}

// FuzzParseError feeds arbitrary error bodies and Retry-After values: never a panic, always a
// code, a message and a sane delay.
func FuzzParseError(f *testing.F) {
	f.Add(503, "5", []byte(`{"status":503,"code":"service_unavailable","message":"busy"}`))
	f.Add(502, "", []byte(`<html>bad gateway</html>`))
	f.Add(429, "Wed, 21 Oct 2015 07:28:00 GMT", []byte(``))
	f.Add(401, "-1", []byte(`{"code":12,"message":null}`))
	f.Add(400, "99999999999999999999", []byte(`{"status":"x"}`))
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		e := parseError(opListFileNames, status, retryAfter, body, now)
		if e.Code == "" || e.Status != status {
			t.Fatalf("bad error: %+v", e)
		}
		if e.RetryAfter < 0 || e.RetryAfter > 24*time.Hour {
			t.Fatalf("retry after out of range: %v", e.RetryAfter)
		}
		_ = e.Error()
		_ = KindOf(e)
	})
}

// FuzzListAnswer decodes arbitrary list bodies as the client does (decodeListAnswer) and as
// encoding/json does: both must accept the same bodies and read the same page, and re-encoding
// what was accepted must keep every file.
func FuzzListAnswer(f *testing.F) {
	f.Add([]byte(`{"files":[{"fileName":"a","action":"upload","contentLength":1,"fileInfo":{"k":"v"}}],"nextFileName":"a "}`))
	f.Add([]byte(`{"files":[{"fileName":"d/","action":"folder","fileId":null,"contentType":null}],"nextFileName":null}`))
	f.Add([]byte(`{"files":null}`))
	f.Add([]byte(`{"files":[{"fileName":"x","uploadTimestamp":1.5}]}`))
	f.Add([]byte(`{"files":[{"FILENAME":"\ud800x","fileInfo":{"a":"\u00e9","a":"b"},"legalHold":{"value":null}}]}`))
	f.Add([]byte("{\"files\":[{\"fileName\":\"\xff\xfe\"}],\"nextFileName\":\"\xc3\"}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		var ans, std listAnswer
		err := decodeListAnswer(body, &ans)
		stdErr := json.Unmarshal(body, &std)
		if (err == nil) != (stdErr == nil) {
			t.Fatalf("decoders disagree on %q: client %v, encoding/json %v", body, err, stdErr)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(ans, std) {
			t.Fatalf("decoders read %q differently:\nclient        %+v\nencoding/json %+v", body, ans, std)
		}
		again, err := json.Marshal(ans)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		var back listAnswer
		if err := decodeListAnswer(again, &back); err != nil {
			t.Fatalf("decoding own encoding: %v", err)
		}
		if len(back.Files) != len(ans.Files) || (ans.NextFileName == nil) != (back.NextFileName == nil) {
			t.Fatalf("round trip changed the page")
		}
	})
}
