package schema_test

import (
	"errors"
	"fmt"

	"github.com/b2jet/b2jet/schema"
)

// A worker decodes and validates a request body in the encoding named by its Content-Type.
func ExampleDecodeRequest() {
	codec, err := schema.CodecFor("application/json; charset=utf-8")
	if err != nil {
		panic(err)
	}
	var req schema.ListFileNamesRequest
	body := []byte(`{"bucketName":"my-bucket","match":"exports/2026-05/**.csv","maxFileCount":20000}`)
	if err := schema.DecodeRequest(codec, body, &req); err != nil {
		panic(err)
	}
	err = req.Validate()
	fmt.Println(err)
	fmt.Println(errors.Is(err, schema.ErrInvalidRequest))
	fmt.Println(req.EffectivePrefix())

	err = schema.DecodeRequest(codec, []byte(`{"maxFileCount":"5"}`), &req)
	fmt.Println(err)
	// Output:
	// schema: invalid request: maxFileCount: must be between 1 and 10000, got 20000
	// true
	// exports/2026-05/
	// schema: invalid request: maxFileCount: expected integer, got string
}

// A reply is encoded in the request's encoding; files is [] and nextFileName null on the last
// page of a listing.
func ExampleReply() {
	reply := schema.Reply[schema.ListResult]{
		ID: "req-1", Op: schema.OpListFileNames, OK: true, Attempt: 1, DurationMs: 42,
		Result: &schema.ListResult{BucketID: "4a48fe8875c6214145260818", Part: 1, Final: true},
	}
	b, err := schema.JSON.Marshal(reply)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))
	// Output:
	// {"id":"req-1","op":"list_file_names","ok":true,"result":{"bucketId":"4a48fe8875c6214145260818","files":[],"nextFileName":null,"part":1,"final":true},"attempt":1,"durationMs":42}
}

// Files are split so that every reply part fits the connection's max payload.
func ExamplePartitionFiles() {
	files := make([]schema.File, 100)
	for i := range files {
		files[i] = schema.File{FileName: fmt.Sprintf("logs/%03d.txt", i), Action: "upload", ContentLength: 1024}
	}
	env := schema.Reply[schema.ListResult]{ID: "req-1", Op: schema.OpListFileNames, OK: true,
		Result: &schema.ListResult{BucketID: "b"}}
	const maxPayload = 4096
	overhead, err := schema.EnvelopeOverhead(schema.Msgpack, env)
	if err != nil {
		panic(err)
	}
	chunks, err := schema.PartitionFiles(schema.Msgpack, files, maxPayload-overhead-schema.EnvelopeMargin)
	if err != nil {
		panic(err)
	}
	for i, chunk := range chunks {
		part := env
		part.Result = &schema.ListResult{BucketID: "b", Files: chunk, Part: i + 1, Final: i == len(chunks)-1}
		b, _ := schema.EncodeListPart(schema.Msgpack, part)
		fmt.Println(part.Result.Part, len(chunk), len(b) <= maxPayload)
	}
	// Output:
	// 1 47 true
	// 2 47 true
	// 3 6 true
}

// Operator tools read a dead letter's headers.
func ExampleParseDeadLetter() {
	h := map[string][]string{
		"B2-Request-Id":       {"req-1"},
		"B2-Error-Code":       {"unavailable"},
		"B2-Error":            {"b2: 503 service_unavailable"},
		"B2-Original-Subject": {"b2.req.list_file_names.acme"},
		"B2-Attempts":         {"5"},
		"B2-Stream-Seq":       {"1234"},
		"B2-Failed-At":        {"2026-05-01T12:00:00.5Z"},
	}
	d, err := schema.ParseDeadLetter(h)
	if err != nil {
		panic(err)
	}
	fmt.Println(d.OriginalSubject, d.StreamSeq, d.Attempts, d.FailedAt.Format("15:04:05.000"))
	fmt.Println(schema.DeadLetterMsgID(schema.StreamRequests, d.StreamSeq))
	// Output:
	// b2.req.list_file_names.acme 1234 5 12:00:00.500
	// B2_REQUESTS-1234
}

func ExampleResolveRequestID() {
	h := map[string][]string{"Nats-Msg-Id": {"pub-42"}}
	fmt.Println(schema.ResolveRequestID("", h, "generated"))
	fmt.Println(schema.ResolveRequestID("body-id", h, "generated"))
	// Output:
	// pub-42
	// body-id
}
