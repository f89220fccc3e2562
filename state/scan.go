package state

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// scanChunk is how many keys scan reads per request.
const scanChunk = 256

// scan calls fn with each key and value under prefix whose key sorts after
// prefix+after, in key order, until fn returns false. Every chunk is read
// at one revision: rev if non-zero, else the revision of the first read,
// which scan returns so a caller can read more at the same revision. more
// reports whether keys remained when fn stopped the scan.
func (s *Store) scan(ctx context.Context, prefix, after string, rev int64, fn func(key string, value []byte) bool) (more bool, atRev int64, err error) {
	start := prefix + after
	if after != "" {
		start += "\x00"
	}
	end := clientv3.GetPrefixRangeEnd(prefix)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(scanChunk)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.cli.Get(ctx, start, opts...)
		if err != nil {
			return false, 0, fmt.Errorf("etcd list %s: %w", prefix, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for i, kv := range resp.Kvs {
			if !fn(string(kv.Key), kv.Value) {
				return i < len(resp.Kvs)-1 || resp.More, rev, nil
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return false, rev, nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// retryPause sleeps a little, more after each lost race, with jitter so
// writers that collided do not collide again in lockstep.
func retryPause(ctx context.Context, attempt int) {
	d := min(time.Millisecond<<min(attempt, 6), 50*time.Millisecond)
	t := time.NewTimer(rand.N(d) + time.Millisecond/4)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// scanRecords decodes the values under prefix after `after` into *T, keeps
// those keep (may be nil) accepts, and stops at limit; more reports whether
// the scan stopped before the end of the prefix.
func scanRecords[T any](ctx context.Context, s *Store, prefix, after string, limit int, keep func(*T) bool) (out []*T, more bool, err error) {
	var derr error
	more, _, err = s.scan(ctx, prefix, after, 0, func(key string, value []byte) bool {
		r := new(T)
		if derr = json.Unmarshal(value, r); derr != nil {
			derr = fmt.Errorf("decode %s: %w", key, derr)
			return false
		}
		if keep == nil || keep(r) {
			out = append(out, r)
		}
		return len(out) < limit
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, false, err
	}
	return out, more, nil
}
