package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
)

// startCPUProfile profiles the whole process into path until the returned stop is called (at
// the worker's exit, after the drain), for `go tool pprof`. An empty path profiles nothing.
func startCPUProfile(path string, log *slog.Logger) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, badSetting("--cpu-profile (B2JET_CPU_PROFILE)", "%v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	log.Info("writing a CPU profile", "file", path)
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			log.Warn("cpu profile not written", "file", path, "error", err)
		}
	}, nil
}
