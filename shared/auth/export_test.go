package auth

import (
	"context"
	"sync/atomic"

	"github.com/golang-jwt/jwt/v5"
)

// CountKeyLookups makes v count the key lookups of its full checks, one per
// token checked (a cache hit makes none), and returns the count so far.
func CountKeyLookups(v *Verifier) func() int64 {
	c := &countingKeys{keySource: v.keys}
	v.keys = c
	return c.lookups.Load
}

type countingKeys struct {
	keySource
	lookups atomic.Int64
}

func (c *countingKeys) keyfunc(ctx context.Context) jwt.Keyfunc {
	inner := c.keySource.keyfunc(ctx)
	return func(t *jwt.Token) (any, error) {
		c.lookups.Add(1)
		return inner(t)
	}
}
