package origin

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"
)

// ErrRateLimited is returned (wrapped) when a client made the hub fetch too
// many tracks lately (Config.ClientFetches); it may try again later.
var ErrRateLimited = errors.New("too many tracks not cached were asked for from your address")

// maxClientLimits bounds the clients whose fetches are counted at once;
// past it, the newcomers share one count.
const maxClientLimits = 10_000

// overflowClient is the key of that shared count.
const overflowClient = "*"

// limitedError is ErrRateLimited with the time to wait.
type limitedError struct {
	retry time.Duration
}

func (e *limitedError) Error() string {
	return fmt.Sprintf("%s; try again in %d s", ErrRateLimited, int((e.retry+time.Second-1)/time.Second))
}

func (e *limitedError) Unwrap() error { return ErrRateLimited }

// RetryAfter is how long to wait before the client may start a fetch.
func (e *limitedError) RetryAfter() time.Duration { return e.retry }

// clientLimits counts the fetches each client started: perMinute a minute,
// as many at once. It is owned by its Origin's mu.
type clientLimits struct {
	perMinute int
	byClient  map[string]*rate.Limiter
	lastSweep time.Time // forgetIdle runs once a second at most
}

func newClientLimits(perMinute int) *clientLimits {
	return &clientLimits{perMinute: perMinute, byClient: make(map[string]*rate.Limiter)}
}

// take counts one fetch for client, or returns a *limitedError when its
// count is spent. The server's own calls (client "") are not counted.
func (l *clientLimits) take(client string, now time.Time) error {
	if client == "" || l.perMinute <= 0 {
		return nil
	}
	lim := l.byClient[client]
	if lim == nil {
		if len(l.byClient) >= maxClientLimits && now.Sub(l.lastSweep) >= time.Second {
			l.lastSweep = now
			l.forgetIdle(now)
		}
		if len(l.byClient) >= maxClientLimits {
			client = overflowClient
			lim = l.byClient[client]
		}
		if lim == nil {
			lim = rate.NewLimiter(rate.Every(time.Minute/time.Duration(l.perMinute)), l.perMinute)
			l.byClient[client] = lim
		}
	}
	if lim.AllowN(now, 1) {
		return nil
	}
	missing := 1 - lim.TokensAt(now) // of the one token a fetch takes
	return &limitedError{retry: time.Duration(missing / float64(lim.Limit()) * float64(time.Second))}
}

// forgetIdle drops the clients whose count is whole again: forgetting them
// loses nothing.
func (l *clientLimits) forgetIdle(now time.Time) {
	for k, lim := range l.byClient {
		if lim.TokensAt(now) >= float64(l.perMinute) {
			delete(l.byClient, k)
		}
	}
}
