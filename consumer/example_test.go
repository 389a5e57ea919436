package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/schema"
)

// echo answers every request with its own payload. An empty request gets an error reply, which
// the consumer writes (Config.Errors), and is dead-lettered.
var echo = consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message, w consumer.ReplyWriter) error {
	if len(m.Data) == 0 {
		return consumer.Permanent(errors.New("empty request"))
	}
	return w.Send(ctx, consumer.Reply{
		Header: consumer.Header{schema.HeaderStatus: {schema.StatusOK}},
		Data:   m.Data,
	})
})

// A worker process: connect (reconnecting forever), register the operations, run until
// interrupted, then drain.
func ExampleWorker() {
	nc, err := nats.Connect(nats.DefaultURL, nats.MaxReconnects(-1))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()

	w, err := consumer.New(nc, consumer.Config{Concurrency: 8, AckWait: 30 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	w.Handle(schema.OpAuthorize, echo, nil)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := w.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

func ExamplePermanent() {
	err := fmt.Errorf("decode request: %w", consumer.Permanent(errors.New("bad json")))
	fmt.Println(consumer.IsPermanent(err), err)
	// Output: true decode request: bad json
}

func ExampleRetryAfter() {
	err := fmt.Errorf("list files: %w", consumer.RetryAfter(errors.New("429 too many requests"), 5*time.Second))
	d, ok := consumer.RetryAfterOf(err)
	fmt.Println(d, ok, consumer.IsPermanent(err))
	// Output: 5s true false
}
