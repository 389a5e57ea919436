package schema

// ResolveRequestID returns the request id by the contract's order: the body's id, else the
// B2-Request-Id header, else Nats-Msg-Id, else fallback (usually a generated id). Header keys are
// matched exactly, as NATS does; the first non-empty value of a header counts.
func ResolveRequestID(bodyID string, h map[string][]string, fallback string) string {
	if bodyID != "" {
		return bodyID
	}
	for _, key := range []string{HeaderRequestID, HeaderMsgID} {
		if v := firstValue(h, key); v != "" {
			return v
		}
	}
	return fallback
}

func firstValue(h map[string][]string, key string) string {
	for _, v := range h[key] {
		if v != "" {
			return v
		}
	}
	return ""
}
