package hub

import "sync"

// sendQueue is one peer's queue of WebSocket messages to write: at most
// max of them, and no memory at all while empty (a channel of that capacity
// would keep its buffer for the connection's life: 3 KiB a peer at 128).
type sendQueue struct {
	max   int
	ready chan struct{} // one token when items became non-empty

	mu    sync.Mutex
	items [][]byte
}

func newSendQueue(bound int) *sendQueue {
	return &sendQueue{max: bound, ready: make(chan struct{}, 1)}
}

// push queues b; it reports false when max messages are queued already.
func (q *sendQueue) push(b []byte) bool {
	q.mu.Lock()
	if len(q.items) >= q.max {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, b)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// pop takes the oldest message, if any.
func (q *sendQueue) pop() ([]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return nil, false
	}
	b := q.items[0]
	q.items[0] = nil
	q.items = q.items[1:]
	if len(q.items) == 0 {
		q.items = nil // release the backing array of a burst
	}
	return b, true
}
