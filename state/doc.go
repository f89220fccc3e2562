// Package state is Gantry's store: every resource lives in etcd under the
// keys documented in docs/state.md, and every mutation is a single etcd
// transaction guarded by the revision it read, so concurrent writers (several
// API requests, several gantry servers on one etcd cluster) never lose an
// update.
//
// The store speaks in ECS's types and returns typed errors (ErrNotFound,
// ErrExists, ErrConflict, *awsproto.Error from update functions); it knows
// nothing of HTTP and never decides ECS policy beyond what must be atomic.
package state
