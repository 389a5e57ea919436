package schema

// ResolveRequestID returns the request id by the contract's order: the body's id, else the
// B2-Request-Id header, else Nats-Msg-Id, else fallback (usually a generated id). Header keys are
// matched exactly, as NATS does; the first non-empty value of a header within the limit counts.
//
// The result is never longer than MaxRequestIDBytes, since it labels every reply, log line and
// dead letter of the request: a body id or header value over the limit is skipped in favour of
// the next source, and a fallback over it is cut to it (at a rune boundary). Such a request is
// refused as invalid_request (the body id by DecodeRequest, header ids by the consumer), and the
// id resolved here is what its error reply and dead letter carry.
func ResolveRequestID(bodyID string, h map[string][]string, fallback string) string {
	if usableID(bodyID) {
		return bodyID
	}
	for _, key := range []string{HeaderRequestID, HeaderMsgID} {
		for _, v := range h[key] {
			if usableID(v) {
				return v
			}
		}
	}
	return truncateUTF8(fallback, MaxRequestIDBytes)
}

func usableID(id string) bool { return id != "" && len(id) <= MaxRequestIDBytes }
