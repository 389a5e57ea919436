package ops

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/b2jet/b2jet/schema"
)

// The worker status service (see "Worker discovery" in the package doc).
const (
	// ServiceName is the micro service name every worker registers.
	ServiceName = "b2jet"
	// StatusEndpoint is the name of the endpoint that answers with a WorkerStatus.
	StatusEndpoint = "status"
	// DevVersion is the service version registered when the worker's version is not semantic
	// versioning (micro requires it); WorkerStatus.Version keeps the real one.
	DevVersion = "0.0.0-dev"
)

// StatusSubject is the subject of the status endpoint under s's prefix, e.g. "b2.status". Every
// worker answers a request there (no queue group).
func StatusSubject(s schema.Subjects) string {
	return strings.TrimSuffix(s.RequestWildcard(), ".req.>") + ".status"
}

// WorkerStatus is what one worker reports about itself. Snapshot functions fill the maps; the
// service fills ID, Version, Started and Uptime.
type WorkerStatus struct {
	// ID is the micro service instance id (as in `nats micro info b2jet <id>`).
	ID string `json:"id"`
	// Version is the worker's build version as given to RegisterWorker.
	Version string `json:"version"`
	// Started is when the worker registered (or when the snapshot says it started).
	Started time.Time `json:"started"`
	// Uptime is the time since Started when the status was taken, rounded to a second.
	Uptime string `json:"uptime"`
	// InFlight is the number of requests being handled, per operation.
	InFlight map[string]int `json:"inFlight,omitempty"`
	// Breakers is each circuit breaker's state ("closed", "open", "half-open"), per account and
	// operation.
	Breakers map[string]map[string]string `json:"breakers,omitempty"`
	// SessionAge is the age of the cached B2 session, per account (e.g. "3h2m0s").
	SessionAge map[string]string `json:"sessionAge,omitempty"`
	// Paused is how much longer each paused account's Retry-After pause lasts (e.g. "2.5s"): the
	// fleet's, as this worker sees it. Accounts without a pause are absent.
	Paused map[string]string `json:"paused,omitempty"`
	// Consumers are, per operation, the shared consumer settings the worker runs by and whether
	// they differ from its flags (see WorkerConsumer).
	Consumers map[string]WorkerConsumer `json:"consumers,omitempty"`
	// UpdateConsumerSettings is true when the worker writes its flags onto the consumers
	// (--update-consumer-settings) instead of adopting theirs.
	UpdateConsumerSettings bool `json:"updateConsumerSettings,omitempty"`
	// DeadLettersPending is the number of requests whose dead letter the worker could not store
	// yet and keeps retrying; PendingDeadLetters are their request stream sequences (at most
	// MaxPendingListed of them).
	DeadLettersPending int      `json:"deadLettersPending"`
	PendingDeadLetters []uint64 `json:"pendingDeadLetters,omitempty"`
	// Trim is what the worker's trim of the request stream did; nil when it does not say.
	Trim *WorkerTrim `json:"trim,omitempty"`
	// FleetStateFallback names, per fleet state bucket (B2_SESSIONS, B2_FLEET), why the worker
	// uses its process-local state instead (the bucket cannot be reached); absent while it uses
	// them all.
	FleetStateFallback map[string]string `json:"fleetStateFallback,omitempty"`
	// Fleet is the worker's view of the state the fleet shares in bucket B2_FLEET (its fall back
	// is in FleetStateFallback); nil when it does not say.
	Fleet *WorkerFleet `json:"fleet,omitempty"`
}

// WorkerFleet is a worker's view of the fleet state: the live workers and the fleet's B2
// transactions of the UTC day.
type WorkerFleet struct {
	Bucket string `json:"bucket"`
	// Workers is how many live workers it sees, itself included.
	Workers int `json:"workers,omitempty"`
	// Day (YYYY-MM-DD, UTC) is the day of Transactions: per account and billing class, the
	// fleet's count as the worker knows it. Budgets are the accounts' daily budgets, where set.
	Day          string                      `json:"day,omitempty"`
	Transactions map[string]map[string]int64 `json:"transactions,omitempty"`
	Budgets      map[string]int64            `json:"budgets,omitempty"`
}

