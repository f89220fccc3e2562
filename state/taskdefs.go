package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gantry-dev/gantry/ecs"
)

// Task definitions are stored one key per revision (ecs.TaskDefinitionRecord:
// the DescribeTaskDefinition document and its tags), one key per family (the
// revision counter and how many revisions are ACTIVE and stored), and one
// empty index key per revision under its status, so lists by status are a
// key-ordered range read. Every change writes the revision, its family and
// its index keys in one transaction guarded by the revisions it read.

// Errors of the task definition store.
var (
	// ErrTaskDefinitionActive: DeleteTaskDefinition on an ACTIVE revision.
	ErrTaskDefinitionActive = errors.New("task definition is ACTIVE")
	// ErrRevisionLimit: the family has used all ecs.MaxFamilyRevisions.
	ErrRevisionLimit = errors.New("task definition family revision limit reached")
)

// taskDefFamily is the family record: the last revision number handed out
// (never reused, even after every revision is deleted, as ECS numbers them)
// and counts for ListTaskDefinitionFamilies' status filter.
type taskDefFamily struct {
	Family       string `json:"family"`
	LastRevision int32  `json:"lastRevision"`
	Active       int32  `json:"active"`    // ACTIVE revisions
	Revisions    int32  `json:"revisions"` // stored revisions of any status
}

// TaskDefinitionID names one revision.
type TaskDefinitionID struct {
	Family   string
	Revision int32
}

func taskDefName(family string, revision int32) string {
	return fmt.Sprintf("%s#%010d", family, revision)
}

func taskDefKey(family string, revision int32) string {
	return taskDefsPrefix + taskDefName(family, revision)
}

func taskDefFamilyKey(family string) string { return taskDefFamiliesPrefix + family }

func taskDefStatusKey(status ecs.TaskDefinitionStatus, family string, revision int32) string {
	return taskDefStatusPrefix + string(status) + "/" + taskDefName(family, revision)
}

func taskDefStatusOf(status ecs.TaskDefinitionStatus) string {
	return taskDefStatusPrefix + string(status) + "/"
}

// parseTaskDefName splits "<family>#<revision>".
func parseTaskDefName(s string) (TaskDefinitionID, bool) {
	i := strings.LastIndexByte(s, '#')
	if i < 0 {
		return TaskDefinitionID{}, false
	}
	n, err := strconv.ParseInt(s[i+1:], 10, 32)
	if err != nil {
		return TaskDefinitionID{}, false
	}
	return TaskDefinitionID{Family: s[:i], Revision: int32(n)}, true
}

// RegisterTaskDefinition stores rec as its family's next revision, ACTIVE.
// It sets rec.Revision, and rec.TaskDefinitionARN to arn(revision). The
// revision number is taken from the family record in the same transaction
// that writes the revision, so concurrent registrations of one family get
// distinct, consecutive revisions; after too many lost races it returns
// ErrConflict (ECS: "Too many concurrent attempts to create a new revision
// of the specified family.").
func (s *Store) RegisterTaskDefinition(ctx context.Context, rec *ecs.TaskDefinitionRecord, arn func(revision int32) string) (*ecs.TaskDefinitionRecord, error) {
	famKey := taskDefFamilyKey(rec.Family)
	unlock := s.lockFamily(rec.Family)
	defer unlock()
	fam := taskDefFamily{Family: rec.Family}
	famRev, err := s.get(ctx, famKey, &fam)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	for attempt := range maxAttempts {
		if fam.LastRevision >= ecs.MaxFamilyRevisions {
			return nil, ErrRevisionLimit
		}
		next := fam
		next.LastRevision++
		next.Active++
		next.Revisions++
		rec.Revision = next.LastRevision
		rec.TaskDefinitionARN = arn(rec.Revision)
		rec.Status = ecs.TaskDefinitionStatusActive
		fb, err := json.Marshal(next)
		if err != nil {
			return nil, err
		}
		rb, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		key := taskDefKey(rec.Family, rec.Revision)
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(famKey), "=", famRev),
				clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(famKey, string(fb)),
				clientv3.OpPut(key, string(rb)),
				clientv3.OpPut(taskDefStatusKey(rec.Status, rec.Family, rec.Revision), "")).
			Else(clientv3.OpGet(famKey)).
			Commit()
		if err != nil {
			return nil, fmt.Errorf("etcd register task definition: %w", err)
		}
		if resp.Succeeded {
			return rec, nil
		}
		// Another server registered in this family: continue from the
		// family record the failed transaction read, after a short random
		// pause so the contenders spread out.
		fam, famRev = taskDefFamily{Family: rec.Family}, 0
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			if err := json.Unmarshal(kvs[0].Value, &fam); err != nil {
				return nil, fmt.Errorf("decode %s: %w", famKey, err)
			}
			famRev = kvs[0].ModRevision
		}
		if err := backoff(ctx, attempt); err != nil {
			return nil, err
		}
	}
	return nil, ErrConflict
}

