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
	e := newEnv(t, secretsRow, 1)
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

	for _, s := range allScans() {
		for _, leak := range s.leaks {
			t.Errorf("scenario %s: %s", s.scenario, leak)
		}
	}
	note, tokens := scansNote()
	if tokens < 4 {
		t.Errorf("only %d tokens issued: the scan looked for too little", tokens)
	}
	t.Log(note)
	noteScans()
}

// secretsRow is the summary row whose note sums up the scans of the whole run.
const secretsRow = "8 secrets"

func allScans() []scan {
	scans.mu.Lock()
	defer scans.mu.Unlock()
	return append([]scan(nil), scans.all...)
}

// scansNote sums up every scan made so far, and returns the tokens they looked for.
func scansNote() (string, int) {
	var lines, replies, letters, tokens, leaks int
	var names []string
	for _, s := range allScans() {
		lines += s.logLines
		replies += s.errorReplies
		letters += s.deadLetters
		tokens += s.tokens
		names = append(names, strings.Fields(s.scenario)[0])
		leaks += len(s.leaks)
	}
	return fmt.Sprintf("scenarios %s: %d log lines, %d error replies, %d dead letters, key + %d tokens: %d found",
		strings.Join(names, ","), lines, replies, letters, tokens, leaks), tokens
}

// noteScans writes the sum of every scan into the secrets row. TestMain calls it again after
// the run: scenarios that run after this one (9, its file sorting after 8's) were scanned too,
// each failing its own test on a leak.
func noteScans() {
	note, _ := scansNote()
	summary.mu.Lock()
	defer summary.mu.Unlock()
	for i := range summary.rows {
		if summary.rows[i].scenario == secretsRow {
			summary.rows[i].note = note
		}
	}
}
