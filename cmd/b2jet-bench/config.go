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

	// Scenario 1 (overhead) and 2 (live latency): worker concurrency and max ack pending, shared
	// by b2jet and the baseline loop.
	Concurrency   int
	MaxAckPending int
	// OverheadRequests is the backlog of cached authorize requests drained in scenario 1.
	OverheadRequests int
	// Rates (requests/s) and RateDuration (publishing time per rate) of scenario 2.
	Rates        []int
	RateDuration time.Duration

	// B2Latency is added by the fake to every list call in scenarios 3, 5 and 6.
	B2Latency time.Duration
	// HidingRequests single-page list requests at each of HidingConcurrency (scenario 3).
	HidingRequests    int
	HidingConcurrency []int

	// ListNames in one bucket, listed with allPages in pages of ListPage names (scenario 4).
	ListNames int
	ListPage  int

	// ScaleProcs worker processes of ScaleConcurrency each share ScaleRequests (scenario 5).
	ScaleProcs       []int
	ScaleConcurrency int
	ScaleRequests    int

	// ExpiryRequests list requests at ExpiryConcurrency while every token expires each
	// ExpiryEvery list calls (scenario 6).
	ExpiryRequests    int
	ExpiryEvery       int
	ExpiryConcurrency int

	// ResumePages pages of ResumePage names are listed with allPages; the worker is killed once
	// B2 was asked for page ResumeKillAt (scenario 7).
	ResumePages  int
	ResumePage   int
	ResumeKillAt int
}

// fullSizes are the sizes of issue #6.
func fullSizes() sizes {
	return sizes{
		Reps:              3,
		Encoding:          "json",
		Concurrency:       64,
		MaxAckPending:     1000,
		OverheadRequests:  200_000,
		Rates:             []int{10_000, 20_000, 40_000},
		RateDuration:      4 * time.Second,
		B2Latency:         20 * time.Millisecond,
		HidingRequests:    20_000,
		HidingConcurrency: []int{64, 256, 1024},
		ListNames:         1_000_000,
		ListPage:          10_000,
		ScaleProcs:        []int{1, 2, 4},
		ScaleConcurrency:  32,
		ScaleRequests:     16_000,
		ExpiryRequests:    100_000,
		ExpiryEvery:       10_000,
		ExpiryConcurrency: 256,
		ResumePages:       100,
		ResumePage:        1000,
		ResumeKillAt:      50,
	}
}

// quickSizes are a few times smaller, for a run of a few minutes.
func quickSizes() sizes {
	s := fullSizes()
	s.OverheadRequests = 50_000
	s.RateDuration = 2 * time.Second
	s.HidingRequests = 5_000
	s.ListNames = 250_000
	s.ScaleRequests = 4_000
	s.ExpiryRequests = 25_000
	s.ExpiryEvery = 2_500
	return s
}

// smokeSizes make every scenario run in a moment; TestSmoke uses them.
func smokeSizes() sizes {
	return sizes{
		Reps:              2,
		Encoding:          "json",
		Concurrency:       8,
		MaxAckPending:     100,
		OverheadRequests:  300,
		Rates:             []int{200, 400},
		RateDuration:      300 * time.Millisecond,
		B2Latency:         2 * time.Millisecond,
		HidingRequests:    200,
		HidingConcurrency: []int{4, 16},
		ListNames:         10_000,
		ListPage:          1_000,
		ScaleProcs:        []int{1, 2},
		ScaleConcurrency:  4,
		ScaleRequests:     100,
		ExpiryRequests:    300,
		ExpiryEvery:       100,
		ExpiryConcurrency: 8,
		ResumePages:       20,
		ResumePage:        100,
		ResumeKillAt:      10,
	}
}
