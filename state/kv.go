package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Prefix is the root of every key Gantry writes. The version segment lets a
// later layout live beside this one during an upgrade.
const Prefix = "/gantry/v1/"

var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a create found the key already present.
	ErrExists = errors.New("already exists")
	// ErrConflict: an update kept losing races and gave up; callers may retry.
	ErrConflict = errors.New("too many concurrent updates")
)

// maxAttempts bounds optimistic retries so a hot key fails loudly rather than
// spinning forever.
const maxAttempts = 32

// Store is the etcd-backed state store. It is safe for concurrent use.
type Store struct {
	cli *clientv3.Client
}

// New returns a Store on an open etcd client; the caller owns the client.
func New(cli *clientv3.Client) *Store { return &Store{cli: cli} }

// Client exposes the etcd client for components that need watches or leases.
func (s *Store) Client() *clientv3.Client { return s.cli }

// get decodes key into v and returns its mod revision.
func (s *Store) get(ctx context.Context, key string, v any) (int64, error) {
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("etcd get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return 0, ErrNotFound
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, v); err != nil {
		return 0, fmt.Errorf("decode %s: %w", key, err)
	}
	return resp.Kvs[0].ModRevision, nil
}

// create writes v at key only if key does not exist.
func (s *Store) create(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(b))).
		Commit()
	if err != nil {
		return fmt.Errorf("etcd create %s: %w", key, err)
	}
	if !resp.Succeeded {
		return ErrExists
	}
	return nil
}

// update reads key into a fresh T, applies fn, and writes the result back in
// a transaction that succeeds only if the key is unchanged since the read;
// on a lost race it starts over with the new value. fn may be called several
// times and must not have side effects outside *T. An error from fn aborts
// without writing and is returned as is.
func update[T any](ctx context.Context, s *Store, key string, fn func(*T) error) (*T, error) {
	for range maxAttempts {
		v := new(T)
		rev, err := s.get(ctx, key, v)
		if err != nil {
			return nil, err
		}
		if err := fn(v); err != nil {
			return nil, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpPut(key, string(b))).
			Commit()
		if err != nil {
			return nil, fmt.Errorf("etcd update %s: %w", key, err)
		}
		if resp.Succeeded {
			return v, nil
		}
	}
	return nil, ErrConflict
}

// page lists up to limit values under prefix whose key sorts after
// prefix+after, decoding each with decode. more reports whether keys remain.
func (s *Store) page(ctx context.Context, prefix, after string, limit int, decode func([]byte) error) (last string, more bool, err error) {
	start := prefix + after
	if after != "" {
		start += "\x00"
	}
	opts := []clientv3.OpOption{clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix))}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	resp, err := s.cli.Get(ctx, start, opts...)
	if err != nil {
		return "", false, fmt.Errorf("etcd list %s: %w", prefix, err)
	}
	for _, kv := range resp.Kvs {
		if err := decode(kv.Value); err != nil {
			return "", false, fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		last = string(kv.Key[len(prefix):])
	}
	return last, resp.More, nil
}

// count returns how many keys exist under prefix.
func (s *Store) count(ctx context.Context, prefix string) (int64, error) {
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("etcd count %s: %w", prefix, err)
	}
	return resp.Count, nil
}

// emptyPrefix is a transaction guard that holds while no key under prefix exists.
func emptyPrefix(prefix string) clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(prefix), "=", 0).WithPrefix()
}
