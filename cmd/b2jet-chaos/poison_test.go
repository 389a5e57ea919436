package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/vmihailenco/msgpack/v5"
)

// poisonRequests returns n list_file_names requests that must each be refused: an error reply
// (when the worker can reply) and a dead letter. They are generated from a fixed seed, so a
// failure names a payload that can be generated again. Every payload is invalid by construction:
// random bytes, truncations, wrong types, oversized or non-UTF-8 strings, byte flips that always
// break the bucket name, and (every 500th) 1 MiB bodies.
func poisonRequests(n int) []request {
	rng := rand.New(rand.NewPCG(7, uint64(n)))
	out := make([]request, n)
	for i := range out {
		r := request{id: fmt.Sprintf("poison-%05d", i), op: "list_file_names"}
		if i%500 == 499 {
			r.data, r.header = mib(rng), jsonHeader()
		} else {
			r.data, r.header = poison(rng, i%8)
		}
		switch {
		case i%13 == 5:
			r.noReply = true
		case i%17 == 6:
			r.replyTo = []string{"$JS.API.STREAM.LIST", "b2.req.authorize", "chaos.reply.*", "bad subject"}[rng.IntN(4)]
		}
		out[i] = r
	}
	return out
}

// valid is the request every mutation starts from.
var valid = map[string]any{"bucketName": chaosBucket, "prefix": "data/0001", "maxFileCount": 5}

func jsonHeader() nats.Header    { return nats.Header{"Content-Type": {"application/json"}} }
func msgpackHeader() nats.Header { return nats.Header{"Content-Type": {"application/msgpack"}} }

// poison returns one invalid payload of the given kind, and its headers.
func poison(rng *rand.Rand, kind int) ([]byte, nats.Header) {
	js, _ := json.Marshal(valid)
	mp, _ := msgpack.Marshal(valid)
	switch kind {
	case 0: // random bytes, with any or no content type
		b := make([]byte, rng.IntN(300))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		hs := []nats.Header{jsonHeader(), msgpackHeader(), {}, {"Content-Type": {"text/plain"}}}
		return b, hs[rng.IntN(len(hs))]
	case 1: // truncated JSON
		return js[:1+rng.IntN(len(js)-1)], jsonHeader()
	case 2: // truncated msgpack
		return mp[:1+rng.IntN(len(mp)-1)], msgpackHeader()
	case 3: // wrong types
		bad := []string{
			`{"bucketName":123}`, `{"bucketName":["chaos-bucket"]}`, `{"bucketName":{"a":1}}`,
			`{"bucketName":"chaos-bucket","maxFileCount":"10"}`, `{"bucketName":"chaos-bucket","prefix":true}`,
			`{"bucketName":"chaos-bucket","allPages":"yes"}`, `{"bucketName":"chaos-bucket","deadline":17}`,
			`{"bucketName":"chaos-bucket","maxFileCount":1e99}`, `{"bucketName":"chaos-bucket","maxFileCount":-1}`,
			`{"bucketName":"chaos-bucket","deadline":"tomorrow"}`, `[]`, `"chaos-bucket"`, `{"bucketName":null}`,
			`{"bucketName":"chaos-bucket","bucketId":"x"}`, `{"bucketName":"chaos-bucket","limit":5}`,
		}
		return []byte(bad[rng.IntN(len(bad))]), jsonHeader()
	case 4: // oversized strings
		big := strings.Repeat("p", 1025+rng.IntN(64<<10))
		field := []string{"prefix", "startFileName", "match", "delimiter"}[rng.IntN(4)]
		b, _ := json.Marshal(map[string]any{"bucketName": chaosBucket, field: big})
		return b, jsonHeader()
	case 5: // invalid UTF-8 in the prefix, as JSON and as msgpack
		bad := "data/" + string([]byte{0xff, 0xfe, byte(rng.UintN(128))})
		if rng.IntN(2) == 0 {
			return []byte(`{"bucketName":"chaos-bucket","prefix":"` + bad + `"}`), jsonHeader()
		}
		b, _ := msgpack.Marshal(map[string]any{"bucketName": chaosBucket, "prefix": bad})
		return b, msgpackHeader()
	case 6: // byte flips: one always inside the bucket name, more anywhere
		b, h := js, jsonHeader()
		if rng.IntN(2) == 0 {
			b, h = mp, msgpackHeader()
		}
		b = bytes.Clone(b)
		at := bytes.Index(b, []byte(chaosBucket)) + rng.IntN(len(chaosBucket))
		b[at] ^= byte(1 + rng.UintN(255))
		for range rng.IntN(4) {
			b[rng.IntN(len(b))] ^= byte(1 + rng.UintN(255))
		}
		return b, h
	default: // msgpack of the wrong shape
		shapes := []any{[]any{chaosBucket}, "chaos-bucket", 42, map[string]any{"bucketName": []byte{0xff}},
			map[string]any{"bucketName": chaosBucket, "maxFileCount": 1.5}, map[string]any{"bucketName": 7}}
		b, _ := msgpack.Marshal(shapes[rng.IntN(len(shapes))])
		return b, msgpackHeader()
	}
}

// mib is a body of 1 MiB: junk, or a request whose prefix is 1 MiB long.
func mib(rng *rand.Rand) []byte {
	if rng.IntN(2) == 0 {
		return bytes.Repeat([]byte{'{'}, 1<<20)
	}
	b, _ := json.Marshal(map[string]any{"bucketName": chaosBucket, "prefix": strings.Repeat("x", 1<<20)})
	return b
}
