package main

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The documentation is spread over the README and docs/: every relative link must reach a file
// that exists and, with a #fragment, a heading of that file, so that moving a section cannot leave
// a link behind.
func TestDocLinksResolve(t *testing.T) {
	root := filepath.Join("..", "..")
	files := []string{"README.md", "BENCHMARKS.md"}
	require.NoError(t, fs.WalkDir(os.DirFS(root), "docs", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return err
	}))
	anchors := map[string]map[string]bool{} // by file, slash-separated from the root
	anchorsOf := func(file string) map[string]bool {
		if a, ok := anchors[file]; ok {
			return a
		}
		raw, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
		require.NoError(t, err)
		anchors[file] = headingAnchors(string(raw))
		return anchors[file]
	}
	checked := 0
	for _, file := range files {
		raw, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
		require.NoError(t, err)
		for _, l := range markdownLinks(string(raw)) {
			target, fragment, _ := strings.Cut(l.target, "#")
			if strings.Contains(target, ":") { // https:, mailto:: not ours to check
				continue
			}
			checked++
			where := fmt.Sprintf("%s:%d: link %q", file, l.line, l.target)
			dest := file
			if target != "" {
				dest = path.Clean(path.Join(path.Dir(file), target))
				if !assert.False(t, strings.HasPrefix(dest, "../"), "%s leaves the repository", where) {
					continue
				}
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(dest))); !assert.NoError(t, err, "%s: no such file", where) {
					continue
				}
			}
			if fragment != "" && assert.True(t, strings.HasSuffix(dest, ".md"), "%s: a fragment of a file that is not markdown", where) {
				assert.True(t, anchorsOf(dest)[fragment], "%s: %s has no heading with anchor #%s", where, dest, fragment)
			}
		}
	}
	assert.Greater(t, checked, 50, "the documentation's relative links were found")
}

// mdLink is one inline link or image of a markdown text.
type mdLink struct {
	line   int
	target string
}

var (
	linkRE     = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	codeSpanRE = regexp.MustCompile("(`+)[^`]*?(`+)")
)

// markdownLinks returns the inline links of text outside fenced code blocks and code spans.
func markdownLinks(text string) []mdLink {
	var links []mdLink
	fence := ""
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimLeft(line, " ")
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			continue
		}
		line = codeSpanRE.ReplaceAllStringFunc(line, func(s string) string { return strings.Repeat(" ", len(s)) })
		for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
			links = append(links, mdLink{line: i + 1, target: m[1]})
		}
	}
	return links
}

// headingAnchors returns the anchors GitHub gives the ATX headings of text: the heading's text
// lowercased, without what is neither a letter, a mark, a digit, a connector (_), a space nor a
// hyphen, spaces turned into hyphens; a repeated anchor gets -1, -2, … appended.
func headingAnchors(text string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	fence := ""
	for line := range strings.SplitSeq(text, "\n") {
		trimmed := strings.TrimLeft(line, " ")
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			continue
		}
		level := len(line) - len(strings.TrimLeft(line, "#"))
		if level == 0 || level > 6 || !strings.HasPrefix(line[level:], " ") {
			continue
		}
		a := slug(strings.TrimSpace(line[level:]))
		if n := seen[a]; n > 0 {
			seen[a]++
			a = fmt.Sprintf("%s-%d", a, n)
		} else {
			seen[a] = 1
		}
		anchors[a] = true
	}
	return anchors
}

var headingLinkRE = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)

// slug is GitHub's anchor of a heading's text.
func slug(heading string) string {
	heading = headingLinkRE.ReplaceAllString(heading, "$1") // a link counts by its text
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.Pc):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// The anchors follow GitHub's rules (those of github-slugger): punctuation goes, a space is a
// hyphen even next to another, backticks and a link's target leave no trace.
func TestSlug(t *testing.T) {
	for heading, want := range map[string]string{
		"Quick start (60 seconds, only Go needed)":                        "quick-start-60-seconds-only-go-needed",
		"`b2jet dlq`, `b2jet replay`, `b2jet status`":                     "b2jet-dlq-b2jet-replay-b2jet-status",
		"Metrics and health: `--http`":                                    "metrics-and-health---http",
		"The publisher's rules (what package `client` does)":              "the-publishers-rules-what-package-client-does",
		"Request limits (where b2jet extends the contract)":               "request-limits-where-b2jet-extends-the-contract",
		"A dead letter — `/dead-letters/<seq>`":                           "a-dead-letter--dead-lettersseq",
		"Where b2jet extends the contract or chooses what it leaves open": "where-b2jet-extends-the-contract-or-chooses-what-it-leaves-open",
		"B2_REQUESTS and [the DLQ](x.md)":                                 "b2_requests-and-the-dlq",
	} {
		assert.Equal(t, want, slug(heading), heading)
	}
	a := headingAnchors("# T\n\n## Replay\n\n```\n## not a heading\n```\n\n### Replay\n#nope\n")
	assert.Equal(t, map[string]bool{"t": true, "replay": true, "replay-1": true}, a)
}
