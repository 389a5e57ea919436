package worker_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/client"
	"github.com/b2jet/b2jet/schema"
	"github.com/b2jet/b2jet/worker"
)

// A program that runs a b2jet worker in its own process, next to its own NATS server: here an
// embedded JetStream server, and the B2 fake in place of Backblaze (a program would give its
// application key and leave RealmURL empty). A request sent with package client is answered.
func Example() {
	dir, err := os.MkdirTemp("", "b2jet-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		log.Fatal(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		log.Fatal("NATS server not ready")
	}
	fake := b2test.NewServer()
	defer fake.Close()
	fake.CreateBucket("photos")
	fake.AddFiles("photos", "2026/beach.jpg", "2026/dunes.jpg")
	key := fake.MasterKey()

	nc, err := nats.Connect(ns.ClientURL(), nats.InProcessServer(ns))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	w, err := worker.New(worker.Config{
		Accounts: map[string]b2.Config{"default": {KeyID: key.ID, Key: b2.Secret(key.Secret), RealmURL: fake.URL}},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	stop, err := w.Start(ctx, nc) // returns once the streams and consumers exist and it pulls
	if err != nil {
		log.Fatal(err)
	}

	c, err := client.New(nc, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	page, err := c.ListFileNames(ctx, schema.ListFileNamesRequest{BucketName: "photos"})
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range page.Files {
		fmt.Println(f.FileName)
	}

	// Drain: in-flight requests finish, the rest stay stored for another worker. A program
	// that serves until it is told to stop calls w.Run(ctx, nc) instead, and cancels ctx.
	if err := stop(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// 2026/beach.jpg
	// 2026/dunes.jpg
}
