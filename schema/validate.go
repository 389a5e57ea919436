package schema

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/b2jet/b2jet/schema/glob"
)

// Validate checks the request against the contract. The error, if any, is a *ValidationError
// about the first offending field.
func (r AuthorizeRequest) Validate() error {
	if err := validateCommon(r.ID, r.Deadline); err != nil {
		return err
	}
	return nil
}

// Validate checks the request against the contract. The error, if any, is a *ValidationError
// about the first offending field, in this order: id, deadline, bucketName/bucketId,
// maxFileCount, limit, prefix, delimiter, startFileName, match.
func (r ListFileNamesRequest) Validate() error {
	if err := validateCommon(r.ID, r.Deadline); err != nil {
		return err
	}
	switch {
	case r.BucketName == "" && r.BucketID == "":
		return invalid("", "bucketName or bucketId is required")
	case r.BucketName != "" && r.BucketID != "":
		return invalid("", "set only one of bucketName and bucketId")
	case r.BucketName != "":
		if err := validateBucketName(r.BucketName); err != nil {
			return err
		}
	default:
		if err := validateBucketID(r.BucketID); err != nil {
			return err
		}
	}
	if r.MaxFileCount < 0 || r.MaxFileCount > MaxMaxFileCount {
		return invalid("maxFileCount", "must be between 1 and %d, got %d", MaxMaxFileCount, r.MaxFileCount)
	}
	if r.Limit < 0 {
		return invalid("limit", "must not be negative, got %d", r.Limit)
	}
	if r.Limit > 0 && !r.AllPages {
		return invalid("limit", "only allowed with allPages, got %d", r.Limit)
	}
	for _, f := range []struct {
		name, value string
		max         int
	}{
		{"prefix", r.Prefix, MaxNameBytes},
		{"delimiter", r.Delimiter, MaxNameBytes},
		{"startFileName", r.StartFileName, MaxNameBytes},
		{"match", r.Match, MaxMatchBytes},
	} {
		if err := validateText(f.name, f.value, f.max); err != nil {
			return err
		}
	}
	// Compile also bounds what matching may cost (glob.MaxPatternBytes, glob.MaxClasses).
	if r.Match != "" {
		if _, err := glob.Compile(r.Match); err != nil {
			return &ValidationError{Field: "match", Problem: err.Error(), Err: err}
		}
	}
	return nil
}

// Glob compiles Match; nil when Match is empty. Validate has already reported a bad pattern.
func (r ListFileNamesRequest) Glob() (*glob.Glob, error) {
	if r.Match == "" {
		return nil, nil
	}
	return glob.Compile(r.Match)
}

// EffectivePrefix is the B2 prefix to list: Prefix, or when it is empty the literal leading part
// of Match (so "exports/2026-05/**.csv" lists only under "exports/2026-05/").
func (r ListFileNamesRequest) EffectivePrefix() string {
	if r.Prefix != "" || r.Match == "" {
		return r.Prefix
	}
	g, err := glob.Compile(r.Match)
	if err != nil {
		return ""
	}
	return g.LiteralPrefix()
}

func validateCommon(id, deadline string) error {
	if err := validateText("id", id, MaxRequestIDBytes); err != nil {
		return err
	}
	if deadline != "" {
		if _, err := time.Parse(time.RFC3339, deadline); err != nil {
			return invalid("deadline", "must be an RFC 3339 time like \"2026-05-01T12:00:00Z\", got %s", quote(deadline))
		}
	}
	return nil
}

// validateText checks that s is valid UTF-8 of at most max bytes without control characters.
func validateText(field, s string, max int) error {
	if len(s) > max {
		return invalid(field, "must be at most %d bytes, got %d", max, len(s))
	}
	if !utf8.ValidString(s) {
		return invalid(field, "must be valid UTF-8")
	}
	if i := strings.IndexFunc(s, isControl); i >= 0 {
		return invalid(field, "must not contain control characters, found %#02x at byte %d", s[i], i)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func validateBucketName(name string) error {
	// B2 has allowed up to 63 characters (older documentation said 50): the client accepts 63 and
	// leaves anything finer to B2.
	if n := utf8.RuneCountInString(name); n < 6 || n > 63 {
		return invalid("bucketName", "must be 6 to 63 characters long, got %d: %s", n, quote(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return invalid("bucketName", "must contain only letters, digits and hyphens, got %s", quote(name))
		}
	}
	if len(name) >= 3 && strings.EqualFold(name[:3], "b2-") {
		return invalid("bucketName", "must not start with \"b2-\" (reserved by Backblaze), got %s", quote(name))
	}
	return nil
}

func validateBucketID(id string) error {
	if n := utf8.RuneCountInString(id); n > MaxBucketIDLen {
		return invalid("bucketId", "must be at most %d characters long, got %d", MaxBucketIDLen, n)
	}
	if !utf8.ValidString(id) {
		return invalid("bucketId", "must be valid UTF-8")
	}
	if strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return invalid("bucketId", "must not contain whitespace or control characters, got %s", quote(id))
	}
	return nil
}

// quote returns s quoted when it is short enough to repeat in an error, else its length.
func quote(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("%d bytes", len(s))
	}
	return fmt.Sprintf("%q", s)
}
