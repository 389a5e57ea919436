// Package schema owns the wire contract between publishers and b2jet workers (contract version
// 1, see docs/contract.md): subjects, header names, request and reply bodies, their msgpack and
// JSON encodings, request validation, dead-letter headers and the glob syntax of `match` (in
// subpackage glob).
//
// It is a leaf: it imports only the standard library and msgpack, never NATS or the B2 client, so
// that publishers, tools and tests can use it on their own.
//
// Both encodings carry the same values: field names are camelCase, times are RFC 3339 strings and
// sizes and counts are integers (no msgpack timestamp extension). A message without Content-Type
// is msgpack.
//
// The types and functions of this package are safe for concurrent use; the wire types are plain
// values.
package schema

// Version is the version of the wire contract implemented by this package.
const Version = 1
