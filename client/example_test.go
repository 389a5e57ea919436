package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/b2jet/b2jet/client"
	"github.com/b2jet/b2jet/schema"
)

// List every .jpg under 2026/ of a bucket, through whichever b2jet workers serve the NATS
// server. (Here exampleSandbox starts one: an embedded NATS server and a worker over the B2
// fake; a program would nats.Connect to its own server.)
func Example_files() {
	nc, stop := exampleSandbox()
	defer stop()

	c, err := client.New(nc, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	req := schema.ListFileNamesRequest{BucketName: "photos", Match: "2026/**.jpg"}
	for f, err := range c.Files(context.Background(), req) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(f.FileName, f.ContentLength)
	}
	// Output:
	// 2026/05/01/beach.jpg 2411724
	// 2026/05/02/dunes.jpg 3170001
}

// An error reply is an *client.Error; errors.Is matches it by its code.
func ExampleError() {
	nc, stop := exampleSandbox()
	defer stop()

	c, err := client.New(nc, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.ListFileNames(context.Background(), schema.ListFileNamesRequest{BucketName: "no-such-bucket"})
	var e *client.Error
	fmt.Println(errors.Is(err, client.ErrBucketNotFound), errors.As(err, &e) && !e.Retryable)
	// Output: true true
}
