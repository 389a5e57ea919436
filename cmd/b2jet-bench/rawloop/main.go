// Command rawloop is the baseline that b2jet-bench measures b2jet against: the least a JetStream
// worker can do per request, written the way the nats.go documentation shows. It creates (or
// binds to) a durable pull consumer with the ack settings of b2jet's, consumes it with
// jetstream Consume(), and hands each message to one of -concurrency handler goroutines, which
// publish a fixed reply to the request's Reply-To header (where b2jet replies) and ack. It
// decodes nothing and calls no B2. It logs ReadyLine once it consumes, and on SIGTERM stops,
// finishes the messages in hand and exits 0 (1 if a reply or ack failed).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/schema"
)

// ReadyLine is logged once the consumer is consumed.
const ReadyLine = "raw loop ready"

func main() {
	server := flag.String("server", nats.DefaultURL, "NATS server URL")
	stream := flag.String("stream", schema.StreamRequests, "request stream")
	durable := flag.String("consumer", "bench_raw", "durable consumer, created if missing")
	filters := flag.String("filters", "", "the consumer's filter subjects, comma separated")
	conc := flag.Int("concurrency", 64, "handler goroutines")
	size := flag.Int("reply-size", 300, "bytes of the fixed reply")
	ackWait := flag.Duration("ack-wait", 30*time.Second, "the consumer's AckWait")
	maxDeliver := flag.Int("max-deliver", 7, "the consumer's MaxDeliver")
	maxAckPending := flag.Int("max-ack-pending", 1000, "the consumer's MaxAckPending")
	flag.Parse()
	cfg := jetstream.ConsumerConfig{Durable: *durable, FilterSubjects: strings.Split(*filters, ","),
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: *ackWait, MaxDeliver: *maxDeliver, MaxAckPending: *maxAckPending}
	if err := run(*server, *stream, cfg, *conc, *size); err != nil {
		fmt.Fprintln(os.Stderr, "rawloop:", err)
		os.Exit(1)
	}
}

func run(url, stream string, cfg jetstream.ConsumerConfig, conc, size int) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	nc, err := nats.Connect(url, nats.Name("b2jet-bench-rawloop"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, stream, cfg)
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	reply := []byte(strings.Repeat("x", size))
	var (
		msgs   = make(chan jetstream.Msg)
		quit   = make(chan struct{})
		wg     sync.WaitGroup
		failed atomic.Int64
	)
	for range conc {
		wg.Go(func() {
			for {
				select {
				case m := <-msgs:
					if err := answer(nc, m, reply); err != nil {
						if failed.Add(1) == 1 {
							fmt.Fprintln(os.Stderr, "rawloop:", err)
						}
					}
				case <-quit:
					return
				}
			}
		})
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-quit:
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		fmt.Fprintln(os.Stderr, "rawloop: consume:", err)
	}))
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	fmt.Println(ReadyLine)
	<-ctx.Done()
	cc.Stop()
	<-cc.Closed()
	close(quit)
	wg.Wait()
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d replies or acks failed", n)
	}
	return nil
}

// answer is the whole per-message work: reply, then ack.
func answer(nc *nats.Conn, m jetstream.Msg, reply []byte) error {
	to := m.Headers().Get(schema.HeaderReplyTo)
	if to == "" {
		return errors.New("a request without Reply-To")
	}
	if err := nc.Publish(to, reply); err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	if err := m.Ack(); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	return nil
}
