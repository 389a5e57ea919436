package chaos

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Scenario 8: the application key (recognisable: K005CHAOS…SECRETKEY) and every token the fake
// issued appear in no worker log line, error reply or dead letter. Every scenario above scans its
// own evidence; this one adds traffic built to spread tokens around (expired tokens under load,
// forced re-authorization, refused keys, poison), then checks every scan of the run.
func TestSecrets(t *testing.T) {
	e := newEnv(t, "8 secrets", 1)
	e.startWorkers(2)
	reqs := validRequests("secrets", size(300, 1000))
	for i := range size(20, 100) {
		reqs = append(reqs, request{id: fmt.Sprintf("force-%03d", i), op: "authorize", data: []byte(`{"force":true}`), wantOK: true})
	}
	reqs = append(reqs, poisonRequests(size(100, 500))...)
	// A refused token and a refused key: permanent errors that quote B2's answer.
	reqs = append(reqs, request{id: "secrets-unauthorized", op: "list_file_names", data: listBody("denied/")})
	e.fake.inject(t, fault{Endpoint: epList, Status: 401, Prefix: "denied/"})

	l := e.newLedger()
	pub := e.publish(context.Background(), reqs, size(150.0, 150.0))
	for range 3 {
		time.Sleep(size(500*time.Millisecond, 2*time.Second))
		e.fake.expireTokens(t)
	}
	<-pub.done
	if pub.err != nil {
		t.Fatal(pub.err)
	}
	e.await(l, reqs, 2*time.Minute, time.Second)
	e.stopWorkers()
	e.finish(l, reqs, fmt.Sprint(e.fake.stats(t).total()), "")

	scans.mu.Lock()
	all := append([]scan(nil), scans.all...)
	scans.mu.Unlock()
	var lines, replies, letters, tokens, leaks int
	var names []string
	for _, s := range all {
		lines += s.logLines
		replies += s.errorReplies
		letters += s.deadLetters
		tokens += s.tokens
		names = append(names, strings.Fields(s.scenario)[0])
		leaks += len(s.leaks)
		for _, leak := range s.leaks {
			t.Errorf("scenario %s: %s", s.scenario, leak)
		}
	}
	if tokens < 4 {
		t.Errorf("only %d tokens issued: the scan looked for too little", tokens)
	}
	note := fmt.Sprintf("scenarios %s: %d log lines, %d error replies, %d dead letters, key + %d tokens: %d found",
		strings.Join(names, ","), lines, replies, letters, tokens, leaks)
	t.Log(note)
	summary.mu.Lock()
	for i := range summary.rows {
		if summary.rows[i].scenario == e.name {
			summary.rows[i].note = note
		}
	}
	summary.mu.Unlock()
}
