package client

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/b2jet/b2jet/schema"
)

// Request is one request in the form Publish and Batch.Publish send it: the layer under
// Authorize, ListFileNames and Files, for publishers that read the replies themselves (a load
// generator, replies captured in a stream, a test of the contract's wire form).
type Request struct {
	// Op is the operation, schema.OpAuthorize or schema.OpListFileNames. Required.
	Op string
	// Account names the request's B2 account; default Options.Account.
	Account string
	// Body is the request (a schema.AuthorizeRequest, a schema.ListFileNamesRequest, or a value
	// that encodes like one), encoded in the client's encoding. It is sent as given: unlike
	// Authorize and List, Publish does not validate it, so that the workers' answer to a bad
	// request can be seen.
	Body any
	// Data, instead of Body, is sent byte for byte: a request encoded already, or republished
	// (a dead letter's payload). Its Content-Type is Header's, else the client's encoding's.
	Data []byte
	// ReplyTo is where the workers send the replies. Empty: a fresh inbox that Publish subscribes
	// before the request is published, and that the returned Call reads.
	ReplyTo string
	// MsgID is the request's Nats-Msg-Id; default Header's, else a random one. JetStream stores
	// a message id once per duplicate window: publish again with the same id to retry a publish
	// whose PubAck was lost without storing the request twice.
	MsgID string
	// Header holds further headers (B2-Request-Id, headers the workers carry over to dead
	// letters). Reply-To is always set from ReplyTo; traceparent from the context
	// (WithTraceparent) unless Header has one.
	Header nats.Header
}

// message builds the NATS message of r, without its Reply-To.
func (c *Client) message(ctx context.Context, r Request) (*nats.Msg, error) {
	account := cmp.Or(r.Account, c.opts.Account)
	switch {
	case !schema.ValidToken(r.Op):
		return nil, invalidRequest(fmt.Errorf("b2jet client: operation %q must be one subject token", r.Op))
	case account != "" && !schema.ValidToken(account):
		return nil, invalidRequest(fmt.Errorf("b2jet client: account %q must be one subject token", account))
	case r.Data != nil && r.Body != nil:
		return nil, invalidRequest(errors.New("b2jet client: a request has a Body or Data, not both"))
	case r.Data == nil && r.Body == nil:
		return nil, invalidRequest(errors.New("b2jet client: a request needs a Body or Data"))
	}
	msg := nats.NewMsg(c.subjects.Request(r.Op, account))
	for k, vs := range r.Header {
		msg.Header[k] = append([]string(nil), vs...)
	}
	msg.Data = r.Data
	if r.Data == nil {
		data, err := c.codec.Marshal(r.Body)
		if err != nil {
			return nil, fmt.Errorf("b2jet client: encoding the request: %w", err)
		}
		msg.Data = data
		msg.Header.Set(schema.HeaderContentType, c.codec.ContentType())
	} else if msg.Header.Get(schema.HeaderContentType) == "" {
		msg.Header.Set(schema.HeaderContentType, c.codec.ContentType())
	}
	if id := cmp.Or(r.MsgID, msg.Header.Get(schema.HeaderMsgID)); id != "" {
		msg.Header.Set(schema.HeaderMsgID, id)
	} else {
		msg.Header.Set(schema.HeaderMsgID, rand.Text())
	}
	if tp := traceparent(ctx); tp != "" && msg.Header.Get(schema.HeaderTraceParent) == "" {
		msg.Header.Set(schema.HeaderTraceParent, tp)
	}
	return msg, nil
}
