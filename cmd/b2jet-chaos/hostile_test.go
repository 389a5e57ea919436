package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/vmihailenco/msgpack/v5"
)

// hostileKinds are the payloads of a hostile publisher, one per way a single message once took
// a worker down or lost a request. Each must end refused at publish, or dead-lettered, and none
// may make a worker exit or grow without bound.
var hostileKinds = []string{
	"long-reply-to", "long-account", "expected-stream", "big-header", "long-msg-id", "long-body-id",
	"deep-msgpack", "deep-json", "quadratic-match", "forged-redrive-id", "escapes", "long-request-id-header",
}

// hostileRequests returns n hostile requests, cycling through hostileKinds. Each carries a short
// B2-Request-Id-free ledger id in its body where the body can hold one, and the ledger also finds
// its dead letter by stream sequence (an over-long id is not echoed).
func hostileRequests(n int) []request {
	out := make([]request, 0, n)
	for i := range n {
		kind := hostileKinds[i%len(hostileKinds)]
		id := fmt.Sprintf("hostile-%s-%04d", kind, i)
		r := request{id: id, op: "list_file_names", hostile: true, header: jsonHeader()}
		body := map[string]any{"id": id, "bucketName": chaosBucket, "prefix": "data/0001", "maxFileCount": 5}
		switch kind {
		case "long-reply-to": // over the server's 4 KiB control line once it is a PUB subject
			r.replyTo = "chaos.reply.hostile." + strings.Repeat("r", 5000)
		case "long-account": // the dead letter's subject would carry it
			r.subject = "b2.req.authorize." + strings.Repeat("a", 4040)
			r.op, r.core = "authorize", true
			body = map[string]any{"id": id}
		case "expected-stream": // copied onto a dead letter, the DLQ would refuse it
			r.header.Set("Nats-Expected-Stream", "B2_REQUESTS")
			body["bucketName"] = "no-such-bucket"
		case "big-header":
			r.header.Set("X-Junk", strings.Repeat("h", 60<<10))
		case "long-msg-id":
			r.header.Set(nats.MsgIdHdr, id+strings.Repeat("m", 40<<10))
		case "long-body-id":
			body["id"] = strings.Repeat("i", 70<<10)
			r.header.Set("B2-Request-Id", id)
		case "deep-msgpack": // an unknown field holding ~1M nested arrays
			var b bytes.Buffer
			head, _ := msgpack.Marshal(map[string]any{"id": id, "bucketName": chaosBucket})
			head[0]++ // one more map entry (a fixmap of 2 becomes 3)
			b.Write(head)
			b.Write([]byte{0xa1, 'x'})
			b.Write(bytes.Repeat([]byte{0x91}, 1<<20))
			b.WriteByte(0xc0)
			r.data, r.header = b.Bytes(), msgpackHeader()
		case "deep-json":
			r.data = []byte(`{"id":"` + id + `","bucketName":"chaos-bucket","x":` +
				strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`)
		case "quadratic-match":
			// 1023 bytes: within the pattern limit, and linear to match since the automaton is
			// bit-parallel, so it may be answered ok (it matches nothing).
			body["match"] = strings.Repeat("*a", 511) + "x"
			body["allPages"] = true
			r.okAllowed = true
		case "forged-redrive-id": // a subject no consumer reads, with an id the tools once derived
			r.subject = "b2.req.noop.globex"
			r.header.Set(nats.MsgIdHdr, "redrive-B2_DLQ-"+strconv.Itoa(i))
			r.unconsumed = true
		case "escapes": // terminal escapes in the subject and headers: an unknown account
			r.subject = "b2.req.authorize.\x1b[31mevil"
			r.op = "authorize"
			r.header.Set("X-Evil", "\x1b[2J\x1b]0;owned\x07")
			body = map[string]any{"id": id}
		case "long-request-id-header":
			r.header.Set("B2-Request-Id", strings.Repeat("q", 100<<10))
		}
		if r.data == nil {
			r.data, _ = json.Marshal(body)
		}
		out = append(out, r)
	}
	return out
}