// familyLocks serialise one Store's writes to a family, so writers in one
// process never lose races to each other; the revision-guarded transactions
// keep writers on other servers (other Stores) safe. Families share a lock
// only by hash. The table is per Store, kept beside it because Store is
// defined in kv.go.
var familyLocks sync.Map // *Store -> *[256]sync.Mutex

func (s *Store) lockFamily(family string) (unlock func()) {
	v, ok := familyLocks.Load(s)
	if !ok {
		v, _ = familyLocks.LoadOrStore(s, new([256]sync.Mutex))
	}
	locks := v.(*[256]sync.Mutex)
	h := fnv.New32a()
	h.Write([]byte(family))
	m := &locks[h.Sum32()%uint32(len(locks))]
	m.Lock()
	return m.Unlock
}

// backoff sleeps a random time up to 1ms << attempt (at most 64ms).
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(time.Millisecond << min(attempt, 6))))
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// GetTaskDefinition returns one revision, of any status, or ErrNotFound.
func (s *Store) GetTaskDefinition(ctx context.Context, family string, revision int32) (*ecs.TaskDefinitionRecord, error) {
	rec := new(ecs.TaskDefinitionRecord)
	if _, err := s.get(ctx, taskDefKey(family, revision), rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// LatestActiveTaskDefinition returns the family's highest ACTIVE revision,
// or ErrNotFound.
func (s *Store) LatestActiveTaskDefinition(ctx context.Context, family string) (*ecs.TaskDefinitionRecord, error) {
	prefix := taskDefStatusOf(ecs.TaskDefinitionStatusActive) + family + "#"
	resp, err := s.cli.Get(ctx, prefix, append([]clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithKeysOnly()},
		clientv3.WithLastKey()...)...)
	if err != nil {
		return nil, fmt.Errorf("etcd latest task definition %s: %w", family, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, ErrNotFound
	}
	id, ok := parseTaskDefName(strings.TrimPrefix(string(resp.Kvs[0].Key), taskDefStatusOf(ecs.TaskDefinitionStatusActive)))
	if !ok {
		return nil, fmt.Errorf("malformed task definition index key %q", resp.Kvs[0].Key)
	}
	rec, err := s.GetTaskDefinition(ctx, id.Family, id.Revision)
	if errors.Is(err, ErrNotFound) {
		// Deregistered between the two reads; ECS would have answered either way.
		return nil, ErrNotFound
	}
	return rec, err
}

// DeregisterTaskDefinition marks an ACTIVE revision INACTIVE at time at. A
// revision that is not ACTIVE is returned unchanged.
func (s *Store) DeregisterTaskDefinition(ctx context.Context, family string, revision int32, at time.Time) (*ecs.TaskDefinitionRecord, error) {
	return s.transitionTaskDefinition(ctx, family, revision, func(rec *ecs.TaskDefinitionRecord) (bool, error) {
		if rec.Status != ecs.TaskDefinitionStatusActive {
			return false, nil
		}
		rec.Status = ecs.TaskDefinitionStatusInactive
		rec.DeregisteredAt.Time = at
		return true, nil
	})
}

// DeleteTaskDefinition moves an INACTIVE revision to DELETE_IN_PROGRESS at
// time at; it stays describable until a cleanup removes it (once tasks and
// services can reference revisions, only when none does). An ACTIVE
// revision is ErrTaskDefinitionActive; one already DELETE_IN_PROGRESS is
// returned unchanged.
func (s *Store) DeleteTaskDefinition(ctx context.Context, family string, revision int32, at time.Time) (*ecs.TaskDefinitionRecord, error) {
	return s.transitionTaskDefinition(ctx, family, revision, func(rec *ecs.TaskDefinitionRecord) (bool, error) {
		switch rec.Status {
		case ecs.TaskDefinitionStatusActive:
			return false, ErrTaskDefinitionActive
		case ecs.TaskDefinitionStatusInactive:
			rec.Status = ecs.TaskDefinitionStatusDeleteInProgress
			rec.DeleteRequestedAt.Time = at
			return true, nil
		}
		return false, nil
	})
}

// transitionTaskDefinition applies a status change and moves the revision's
// index key and its family's counts with it, in one transaction guarded by
// both records' revisions.
func (s *Store) transitionTaskDefinition(ctx context.Context, family string, revision int32, fn func(*ecs.TaskDefinitionRecord) (bool, error)) (*ecs.TaskDefinitionRecord, error) {
	key, famKey := taskDefKey(family, revision), taskDefFamilyKey(family)
	unlock := s.lockFamily(family)
	defer unlock()
	for attempt := range maxAttempts {
		rec := new(ecs.TaskDefinitionRecord)
		rev, err := s.get(ctx, key, rec)
		if err != nil {
			return nil, err
		}
		var fam taskDefFamily
		famRev, err := s.get(ctx, famKey, &fam)
		if err != nil {
			return nil, err
		}
		from := rec.Status
		changed, err := fn(rec)
		if err != nil || !changed {
			return rec, err
		}
		if from == ecs.TaskDefinitionStatusActive {
			fam.Active--
		}
		if rec.Status == ecs.TaskDefinitionStatusActive {
			fam.Active++
		}
		rb, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		fb, err := json.Marshal(fam)
		if err != nil {
			return nil, err
		}
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", rev),
				clientv3.Compare(clientv3.ModRevision(famKey), "=", famRev)).
			Then(clientv3.OpPut(key, string(rb)),
				clientv3.OpPut(famKey, string(fb)),
				clientv3.OpDelete(taskDefStatusKey(from, family, revision)),
				clientv3.OpPut(taskDefStatusKey(rec.Status, family, revision), "")).
			Commit()
		if err != nil {
			return nil, fmt.Errorf("etcd update task definition %s:%d: %w", family, revision, err)
		}
		if resp.Succeeded {
			return rec, nil
		}
		if err := backoff(ctx, attempt); err != nil {
			return nil, err
		}
	}
	return nil, ErrConflict
}

// UpdateTaskDefinitionTags rewrites one revision's tags with fn, atomically.
func (s *Store) UpdateTaskDefinitionTags(ctx context.Context, family string, revision int32, fn func([]ecs.Tag) ([]ecs.Tag, error)) error {
	_, err := update(ctx, s, taskDefKey(family, revision), func(rec *ecs.TaskDefinitionRecord) error {
		tags, err := fn(rec.Tags)
		rec.Tags = tags
		return err
	})
	return err
}

// ListTaskDefinitions returns up to limit revisions with the given status,
// of one family or (family "") all, in key order (family, then revision) or
// its reverse, starting after (or, descending, before) the revision named
// by after ("<family>#<revision>", as returned in next). next is empty when
// no more remain.
func (s *Store) ListTaskDefinitions(ctx context.Context, status ecs.TaskDefinitionStatus, family string, desc bool, after string, limit int) (ids []TaskDefinitionID, next string, err error) {
	base := taskDefStatusOf(status)
	scan := base
	if family != "" {
		scan += family + "#"
	}
	lo, hi := scan, clientv3.GetPrefixRangeEnd(scan)
	if after != "" {
		if k := base + after; desc {
			hi = min(hi, k)
		} else {
			lo = max(lo, k+"\x00")
		}
	}
	if lo >= hi {
		return nil, "", nil
	}
	order := clientv3.SortAscend
	if desc {
		order = clientv3.SortDescend
	}
	resp, err := s.cli.Get(ctx, lo, clientv3.WithRange(hi), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByKey, order), clientv3.WithLimit(int64(limit)))
	if err != nil {
		return nil, "", fmt.Errorf("etcd list task definitions: %w", err)
	}
	for _, kv := range resp.Kvs {
		name := string(kv.Key[len(base):])
		id, ok := parseTaskDefName(name)
		if !ok {
			return nil, "", fmt.Errorf("malformed task definition index key %q", kv.Key)
		}
		ids = append(ids, id)
		next = name
	}
	if !resp.More {
		next = ""
	}
	return ids, next, nil
}

