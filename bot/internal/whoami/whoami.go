// Package whoami caches the forge account a client acts as (a GitHub App's
// bot login, a token's user), looked up once: the bot edits only comments
// that account wrote, so a stranger's comment holding the bot's hidden
// marker is never taken for the bot's own.
package whoami

import (
	"context"
	"errors"
	"sync"
)

// Cache holds one looked-up login. The zero value is ready to use. A failed
// look-up is not cached: the next call asks again.
type Cache struct {
	mu   sync.Mutex
	name string
}

// Get returns the cached login, or calls lookup and caches a non-empty
// answer.
func (c *Cache) Get(ctx context.Context, lookup func(context.Context) (string, error)) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.name != "" {
		return c.name, nil
	}
	name, err := lookup(ctx)
	if err != nil {
		return "", err
	}
	if name == "" {
		return "", errors.New("the forge named no account for the bot's credentials")
	}
	c.name = name
	return name, nil
}
