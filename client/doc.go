// Package client is the publisher's side of the b2jet wire contract (docs/contract.md): a Go
// service calls Authorize, ListFileNames or Files and gets B2's answers as the workers send them.
//
// It owns the publisher's rules, so that no publisher has to write them again:
//
//   - a fresh inbox is subscribed before the request is published, so no reply can be missed;
//   - the request is published to JetStream and the PubAck awaited (the request is stored), with
//     a random Nats-Msg-Id, Content-Type, Reply-To set to the inbox, and traceparent when the
//     context carries one (WithTraceparent);
//   - list replies are read part by part: a part 1 with a higher attempt means a redelivery
//     started the listing over, so names already passed on are skipped (contract 1.0); a part
//     whose number was already seen is dropped, and a redelivery may go on numbering where the
//     last one stopped (1.1); parts of an older delivery still running are dropped. Files
//     therefore yields every file once, in B2 order, against workers of either version;
//   - Options.Timeout bounds the wait for a reply and for each further part (any part, an empty
//     progress part too, starts the wait again); a *TimeoutError names the part it waited for;
//   - an ok:false reply is an *Error, matched by its code with errors.Is(err, ErrBucketNotFound)
//     and the other Err* values.
//
// Under Authorize, ListFileNames and Files lies the layer they are built on, for publishers that
// read the replies themselves: Publish sends a Request as given (an account, a message id, raw
// data and headers of its own, or a ReplyTo that the caller subscribes) and returns the Call,
// whose Next returns the reply messages as they came and whose Listing applies the rules above
// part by part (Listing.NextPart returns each part's message too). A Batch publishes many
// requests without awaiting each PubAck and hands every reply, read from its headers, to a
// callback on one subscription: a load generator's or a fan-out's way in.
//
// Memory is bounded by one reply part (plus what the inbox buffers while the caller is slower
// than the workers, see Options.MaxPendingBytes). The package knows NATS and the wire types of
// package schema, nothing of B2 or of how workers run. A Client is safe for concurrent use; every
// call has its own inbox.
package client
