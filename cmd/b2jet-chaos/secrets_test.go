package chaos

import (
	"fmt"
	"strings"
	"sync"
)

// scan is what one scenario's secrets scan looked at and found.
type scan struct {
	scenario                            string
	logLines, errorReplies, deadLetters int
	tokens                              int
	leaks                               []string
}

var scans struct {
	mu  sync.Mutex
	all []scan
}

// scanSecrets looks for the application key and every token the fake issued in every log line
// of every worker the scenario started, every error reply and every dead letter.
func (e *env) scanSecrets(l *ledger) scan {
	e.t.Helper()
	secrets := append([]string{e.fake.key}, e.fake.stats(e.t).Tokens...)
	s := scan{scenario: e.name, errorReplies: l.errorReplies, deadLetters: l.letters, tokens: len(secrets) - 1}
	look := func(where, text string) {
		for i, secret := range secrets {
			if strings.Contains(text, secret) {
				what := "the application key"
				if i > 0 {
					what = fmt.Sprintf("token %d", i)
				}
				s.leaks = append(s.leaks, fmt.Sprintf("%s in %s", what, where))
			}
		}
	}
	for _, p := range e.everyProc {
		for n, line := range p.Lines() {
			s.logLines++
			look(fmt.Sprintf("%s log line %d", p.Name(), n+1), line)
		}
	}
	for i, raw := range l.raw {
		look(fmt.Sprintf("error reply or dead letter %d", i+1), string(raw))
	}
	scans.mu.Lock()
	scans.all = append(scans.all, s)
	scans.mu.Unlock()
	return s
}
