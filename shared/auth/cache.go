package auth

import (
	"fmt"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// tokenCache remembers the tokens a Verifier accepted, so that a client
// reusing its token for many calls pays the signature check once rather
// than on every call. It is keyed by the token's exact bytes: another
// signature or another payload is another token, checked in full.
//
// An entry carries the instant it stops being used and the key-set
// generation it was verified under; both are checked against the
// Verifier's clock and keys on every lookup, so tests control expiry
// through VerifierConfig.Now. The plain LRU (not the expirable one, whose
// TTL follows the wall clock and whose sweeper goroutine never stops) bounds
// the memory; an entry that went stale stays until it is looked up again
// or evicted.
type tokenCache struct {
	entries *lru.Cache[string, cachedToken]
}

// cachedToken is what a cache hit returns instead of a verification.
type cachedToken struct {
	caller Caller
	// until is the first instant the entry is no longer used: the earlier
	// of the token's exp and the verification plus the cache TTL.
	until time.Time
	// generation is the key set's (keySource.generation) when the
	// verification began.
	generation uint64
}

func newTokenCache(size int) (*tokenCache, error) {
	entries, err := lru.New[string, cachedToken](size)
	if err != nil {
		return nil, fmt.Errorf("auth: the token cache: %w", err)
	}
	return &tokenCache{entries: entries}, nil
}

// get returns the caller of token when it was verified under the key set
// generation and its entry is still in use at now.
func (c *tokenCache) get(token string, now time.Time, generation uint64) (Caller, bool) {
	e, ok := c.entries.Get(token)
	if !ok {
		return Caller{}, false
	}
	if e.generation != generation || !now.Before(e.until) {
		// A concurrent verification may have added a fresh entry since
		// the Get; removing it costs that caller one more full check.
		c.entries.Remove(token)
		return Caller{}, false
	}
	return e.caller, true
}

// add remembers token's caller until until; an entry that would already
// be stale at now is not added (a token past its exp but within the
// leeway is checked in full every time).
func (c *tokenCache) add(token string, caller Caller, now, until time.Time, generation uint64) {
	if !now.Before(until) {
		return
	}
	c.entries.Add(token, cachedToken{caller: caller, until: until, generation: generation})
}