// ListTaskDefinitionFamilies returns up to limit family names beginning
// with prefix that sort after after, filtered by status: ACTIVE families
// have an ACTIVE revision, INACTIVE ones have stored revisions but none
// ACTIVE, ALL is both. Families whose revisions are all gone are not listed.
func (s *Store) ListTaskDefinitionFamilies(ctx context.Context, prefix string, status ecs.TaskDefinitionFamilyStatus, after string, limit int) (families []string, next string, err error) {
	scan := taskDefFamiliesPrefix + prefix
	lo, hi := scan, clientv3.GetPrefixRangeEnd(scan)
	if after != "" {
		lo = max(lo, taskDefFamiliesPrefix+after+"\x00")
	}
	for lo < hi {
		resp, err := s.cli.Get(ctx, lo, clientv3.WithRange(hi), clientv3.WithLimit(int64(limit)))
		if err != nil {
			return nil, "", fmt.Errorf("etcd list task definition families: %w", err)
		}
		for i, kv := range resp.Kvs {
			var fam taskDefFamily
			if err := json.Unmarshal(kv.Value, &fam); err != nil {
				return nil, "", fmt.Errorf("decode %s: %w", kv.Key, err)
			}
			if !familyMatches(fam, status) {
				continue
			}
			families = append(families, fam.Family)
			if len(families) == limit {
				if i < len(resp.Kvs)-1 || resp.More {
					next = fam.Family
				}
				return families, next, nil
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		lo = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	return families, "", nil
}

func familyMatches(f taskDefFamily, status ecs.TaskDefinitionFamilyStatus) bool {
	switch status {
	case ecs.TaskDefinitionFamilyStatusActive:
		return f.Active > 0
	case ecs.TaskDefinitionFamilyStatusInactive:
		return f.Active == 0 && f.Revisions > 0
	default:
		return f.Revisions > 0
	}
}
