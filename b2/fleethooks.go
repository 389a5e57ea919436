package b2

import (
	"errors"
	"fmt"
	"time"
)

// The hooks below let the workers of one deployment act as one client of B2 (Config.SharedPause,
// Config.RateShare, Config.Transactions). The b2 package knows nothing of how they are shared
// (b2jet's are JetStream key-value entries, package fleet); each nil hook keeps the account's
// state in this process alone.

// SharedPause is an account's Retry-After pause as the whole fleet knows it.
type SharedPause interface {
	// Load returns the end of the fleet's pause of the account (zero: none), and the back-off a
	// 429 without Retry-After started last (0: B2's own Retry-After, or none). It is called
	// before every call and by Blocked: it must be fast and must not wait on the network.
	Load() (until time.Time, bare time.Duration)
	// Store announces a pause until until to the fleet; bare is the back-off of the 429 without
	// Retry-After that started it (0 for B2's Retry-After). A longer pause already known must
	// stay as it is. It must not wait on the network either.
	Store(until time.Time, bare time.Duration)
}

// RateShare is the part of an account's RequestsPerSecond this process may use: the rate
// budget is the fleet's, shared among its live workers.
type RateShare interface {
	// Share is in (0, 1]; it is read before every call, so it must be fast.
	Share() float64
}

// TransactionBook counts an account's B2 transactions and keeps its daily budget.
type TransactionBook interface {
	// Record counts n transactions of Backblaze's class (TransactionClassC, ...) for one call
	// that B2 answered. It must not wait on the network.
	Record(class string, n int)
	// Spent reports whether the account's budget is spent, and when it is renewed. It is checked
	// before every call.
	Spent() (renews time.Time, spent bool)
}

// TransactionClassC is Backblaze's billing class of b2_authorize_account, b2_list_buckets and
// b2_list_file_names (2,500 free a day, then billed per 1,000).
const TransactionClassC = "C"

// namesPerTransaction: a b2_list_file_names answer is billed one class C transaction per 1,000
// names it returns, started.
const namesPerTransaction = 1000

// transactions is what one answered call of op costs: its class and count. names is how many
// names a listing answered (ignored for other calls).
func transactions(op string, names int) (class string, n int) {
	switch op {
	case opListFileNames:
		return TransactionClassC, max(1, (names+namesPerTransaction-1)/namesPerTransaction)
	case opAuthorize, opListBuckets:
		return TransactionClassC, 1
	}
	return "", 0
}

// ErrBudgetSpent is matched by a *BudgetError: the account's daily transaction budget is spent.
var ErrBudgetSpent = errors.New("b2: daily transaction budget spent")

// BudgetError is returned without calling B2 while the account's daily transaction budget
// (Config.Transactions) is spent. It lasts until RenewsAt (00:00 UTC).
type BudgetError struct {
	Op       string
	RenewsAt time.Time
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("b2: %s: the account's daily transaction budget is spent, renewed at %s",
		e.Op, e.RenewsAt.UTC().Format(time.RFC3339))
}

// Is makes a *BudgetError match ErrBudgetSpent.
func (e *BudgetError) Is(target error) bool { return target == ErrBudgetSpent }

// recordTransactions counts what one answered call cost, in the book and as an event.
func (c *Client) recordTransactions(op string, names int) {
	class, n := transactions(op, names)
	if n == 0 {
		return
	}
	if c.cfg.Transactions != nil {
		c.cfg.Transactions.Record(class, n)
	}
	c.emit(Event{Kind: EventTransactions, Op: op, Class: class, Count: n})
}

// budgetSpent returns a *BudgetError when the account's budget is spent.
func (c *Client) budgetSpent(op string) error {
	if c.cfg.Transactions == nil {
		return nil
	}
	if renews, spent := c.cfg.Transactions.Spent(); spent {
		return &BudgetError{Op: op, RenewsAt: renews}
	}
	return nil
}
