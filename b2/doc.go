// Package b2 is a client for the Backblaze B2 native API, limited to what b2jet needs:
// b2_authorize_account, b2_list_file_names and b2_list_buckets. It imports no NATS package.
//
// A Client serves one application key. It keeps the session (token, apiUrl, downloadUrl,
// allowances) and reuses it until Config.RefreshMargin before B2's 24 h limit, or until B2
// answers 401 expired_auth_token/bad_auth_token; then exactly one b2_authorize_account runs for
// all callers in flight, and the failed call is retried once with the new token. A 429 or 503
// with Retry-After pauses every caller of the account until that time; a 429 without it pauses
// them for 1 s, doubling while 429s repeat, at most 60 s. Apart from these, the
// Client never retries: callers (b2jet's JetStream redelivery) own retries, guided by KindOf
// and RetryAfterOf.
//
// Every failure is classified in one place (errors.go): *APIError carries B2's operation, HTTP
// status, code, message and Retry-After for any non-2xx answer, whatever its body; transport
// failures are *TransportError. Application keys and tokens are Secret values, which never print.
//
// With Config.TracerProvider every HTTP call is an OpenTelemetry client span, the child of the
// span in its context (tracing.go); the package uses only the OpenTelemetry API.
//
// API versions: see the note on the constants in client.go. The fake server in b2/b2test serves
// tests, benchmarks and b2jet's sandbox mode.
//
// A Client is safe for concurrent use.
package b2
