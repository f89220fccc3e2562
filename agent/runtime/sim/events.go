package sim

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/agent/runtime"
)

// subscriber is one Events stream. Its queue is unbounded, so a slow reader
// never blocks the simulation (nor loses events).
type subscriber struct {
	labels map[string]string
	mu     sync.Mutex
	queue  []runtime.Event
	wake   chan struct{} // capacity 1
}

func (r *Runtime) Events(ctx context.Context, labels map[string]string) (<-chan runtime.Event, <-chan error) {
	s := &subscriber{labels: maps.Clone(labels), wake: make(chan struct{}, 1)}
	r.mu.Lock()
	r.subs[s] = true
	r.mu.Unlock()

	out, errc := make(chan runtime.Event), make(chan error, 1)
	go func() {
		defer close(out)
		defer func() {
			r.mu.Lock()
			delete(r.subs, s)
			r.mu.Unlock()
			errc <- ctx.Err()
		}()
		for {
			select {
			case <-s.wake:
			case <-ctx.Done():
				return
			}
			s.mu.Lock()
			batch := s.queue
			s.queue = nil
			s.mu.Unlock()
			for _, e := range batch {
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, errc
}

// emit sends an event about c to every matching subscriber. r.mu is held.
func (r *Runtime) emit(c *simContainer, e runtime.Event) {
	e.ContainerID = c.id
	e.Time = time.Now()
	for s := range r.subs {
		if !matches(c.spec.Labels, s.labels) {
			continue
		}
		e.Labels = maps.Clone(c.spec.Labels)
		s.mu.Lock()
		s.queue = append(s.queue, e)
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}
