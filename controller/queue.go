package controller

import (
	"sync"
	"time"
)

// queue hands out keys to workers: a key added several times before a
// worker takes it is handed out once, and a key is never with two workers
// at once (one added while being worked on is handed out again after
// Done). The same contract as client-go's workqueue, in the few lines this
// needs.
type queue struct {
	mu         sync.Mutex
	cond       *sync.Cond
	order      []string
	queued     map[string]bool
	processing map[string]bool
	again      map[string]bool
	closed     bool
}

func newQueue() *queue {
	q := &queue{queued: map[string]bool{}, processing: map[string]bool{}, again: map[string]bool{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add queues key.
func (q *queue) Add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.closed, q.queued[key]:
	case q.processing[key]:
		q.again[key] = true
	default:
		q.queued[key] = true
		q.order = append(q.order, key)
		q.cond.Signal()
	}
}

// AddAfter queues key after d.
func (q *queue) AddAfter(key string, d time.Duration) {
	if d <= 0 {
		q.Add(key)
		return
	}
	time.AfterFunc(d, func() { q.Add(key) })
}

// Get waits for a key; ok is false once the queue is closed.
func (q *queue) Get() (key string, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.order) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return "", false
	}
	key, q.order = q.order[0], q.order[1:]
	delete(q.queued, key)
	q.processing[key] = true
	return key, true
}

// Done ends the work on key.
func (q *queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, key)
	if q.again[key] {
		delete(q.again, key)
		if !q.closed && !q.queued[key] {
			q.queued[key] = true
			q.order = append(q.order, key)
			q.cond.Signal()
		}
	}
}

// Close wakes every waiting worker; Get returns false from then on.
func (q *queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}
