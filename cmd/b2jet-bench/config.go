package main

import (
	"time"
)

// sizes are the workloads of every scenario.
type sizes struct {
	// Reps is how many times each measurement is repeated (interleaved with its baseline).
	Reps int
	// Encoding of the requests, and so of the replies: "json" or "msgpack".
	Encoding string

	// Scenarios 1 (overhead) and 2 (live latency): b2jet's --concurrency (0: the worker's
	// default) and the raw loop's handler goroutines.
	Concurrency         int
	BaselineConcurrency int
	// OverheadRequests is the backlog of cached authorize requests drained in scenario 1.
	OverheadRequests int
	// Rates (requests/s) and RateDuration (publishing time per rate) of scenario 2.
	Rates        []int
	RateDuration time.Duration

	// B2Latency is added by the fake to every list call in scenarios 6 and 7.
	B2Latency time.Duration
	// Hiding are the runs of scenario 3; the first one has the target.
	Hiding []hidingRun

	// ListNames in one bucket, listed with allPages in pages of ListPage names (scenario 4).
	ListNames int
	ListPage  int
	// SlowPages pages of ListPage names, each list call SlowLatency long, are listed with
	// allPages too (scenario 4).
	SlowPages   int
	SlowLatency time.Duration

	// ScaleProcs worker processes of ScaleConcurrency each share ScaleRequests list requests
	// whose B2 calls take ScaleLatency (scenario 5).
	ScaleProcs       []int
	ScaleConcurrency int
	ScaleRequests    int
	ScaleLatency     time.Duration

	// ExpiryRequests list requests drained by ExpiryProcs worker processes, ExpiryConcurrency in
	// all, while every token expires each ExpiryEvery list calls (scenario 6).
	ExpiryRequests    int
	ExpiryEvery       int
	ExpiryConcurrency int
	ExpiryProcs       int

	// ResumePages pages of ResumePage names are listed with allPages; the worker is killed once
	// B2 was asked for page ResumeKillAt (scenario 7).
	ResumePages  int
	ResumePage   int
	ResumeKillAt int

	// Scenario 8: account A publishes FloodRequests list requests whose B2 calls take
	// FloodLatency; QuietAfter later account B publishes QuietRequests (B2 adds nothing).
	FloodRequests int
	FloodLatency  time.Duration
	QuietAfter    time.Duration
	QuietRequests int

	// Scenario 9: IdleWorkers processes serve IdleAccounts accounts with no traffic; CPU is
	// measured over IdleFor, IdleSettle after every worker pulls.
	IdleAccounts int
	IdleWorkers  int
	IdleFor      time.Duration
	IdleSettle   time.Duration
}

// hidingRun is one row of scenario 3: Requests single-page list requests with B2 calls of
// Latency, served by one worker of Concurrency.
type hidingRun struct {
	Latency     time.Duration
	Concurrency int
	Requests    int
}

// fullSizes are the sizes of issue #6.
func fullSizes() sizes {
	return sizes{
		Reps:                3,
		Encoding:            "json",
		BaselineConcurrency: 64,
		OverheadRequests:    200_000,
		Rates:               []int{5_000, 10_000, 20_000},
		RateDuration:        4 * time.Second,
		B2Latency:           20 * time.Millisecond,
		Hiding: []hidingRun{
			{Latency: 200 * time.Millisecond, Concurrency: 64, Requests: 3_200},
			{Latency: 20 * time.Millisecond, Concurrency: 64, Requests: 10_000},
			{Latency: 20 * time.Millisecond, Concurrency: 256, Requests: 20_000},
		},
		ListNames:         1_000_000,
		ListPage:          10_000,
		SlowPages:         20,
		SlowLatency:       300 * time.Millisecond,
		ScaleProcs:        []int{1, 2, 4},
		ScaleConcurrency:  32,
		ScaleRequests:     2_560,
		ScaleLatency:      200 * time.Millisecond,
		ExpiryRequests:    100_000,
		ExpiryEvery:       10_000,
		ExpiryConcurrency: 256,
		ExpiryProcs:       4,
		ResumePages:       100,
		ResumePage:        1000,
		ResumeKillAt:      50,
		FloodRequests:     2_000,
		FloodLatency:      100 * time.Millisecond,
		QuietAfter:        time.Second,
		QuietRequests:     20,
		IdleAccounts:      100,
		IdleWorkers:       4,
		IdleFor:           30 * time.Second,
		IdleSettle:        5 * time.Second,
	}
}

// quickSizes are a few times smaller, for a run of a few minutes.
func quickSizes() sizes {
	s := fullSizes()
	s.OverheadRequests = 50_000
	s.RateDuration = 2 * time.Second
	s.Hiding = []hidingRun{
		{Latency: 200 * time.Millisecond, Concurrency: 64, Requests: 1_280},
		{Latency: 20 * time.Millisecond, Concurrency: 64, Requests: 5_000},
		{Latency: 20 * time.Millisecond, Concurrency: 256, Requests: 5_000},
	}
	s.ListNames = 250_000
	s.ScaleRequests = 1_280
	s.ExpiryRequests = 25_000
	s.ExpiryEvery = 2_500
	s.IdleFor = 10 * time.Second
	return s
}

// smokeSizes make every scenario run in a moment; TestSmoke uses them.
func smokeSizes() sizes {
	return sizes{
		Reps:                2,
		Encoding:            "json",
		BaselineConcurrency: 8,
		OverheadRequests:    300,
		Rates:               []int{200, 400},
		RateDuration:        300 * time.Millisecond,
		// Scenario 7 kills its first worker within the ten pages after page 10: at 5 ms a page,
		// a stall of the loaded test process shorter than 50 ms cannot make it miss them.
		B2Latency: 5 * time.Millisecond,
		Hiding: []hidingRun{
			{Latency: 20 * time.Millisecond, Concurrency: 4, Requests: 40},
			{Latency: 2 * time.Millisecond, Concurrency: 16, Requests: 200},
		},
		ListNames:         10_000,
		ListPage:          1_000,
		SlowPages:         5,
		SlowLatency:       20 * time.Millisecond,
		ScaleProcs:        []int{1, 2},
		ScaleConcurrency:  4,
		ScaleRequests:     40,
		ScaleLatency:      10 * time.Millisecond,
		ExpiryRequests:    300,
		ExpiryEvery:       100,
		ExpiryConcurrency: 8,
		ExpiryProcs:       4,
		ResumePages:       20,
		ResumePage:        100,
		ResumeKillAt:      10,
		FloodRequests:     100,
		FloodLatency:      20 * time.Millisecond,
		QuietAfter:        100 * time.Millisecond,
		QuietRequests:     5,
		IdleAccounts:      5,
		IdleWorkers:       2,
		IdleFor:           time.Second,
		IdleSettle:        500 * time.Millisecond,
	}
}