// TransactionsSummary says account's B2 transactions of f.Day by class: "C 1234 of 5000", with
// the budget where one is set, and "(budget spent)" once it is. The values are a remote worker's:
// sanitize the result before showing it.
func (f *WorkerFleet) TransactionsSummary(account string) string {
	byClass, budget := f.Transactions[account], f.Budgets[account]
	var parts []string
	for _, class := range slices.Sorted(maps.Keys(byClass)) {
		part := fmt.Sprintf("%s %d", class, byClass[class])
		if class == "C" && budget > 0 {
			part += fmt.Sprintf(" of %d", budget)
			if byClass[class] >= budget {
				part += " (budget spent)"
			}
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, ", ")
}

// WorkerTrim is a worker's trim of the request stream (consumer.TrimStatus): when the stream
// holds At percent of its max messages or max bytes, the worker purges its oldest answered
// requests down to To percent.
type WorkerTrim struct {
	// Off is true when the worker does not trim; At and To are its marks otherwise.
	Off bool `json:"off,omitempty"`
	At  int  `json:"at,omitempty"`
	To  int  `json:"to,omitempty"`
	// Trimmed is how many requests the worker purged since it started.
	Trimmed uint64 `json:"trimmed"`
	// LastAt, LastCount, LastBelowSeq and LastReason describe its last trim: when, how many
	// requests, below which stream sequence, and which limit asked for it ("messages", "bytes").
	LastAt       time.Time `json:"lastAt,omitzero"`
	LastCount    uint64    `json:"lastCount,omitempty"`
	LastBelowSeq uint64    `json:"lastBelowSeq,omitempty"`
	LastReason   string    `json:"lastReason,omitempty"`
	// Blocked says what held its last check back while the stream stayed at or above At (a
	// consumer behind, a pending dead letter); empty otherwise.
	Blocked string `json:"blocked,omitempty"`
}

// WorkerConfig configures RegisterWorker.
type WorkerConfig struct {
	// Subjects is the subject prefix the worker serves; the zero value uses "b2".
	Subjects schema.Subjects
	// Version is the worker's build version; any string ("" reads as "dev").
	Version string
	// Snapshot returns the worker's live state. It is called for every status request (and every
	// `nats micro stats`), from a NATS subscription goroutine: it must be fast and safe for
	// concurrent use. Nil reports only the identity.
	Snapshot func() WorkerStatus
}

// semver is the pattern micro checks a service version against (https://semver.org/).
var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// serviceVersion is version as micro accepts it: without a leading "v", or DevVersion when it is
// not semantic versioning.
func serviceVersion(version string) string {
	v := strings.TrimPrefix(version, "v")
	if semver.MatchString(v) {
		return v
	}
	return DevVersion
}

// RegisterWorker registers the worker's status service on nc: a micro service named
// ServiceName whose endpoint StatusEndpoint listens on StatusSubject without a queue group and
// answers with the worker's WorkerStatus as JSON. The same status is the endpoint's data in
// `nats micro stats`. Stop the returned service on shutdown (closing nc stops it too). As micro
// requires, set nc's closed and error handlers before calling it.
func RegisterWorker(nc *nats.Conn, cfg WorkerConfig) (micro.Service, error) {
	if nc == nil {
		return nil, errors.New("ops: RegisterWorker: nil NATS connection")
	}
	version := cfg.Version
	if version == "" {
		version = "dev"
	}
	// status is set once the service exists; a STATS request may arrive before that, so it is
	// read and written atomically.
	var status atomic.Pointer[func() WorkerStatus]
	svc, err := micro.AddService(nc, micro.Config{
		Name:        ServiceName,
		Version:     serviceVersion(version),
		Description: "b2jet worker: Backblaze B2 requests over JetStream",
		Metadata: map[string]string{
			"prefix":  strings.TrimSuffix(StatusSubject(cfg.Subjects), ".status"),
			"version": version,
		},
		StatsHandler: func(*micro.Endpoint) any {
			ws, err := safeStatus(status.Load())
			if err != nil {
				return map[string]string{"error": err.Error()}
			}
			return ws
		},
	})
	if err != nil {
		return nil, fmt.Errorf("ops: register worker service: %w", err)
	}
	id, started := svc.Info().ID, svc.Stats().Started
	statusFn := func() WorkerStatus {
		var ws WorkerStatus
		if cfg.Snapshot != nil {
			ws = cfg.Snapshot()
		}
		ws.ID, ws.Version = id, version
		if ws.Started.IsZero() {
			ws.Started = started
		}
		ws.Uptime = time.Since(ws.Started).Round(time.Second).String()
		return ws
	}
	status.Store(&statusFn)
	err = svc.AddEndpoint(StatusEndpoint, micro.HandlerFunc(func(req micro.Request) {
		ws, err := safeStatus(&statusFn)
		if err != nil {
			_ = req.Error("500", err.Error(), nil)
			return
		}
		_ = req.RespondJSON(ws)
	}), micro.WithEndpointSubject(StatusSubject(cfg.Subjects)), micro.WithEndpointQueueGroupDisabled())
	if err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("ops: register worker status endpoint: %w", err)
	}
	return svc, nil
}

// safeStatus calls status, turning a panic of the snapshot into an error.
func safeStatus(status *func() WorkerStatus) (ws WorkerStatus, err error) {
	if status == nil {
		return WorkerStatus{}, errors.New("ops: worker status not ready yet")
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("ops: worker status snapshot panicked: %v", r)
		}
	}()
	return (*status)(), nil
}
