package main

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readmePermissions is the authorization block the README recommends, with test passwords: the
// end-to-end permission tests run the worker, tenants and the operator under exactly these
// rules. The operator subscribes only under its own inbox prefix _INBOX_ops, outside the
// _INBOX.<tenant> tree, so it reads no tenant's replies (authorize tokens) and no tenant can make
// the worker publish into its inboxes. The worker answers status requests as responses
// (allow_responses), not through a publish permission on _INBOX_ops.>, and reads the stream's
// MAX_DELIVERIES and MSG_TERMINATED advisories to dead-letter what JetStream gave up on. The
// operator's JetStream API stops short of the sessions bucket (KV_B2_SESSIONS): its sealed
// sessions are for the workers alone.
const readmePermissions = `
authorization {
  users = [
    { user: acme, password: acme-pass, permissions: {
        publish:   { allow: ["b2.req.*.acme"] }
        subscribe: { allow: ["_INBOX.acme.>"] } } }
    { user: globex, password: globex-pass, permissions: {
        publish:   { allow: ["b2.req.*.globex"] }
        subscribe: { allow: ["_INBOX.globex.>"] } } }
    { user: b2jet, password: worker-pass, permissions: {
        publish:   { allow: ["$JS.API.>", "$JS.ACK.>", "$KV.>", "b2.res.>", "b2.dlq.>", "_INBOX.>"] }
        subscribe: { allow: ["_INBOX.>", "$SRV.>", "b2.status",
                             "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.B2_REQUESTS.*",
                             "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.B2_REQUESTS.*"] }
        allow_responses: true } }
    { user: ops, password: ops-pass, permissions: {
        publish:   { allow: ["$JS.API.>", "b2.req.>", "b2.status"]
                     deny:  ["$JS.API.*.*.KV_B2_SESSIONS", "$JS.API.*.*.KV_B2_SESSIONS.>",
                             "$JS.API.*.*.*.KV_B2_SESSIONS", "$JS.API.*.*.*.KV_B2_SESSIONS.>"] }
        subscribe: { allow: ["_INBOX_ops.>"] } } }
  ]
}
`

// The README shows the block the permission tests run, so that a user who copies it gets a
// configuration known to work.
func TestReadmePermissionsMatchTests(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	want := strings.NewReplacer("acme-pass", "$ACME_PASS", "globex-pass", "$GLOBEX_PASS",
		"worker-pass", "$WORKER_PASS", "ops-pass", "$OPS_PASS").Replace(strings.TrimPrefix(readmePermissions, "\n"))
	var indented strings.Builder
	for _, line := range strings.SplitAfter(want, "\n") {
		if strings.TrimSpace(line) != "" {
			indented.WriteString("  ")
		}
		indented.WriteString(line)
	}
	assert.Contains(t, string(readme), indented.String(), "README's authorization block differs from the one the tests run")
}
