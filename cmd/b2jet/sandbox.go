package main

import (
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/b2/b2test"
)

// SandboxBucket is the demo bucket the sandbox is seeded with.
const SandboxBucket = "b2jet-demo"

// sandbox is the in-process fake B2 (b2/b2test) that the worker uses instead of Backblaze.
type sandbox struct {
	srv   *b2test.Server
	files int
}

// startSandbox starts the fake, seeds the demo bucket and adds one application key per account
// name, returning the B2 configuration of each account (pointed at the fake).
func startSandbox(accounts []string) (*sandbox, map[string]b2.Config) {
	srv := b2test.NewServer()
	files := seedDemo(srv)
	cfgs := make(map[string]b2.Config, len(accounts))
	for _, name := range accounts {
		key := b2test.Key{ID: "sandbox-" + name, Secret: "K-sandbox-" + name}
		if name == "default" {
			key = srv.MasterKey()
		} else {
			srv.AddKey(key)
		}
		cfgs[name] = b2.Config{KeyID: key.ID, Key: b2.Secret(key.Secret), RealmURL: srv.URL}
	}
	return &sandbox{srv: srv, files: files}, cfgs
}

// warn logs, loudly, that the worker is not talking to Backblaze.
func (s *sandbox) warn(log *slog.Logger) {
	log.Warn("SANDBOX MODE: NOT talking to Backblaze B2; every B2 call goes to an in-process fake",
		"fake_url", s.srv.URL, "bucket", SandboxBucket, "files", s.files,
		"hint", "set B2_APPLICATION_KEY_ID and B2_APPLICATION_KEY (or --config) to use real B2")
}

func (s *sandbox) close() { s.srv.Close() }

// Demo data: six months of CSV exports with a JSON manifest each, a month of hourly logs and a
// catalogue of product images. Sizes and upload times are derived from the names, so every run
// lists the same data.
const (
	demoMonths        = 6
	demoPartsPerMonth = 400
	demoLogDays       = 31
	demoImages        = 600
)

// seedDemo fills the demo bucket and returns the number of files added.
func seedDemo(srv *b2test.Server) int {
	srv.CreateBucket(SandboxBucket)
	n := 0
	add := func(name, contentType string, at time.Time, info map[string]string) {
		srv.AddFile(SandboxBucket, b2test.File{
			Name:            name,
			Size:            sizeOf(name),
			ContentType:     contentType,
			UploadTimestamp: at.UnixMilli(),
			Info:            info,
		})
		n++
	}
	for m := 1; m <= demoMonths; m++ {
		month := time.Date(2026, time.Month(m), 1, 0, 0, 0, 0, time.UTC)
		dir := fmt.Sprintf("exports/%s/", month.Format("2006-01"))
		end := month.AddDate(0, 1, 0)
		for p := range demoPartsPerMonth {
			add(fmt.Sprintf("%spart-%04d.csv", dir, p), "text/csv",
				end.Add(time.Duration(p)*time.Second), map[string]string{"src_last_modified_millis": fmt.Sprint(end.UnixMilli())})
		}
		add(dir+"manifest.json", "application/json", end.Add(time.Hour), nil)
		add(dir+"schema.json", "application/json", end.Add(time.Hour), nil)
	}
	for d := 1; d <= demoLogDays; d++ {
		day := time.Date(2026, time.May, d, 0, 0, 0, 0, time.UTC)
		for h := 0; h < 24; h += 2 {
			at := day.Add(time.Duration(h+2) * time.Hour)
			add(fmt.Sprintf("logs/%s/app-%02d.log.gz", day.Format("2006/01/02"), h), "application/gzip", at, nil)
		}
	}
	for i := range demoImages {
		at := time.Date(2025, time.November, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)
		add(fmt.Sprintf("images/products/sku-%05d.jpg", 10000+i*7), "image/jpeg", at, nil)
		if i%10 == 0 {
			add(fmt.Sprintf("images/products/thumbs/sku-%05d.webp", 10000+i*7), "image/webp", at, nil)
		}
	}
	add("README.txt", "text/plain", time.Date(2025, time.October, 1, 0, 0, 0, 0, time.UTC), nil)
	return n
}

// sizeOf returns a stable, plausible size for a demo file name.
func sizeOf(name string) int64 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return 2048 + int64(h.Sum32()%(4<<20))
}
