package ops_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/consumer/ops"
	"github.com/b2jet/b2jet/schema"
)

// `b2jet dlq redrive --all --op list_file_names --code unavailable --rate 20`: redrive what B2's
// outage left behind, twenty per second.
func ExampleOps_Redrive() {
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	o := ops.New(js, ops.Config{})

	results, err := o.Redrive(context.Background(), ops.RedriveOptions{
		Filter: ops.Filter{Op: schema.OpListFileNames, Code: schema.CodeUnavailable},
		All:    true,
		Rate:   20,
	})
	for _, r := range results {
		fmt.Println(r.Seq, r.Status, r.Reason)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// `b2jet replay --since 1h --op authorize --reply-to ops.replay.results`: reprocess the last hour
// of authorize requests, sending the replies somewhere safe.
func ExampleOps_Replay() {
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	rep, err := ops.New(js, ops.Config{}).Replay(context.Background(), ops.ReplayOptions{
		Since:   time.Hour,
		Op:      schema.OpAuthorize,
		ReplyTo: "ops.replay.results",
	})
	fmt.Printf("selected %d, republished %d, duplicates %d, skipped %d\n",
		rep.Selected, rep.Republished, rep.Duplicates, rep.Skipped)
	if err != nil {
		log.Fatalf("stopped after seq %d: %v", rep.LastSeq, err)
	}
}

// A worker registers its status service next to its consumer; `b2jet status` and
// `nats micro ls b2jet` then list it.
func ExampleRegisterWorker() {
	nc, err := nats.Connect(nats.DefaultURL, nats.MaxReconnects(-1))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	svc, err := ops.RegisterWorker(nc, ops.WorkerConfig{
		Version: "v1.4.0",
		Snapshot: func() ops.WorkerStatus {
			return ops.WorkerStatus{InFlight: map[string]int{schema.OpAuthorize: 0}}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = svc.Stop() }()
	// ... run the worker ...
}
