package consumer

import (
	"math"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// SharedSettings are the settings of a consumer that every worker sharing it must agree on: the
// server times deliveries out by AckWait and stops redelivering after MaxDeliver, so a worker
// that believed other values would nak a request expecting a redelivery the server never sends,
// or be cut off by the server's ack timer before its own watchdog.
type SharedSettings struct {
	AckWait time.Duration
	// MaxDeliver is the server's delivery limit; -1 means unlimited.
	MaxDeliver int
	// MaxAttempts is how many deliveries call the handler: MaxDeliver minus the spare deliveries,
	// at least 1 (Config.MaxAttempts when MaxDeliver is unlimited).
	MaxAttempts   int
	MaxAckPending int
}

// lastDelivery is the number of the server's last delivery (math.MaxInt when unlimited).
func (s SharedSettings) lastDelivery() int {
	if s.MaxDeliver < 0 {
		return math.MaxInt
	}
	return s.MaxDeliver
}

// ConsumerSettings are one operation's shared consumer settings: those the worker runs by (read
// from the consumer) and those its Config asks for.
type ConsumerSettings struct {
	// Consumer is the durable consumer's name.
	Consumer string
	// Adopted are the consumer's values, which the worker uses.
	Adopted SharedSettings
	// Configured are the values of the worker's Config, written only when it creates the
	// consumer or with Config.UpdateConsumerSettings.
	Configured SharedSettings
}

// Differs reports whether the consumer's settings are not the ones the worker's Config asks for.
func (s ConsumerSettings) Differs() bool { return s.Adopted != s.Configured }

// configured returns the shared settings c asks for.
func (c Config) configured() SharedSettings {
	return SharedSettings{AckWait: c.AckWait, MaxDeliver: c.maxDeliver(), MaxAttempts: c.MaxAttempts, MaxAckPending: c.MaxAckPending}
}

// adopt returns the shared settings of a consumer with configuration cc.
func (c Config) adopt(cc jetstream.ConsumerConfig) SharedSettings {
	s := SharedSettings{AckWait: cc.AckWait, MaxDeliver: cc.MaxDeliver, MaxAckPending: cc.MaxAckPending}
	if s.AckWait <= 0 {
		s.AckWait = c.AckWait // the server always reports one; be safe with a zero
	}
	if s.MaxDeliver <= 0 {
		s.MaxDeliver, s.MaxAttempts = -1, c.MaxAttempts
	} else {
		s.MaxAttempts = max(1, s.MaxDeliver-spareDeliveries)
	}
	return s
}

// ConsumerSettings returns, per registered operation, the shared settings of its default
// account's consumer: the adopted ones next to the configured ones. Before Setup the adopted ones
// are the configured ones. Each account's consumer has its own (see AccountConsumerSettings).
func (w *Worker) ConsumerSettings() map[string]ConsumerSettings {
	out := make(map[string]ConsumerSettings)
	for _, r := range w.registered() {
		if _, ok := out[r.op]; !ok {
			out[r.op] = r.consumerSettings()
		}
	}
	return out
}

// AccountConsumerSettings returns the shared settings of every consumer the worker pulls, by
// consumer name.
func (w *Worker) AccountConsumerSettings() map[string]ConsumerSettings {
	out := make(map[string]ConsumerSettings)
	for _, r := range w.registered() {
		out[r.consumerName()] = r.consumerSettings()
	}
	return out
}

func (r *opRunner) consumerSettings() ConsumerSettings {
	return ConsumerSettings{Consumer: r.consumerName(), Adopted: r.settings(), Configured: r.w.cfg.configured()}
}

// settings returns the shared settings the operation currently runs by.
func (r *opRunner) settings() SharedSettings {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.adopted {
		return r.w.cfg.configured()
	}
	return r.shared
}

// adoptLocked takes the shared settings of the consumer's configuration cc. It logs, at warn, the
// first adoption of settings that differ from the Config, and every later change (an operator,
// or a worker with UpdateConsumerSettings, changed the consumer). r.mu is held.
func (r *opRunner) adoptLocked(cc jetstream.ConsumerConfig) {
	w := r.w
	s := w.cfg.adopt(cc)
	prev, had := r.shared, r.adopted
	r.shared, r.adopted = s, true
	want := w.cfg.configured()
	switch {
	case !had && s == want, had && s == prev:
		return
	case !had:
		w.log.Warn("consumer settings differ from flags; adopting the consumer's; pass --update-consumer-settings to change them",
			"consumer", r.consumerName(),
			"ack_wait", s.AckWait, "ack_wait_flag", want.AckWait,
			"max_deliver", s.MaxDeliver, "max_deliver_flag", want.MaxDeliver,
			"max_attempts", s.MaxAttempts, "max_attempts_flag", want.MaxAttempts,
			"max_ack_pending", s.MaxAckPending, "max_ack_pending_flag", want.MaxAckPending)
	default:
		w.log.Warn("consumer settings changed; adopting them",
			"consumer", r.consumerName(),
			"ack_wait", s.AckWait, "ack_wait_was", prev.AckWait,
			"max_deliver", s.MaxDeliver, "max_deliver_was", prev.MaxDeliver,
			"max_attempts", s.MaxAttempts, "max_attempts_was", prev.MaxAttempts,
			"max_ack_pending", s.MaxAckPending, "max_ack_pending_was", prev.MaxAckPending,
			"differs_from_flags", s != want)
	}
}
