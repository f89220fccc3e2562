package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/gantry-dev/gantry/ecr"
)

// Repository keys (docs/state.md). Unlike ECS names, repository names
// contain '/', so "a" and "a/b" are both keys under the prefix; they are
// only ever read exactly or listed as a whole, never by a per-name prefix.
const (
	repositoriesPrefix = Prefix + "ecr/repositories/" // <name>
	locksPrefix        = Prefix + "ecr/locks/"        // tags/<name>:<tag>, repositories/<name> ('/' as ':'): etcd mutexes
)

func repositoryKey(name string) string { return repositoriesPrefix + name }

// RepositoryRecord is an ECR repository as the store keeps it: what users
// set (name, creation time, tag mutability, scanning and encryption
// settings) and its tags. The ARN, registry ID and URI are derived when read
// (the URI follows the server's advertised address); images are not here
// at all: they live in the registry's storage.
type RepositoryRecord struct {
	ecr.Repository
	Tags []ecr.Tag `json:"tags,omitzero"`
}

// CreateRepository stores rec, or returns ErrExists if the name is taken.
func (s *Store) CreateRepository(ctx context.Context, rec *RepositoryRecord) error {
	return s.create(ctx, repositoryKey(rec.RepositoryName), rec)
}

// GetRepository returns the named repository or ErrNotFound.
func (s *Store) GetRepository(ctx context.Context, name string) (*RepositoryRecord, error) {
	rec := new(RepositoryRecord)
	if _, err := s.get(ctx, repositoryKey(name), rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// ListRepositories returns up to limit repositories whose names sort after
// `after`, in name order, and the name to continue from when more remain.
func (s *Store) ListRepositories(ctx context.Context, after string, limit int) (out []*RepositoryRecord, next string, err error) {
	last, more, err := s.page(ctx, repositoriesPrefix, after, limit, func(b []byte) error {
		rec := new(RepositoryRecord)
		if err := json.Unmarshal(b, rec); err != nil {
			return err
		}
		out = append(out, rec)
		return nil
	})
	if err != nil || !more {
		return out, "", err
	}
	return out, last, nil
}

// UpdateRepository applies fn to the repository atomically (ErrNotFound if
// it does not exist; fn's error aborts without writing).
func (s *Store) UpdateRepository(ctx context.Context, name string, fn func(*RepositoryRecord) error) (*RepositoryRecord, error) {
	return update(ctx, s, repositoryKey(name), fn)
}

// DeleteRepository removes the repository's record and returns it, or
// ErrNotFound. Its images are the registry's to remove.
func (s *Store) DeleteRepository(ctx context.Context, name string) (*RepositoryRecord, error) {
	key := repositoryKey(name)
	resp, err := s.cli.Delete(ctx, key, clientv3.WithPrevKV())
	if err != nil {
		return nil, fmt.Errorf("etcd delete %s: %w", key, err)
	}
	if len(resp.PrevKvs) == 0 {
		return nil, ErrNotFound
	}
	rec := new(RepositoryRecord)
	if err := json.Unmarshal(resp.PrevKvs[0].Value, rec); err != nil {
		return nil, fmt.Errorf("decode %s: %w", key, err)
	}
	return rec, nil
}

// LockTag holds an etcd mutex on one tag of one repository until unlock is
// called, so that "read where the tag points, then move it" runs as one
// step across every server sharing the store (immutable tags). The lock's
// lease ends by itself if this process dies while holding it.
func (s *Store) LockTag(ctx context.Context, repo, tag string) (unlock func(), err error) {
	return s.lock(ctx, locksPrefix+"tags/"+lockName(repo)+":"+tag)
}

// LockRepository holds an etcd mutex on a repository's name until unlock
// is called, so that creating and deleting it (the record in etcd, the
// images in the registry's storage) are each one step.
func (s *Store) LockRepository(ctx context.Context, repo string) (unlock func(), err error) {
	return s.lock(ctx, locksPrefix+"repositories/"+lockName(repo))
}

// lockName spells a repository name without '/': an etcd mutex on key k
// contends with every key under k+"/", which would make a lock on "a"
// wait for holders of "a/b".
func lockName(repo string) string { return strings.ReplaceAll(repo, "/", ":") }

func (s *Store) lock(ctx context.Context, key string) (unlock func(), err error) {
	sess, err := concurrency.NewSession(s.cli, concurrency.WithTTL(10), concurrency.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("etcd session: %w", err)
	}
	m := concurrency.NewMutex(sess, key)
	if err := m.Lock(ctx); err != nil {
		sess.Close()
		return nil, fmt.Errorf("etcd lock: %w", errors.Join(err, ctx.Err()))
	}
	return func() {
		// A fresh context: the request's may have ended, and the lock must
		// go either way (Close revokes the lease, which releases it too).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.Unlock(ctx)
		sess.Close()
	}, nil
}
