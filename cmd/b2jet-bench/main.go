package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// bench is one run of the program.
type bench struct {
	sz   sizes
	log  io.Writer         // progress lines
	bins map[string]string // binaries by main package (see build); built into tmp when missing
	tmp  string
	// hiding holds scenario 3's msgs/s by run, for scenario 6's ratio.
	hiding map[hidingKey]sample
	// profileDir, if set, receives a CPU profile of each b2jet worker of scenarios 1 and 2
	// (b2jet-<n>.pprof) and of scenario 4's listings (listing-<n>.pprof), n counting them.
	profileDir string
	profiles   int
}

func newBench(sz sizes, log io.Writer, tmp string) *bench {
	return &bench{sz: sz, log: log, bins: map[string]string{}, tmp: tmp, hiding: map[hidingKey]sample{}}
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// scenario is one numbered scenario of issue #6.
type scenario struct {
	num  int
	name string
	run  func(context.Context, *bench) (section, error)
}

var scenarios = []scenario{
	{1, "overhead", func(ctx context.Context, b *bench) (section, error) {
		r, err := b.overhead(ctx)
		return r.section(b.sz), err
	}},
	{2, "live latency", func(ctx context.Context, b *bench) (section, error) {
		r, err := b.latency(ctx)
		return r.section(b.sz), err
	}},
	{3, "latency hiding", func(ctx context.Context, b *bench) (section, error) {
		r, err := b.hidingAll(ctx)
		return r.section(b.sz), err
	}},
	{4, "big listing", func(ctx context.Context, b *bench) (section, error) {
		r, err := b.listing(ctx)
		return r.section(b.sz), err
	}},
	{5, "scale-out", func(ctx context.Context, b *bench) (section, error) {
		r, err := b.scaleOut(ctx)
		return r.section(b.sz), err
	}},
	{6, "session cache under expiry", func(ctx context.Context, b *bench) (section, error) {
		r, err := b.expiry(ctx)
		return r.section(b.sz, b.hiding), err
	}},
	{7, "resumed listing", func(ctx context.Context, b *bench) (section, error) {
		r, err := b.resume(ctx)
		return r.section(b.sz), err
	}},
	{8, "fairness", func(ctx context.Context, b *bench) (section, error) {
		r, err := b.fairness(ctx)
		return r.section(b.sz), err
	}},
	{9, "idle cost", func(ctx context.Context, b *bench) (section, error) {
		r, err := b.idle(ctx)
		return r.section(b.sz), err
	}},
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("b2jet-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "write the report into this file (between its b2jet-bench markers); empty: stdout only")
	quick := fs.Bool("quick", false, "smaller workloads (a few minutes instead of ~15)")
	reps := fs.Int("reps", 0, "repetitions of each measurement (default 3)")
	only := fs.String("scenarios", "1,2,3,4,5,6,7,8,9", "comma-separated scenario numbers to run")
	bin := fs.String("b2jet", "", "b2jet binary (default: built from this module)")
	encoding := fs.String("encoding", "", "request encoding: json (default) or msgpack")
	profile := fs.String("cpu-profile", "", "directory for a CPU profile of each b2jet worker of scenarios 1 and 2 (b2jet-<n>.pprof) and of scenario 4's listings (listing-<n>.pprof; go tool pprof)")
	conc := fs.Int("concurrency", 0, "b2jet's --concurrency in scenarios 1 and 2 (default: the worker's own default)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	sz := fullSizes()
	if *quick {
		sz = quickSizes()
	}
	if *reps > 0 {
		sz.Reps = *reps
	}
	if *encoding != "" {
		if *encoding != "json" && *encoding != "msgpack" {
			fmt.Fprintf(stderr, "b2jet-bench: -encoding %q is neither json nor msgpack\n", *encoding)
			return 2
		}
		sz.Encoding = *encoding
	}
	if *conc > 0 {
		sz.Concurrency = *conc
	}
	chosen, err := pick(*only)
	if err != nil {
		fmt.Fprintln(stderr, "b2jet-bench:", err)
		return 2
	}
	tmp, err := os.MkdirTemp("", "b2jet-bench-")
	if err != nil {
		fmt.Fprintln(stderr, "b2jet-bench:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	b := newBench(sz, stdout, tmp)
	if *bin != "" {
		b.bins[b2jetPkg] = *bin
	}
	if *profile != "" {
		if err := os.MkdirAll(*profile, 0o755); err != nil {
			fmt.Fprintln(stderr, "b2jet-bench:", err)
			return 1
		}
		b.profileDir = *profile
	}
	rep := &report{Started: time.Now(), Command: command(args), Sizes: sz}
	b.logf("b2jet-bench on %s", machine())
	failed := false
	for _, sc := range chosen {
		b.logf("scenario %d: %s", sc.num, sc.name)
		s, err := sc.run(ctx, b)
		if err != nil {
			failed = true
			fmt.Fprintf(stderr, "b2jet-bench: scenario %d (%s): %v\n", sc.num, sc.name, err)
			s.Notes = append(s.Notes, fmt.Sprintf("**This scenario failed:** %v", err))
		}
		writeSection(stdout, s)
		rep.Sections = append(rep.Sections, s)
		if ctx.Err() != nil {
			break
		}
	}
	rep.Elapsed = time.Since(rep.Started)
	if *out != "" && ctx.Err() == nil {
		if err := rep.writeFile(*out); err != nil {
			fmt.Fprintln(stderr, "b2jet-bench:", err)
			return 1
		}
		b.logf("wrote %s", *out)
	}
	if failed || ctx.Err() != nil {
		return 1
	}
	return 0
}

// pick returns the scenarios named by a list like "1,3,6".
func pick(list string) ([]scenario, error) {
	var out []scenario
	for f := range strings.SplitSeq(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("-scenarios: %q is not a number", f)
		}
		i := slices.IndexFunc(scenarios, func(s scenario) bool { return s.num == n })
		if i < 0 {
			return nil, fmt.Errorf("-scenarios: no scenario %d (1..%d)", n, len(scenarios))
		}
		out = append(out, scenarios[i])
	}
	if len(out) == 0 {
		return nil, errors.New("-scenarios: none chosen")
	}
	return out, nil
}

// command is how this run was started, for the report.
func command(args []string) string {
	return strings.TrimSpace("go run ./cmd/b2jet-bench " + strings.Join(args, " "))
}
