package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/scheduler"
)

// StoppedTaskTTL is how long a STOPPED task stays describable: ECS shows
// stopped tasks "for at least one hour".
const StoppedTaskTTL = time.Hour

// TaskRecord is a task as the store keeps it: the Task as DescribeTasks
// shows it (tags included) and the RunTask client token that created it.
//
// A task that is not STOPPED lives at tasks/<cluster>/<id> with an index
// key under tasks-by-instance/<cluster>/<instance>/ (the agent's
// assignments, and the instance's task counts); when it reaches STOPPED it
// moves to stopped-tasks/<cluster>/<id> on a lease, its index key goes,
// and its instance gets back what it held, all in one transaction.
type TaskRecord struct {
	ecs.Task
	ClientToken string `json:"clientToken,omitempty"`
}

// ID is the task's ID, the last segment of its ARN.
func (r *TaskRecord) ID() string { return lastSegment(r.TaskARN) }

// Cluster is the task's cluster name, from its ARN.
func (r *TaskRecord) Cluster() string { return clusterSegment(r.TaskARN) }

// InstanceID is the ID of the container instance the task is placed on.
func (r *TaskRecord) InstanceID() string { return lastSegment(r.ContainerInstanceARN) }

// taskIndex is the value of a tasks-by-instance key: enough to count an
// instance's and a cluster's running and pending tasks without reading
// the tasks. It changes with the task's states, so a watch on the
// instance's index sees every change its agent must act on.
type taskIndex struct {
	DesiredStatus string `json:"d"`
	LastStatus    string `json:"l"`
}

func indexOf(t *TaskRecord) string {
	b, _ := json.Marshal(taskIndex{t.DesiredStatus, t.LastStatus})
	return string(b)
}

// PlaceTask stores a new task on the instance inst, read at revision rev,
// and adds what the task holds to the instance's record, in one
// transaction that succeeds only if the instance record is unchanged since
// rev: a concurrent placement or release on the same instance makes it
// ErrConflict, and the caller reads again and decides again. A task with
// the same ID, running or stopped, is ErrExists (RunTask's clientToken
// derives task IDs, so a retried request finds its tasks). On success it
// returns the instance record as written and its new revision, so a
// caller placing several tasks can place the next on the same instance.
// The instance records the task's group with what it holds.
func (s *Store) PlaceTask(ctx context.Context, inst *InstanceRecord, rev int64, t *TaskRecord, held scheduler.Resources) (*InstanceRecord, int64, error) {
	cluster, iid, tid := inst.Cluster(), inst.ID(), t.ID()
	next := *inst
	next.Held = maps.Clone(inst.Held)
	if next.Held == nil {
		next.Held = map[string]scheduler.Held{}
	}
	next.Held[tid] = scheduler.Held{Resources: held, Group: t.Group}
	next.Version++
	ib, err := json.Marshal(&next)
	if err != nil {
		return nil, 0, err
	}
	tb, err := json.Marshal(t)
	if err != nil {
		return nil, 0, err
	}
	ikey, tkey, skey := instanceKey(cluster, iid), taskKey(cluster, tid), stoppedTaskKey(cluster, tid)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(ikey), "=", rev),
			clientv3.Compare(clientv3.CreateRevision(tkey), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(skey), "=", 0)).
		Then(clientv3.OpPut(ikey, string(ib)),
			clientv3.OpPut(tkey, string(tb)),
			clientv3.OpPut(instanceTaskKey(cluster, iid, tid), indexOf(t))).
		Else(clientv3.OpGet(tkey, clientv3.WithCountOnly()), clientv3.OpGet(skey, clientv3.WithCountOnly())).
		Commit()
	if err != nil {
		return nil, 0, fmt.Errorf("etcd place task: %w", err)
	}
	if resp.Succeeded {
		return &next, resp.Header.Revision, nil
	}
	if resp.Responses[0].GetResponseRange().Count > 0 || resp.Responses[1].GetResponseRange().Count > 0 {
		return nil, 0, ErrExists
	}
	return nil, 0, ErrConflict
}

// GetTask returns a task, running or stopped, or ErrNotFound.
func (s *Store) GetTask(ctx context.Context, cluster, id string) (*TaskRecord, error) {
	t := new(TaskRecord)
	_, err := s.get(ctx, taskKey(cluster, id), t)
	if errors.Is(err, ErrNotFound) {
		t = new(TaskRecord)
		_, err = s.get(ctx, stoppedTaskKey(cluster, id), t)
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// UpdateTask applies fn to a task atomically; fn reports whether it
// changed the task and may run several times. When the task becomes
// STOPPED it moves to the stopped tasks, its index key goes and its
// instance gets back what the task held, in the same transaction. A task
// that is already STOPPED is final (state changes refuse themselves), but
// its tags can still change: it is rewritten on its lease. ErrNotFound if
// the task does not exist at all.
func (s *Store) UpdateTask(ctx context.Context, cluster, id string, fn func(*TaskRecord) (bool, error)) (*TaskRecord, error) {
	tkey := taskKey(cluster, id)
	for attempt := range maxAttempts {
		t := new(TaskRecord)
		rev, err := s.get(ctx, tkey, t)
		if errors.Is(err, ErrNotFound) {
			return s.updateStopped(ctx, cluster, id, fn)
		}
		if err != nil {
			return nil, err
		}
		before := indexOf(t)
		changed, err := fn(t)
		if err != nil || !changed {
			return t, err
		}
		var ok bool
		if t.LastStatus == ecs.TaskStatusStopped {
			ok, err = s.moveStopped(ctx, t, rev)
		} else {
			ok, err = s.putTask(ctx, t, rev, before != indexOf(t))
		}
		if err != nil {
			return nil, err
		}
		if ok {
			return t, nil
		}
		retryPause(ctx, attempt)
	}
	return nil, ErrConflict
}

// updateStopped applies fn to a STOPPED task, keeping its lease.
func (s *Store) updateStopped(ctx context.Context, cluster, id string, fn func(*TaskRecord) (bool, error)) (*TaskRecord, error) {
	key := stoppedTaskKey(cluster, id)
	for attempt := range maxAttempts {
		t := new(TaskRecord)
		rev, err := s.get(ctx, key, t)
		if err != nil {
			return nil, err
		}
		changed, err := fn(t)
		if err != nil || !changed {
			return t, err
		}
		if t.LastStatus != ecs.TaskStatusStopped {
			return nil, fmt.Errorf("a STOPPED task cannot become %s", t.LastStatus)
		}
		b, err := json.Marshal(t)
		if err != nil {
			return nil, err
		}
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpPut(key, string(b), clientv3.WithIgnoreLease())).
			Commit()
		if err != nil {
			return nil, fmt.Errorf("etcd update stopped task: %w", err)
		}
		if resp.Succeeded {
			return t, nil
		}
		retryPause(ctx, attempt)
	}
	return nil, ErrConflict
}

// ServiceExists reports whether the cluster has the named service (a
// services/<cluster>/<name> key; the services issue writes them).
func (s *Store) ServiceExists(ctx context.Context, cluster, name string) (bool, error) {
	resp, err := s.cli.Get(ctx, servicesOf(cluster)+name, clientv3.WithCountOnly())
	if err != nil {
		return false, fmt.Errorf("etcd service: %w", err)
	}
	return resp.Count > 0, nil
}

// putTask writes a task that is not STOPPED, and its index key when the
// states it carries changed.
func (s *Store) putTask(ctx context.Context, t *TaskRecord, rev int64, reindex bool) (bool, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return false, err
	}
	tkey := taskKey(t.Cluster(), t.ID())
	ops := []clientv3.Op{clientv3.OpPut(tkey, string(b))}
	if reindex {
		ops = append(ops, clientv3.OpPut(instanceTaskKey(t.Cluster(), t.InstanceID(), t.ID()), indexOf(t)))
	}
	resp, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(tkey), "=", rev)).Then(ops...).Commit()
	if err != nil {
		return false, fmt.Errorf("etcd update task: %w", err)
	}
	return resp.Succeeded, nil
}

// moveStopped moves a task that just became STOPPED out of the running
// tasks and releases what it held on its instance.
func (s *Store) moveStopped(ctx context.Context, t *TaskRecord, rev int64) (bool, error) {
	cluster, tid, iid := t.Cluster(), t.ID(), t.InstanceID()
	tkey, ikey := taskKey(cluster, tid), instanceKey(cluster, iid)
	inst := new(InstanceRecord)
	irev, err := s.get(ctx, ikey, inst)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return false, err
	}
	cmps := []clientv3.Cmp{
		clientv3.Compare(clientv3.ModRevision(tkey), "=", rev),
		clientv3.Compare(clientv3.ModRevision(ikey), "=", irev), // 0 when gone
	}
	b, err := json.Marshal(t)
	if err != nil {
		return false, err
	}
	lease, err := s.grant(ctx, StoppedTaskTTL)
	if err != nil {
		return false, err
	}
	ops := []clientv3.Op{
		clientv3.OpDelete(tkey),
		clientv3.OpPut(stoppedTaskKey(cluster, tid), string(b), clientv3.WithLease(lease)),
		clientv3.OpDelete(instanceTaskKey(cluster, iid, tid)),
	}
	if _, held := inst.Held[tid]; held {
		delete(inst.Held, tid)
		inst.Version++
		ib, err := json.Marshal(inst)
		if err != nil {
			return false, err
		}
		ops = append(ops, clientv3.OpPut(ikey, string(ib)))
	}
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		s.revoke(lease)
		return false, fmt.Errorf("etcd stop task: %w", err)
	}
	if !resp.Succeeded {
		s.revoke(lease)
	}
	return resp.Succeeded, nil
}

// InstanceTasks returns the tasks placed on an instance that are not
// STOPPED, read at one revision, which it returns: an agent's assignments.
func (s *Store) InstanceTasks(ctx context.Context, cluster, instanceID string) ([]*TaskRecord, int64, error) {
	resp, err := s.cli.Get(ctx, instanceTasksOf(cluster, instanceID), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, 0, fmt.Errorf("etcd instance tasks: %w", err)
	}
	rev := resp.Header.Revision
	ids := make([]string, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		ids[i] = lastSegment(string(kv.Key))
	}
	out, _, err := s.getTasks(ctx, cluster, ids, rev)
	return out, rev, err
}

// RunningTasks returns those of the tasks ids that exist and are not
// STOPPED, read at one revision, which it returns. A streaming reader uses
// it to fetch only the tasks a watch said changed.
func (s *Store) RunningTasks(ctx context.Context, cluster string, ids []string) ([]*TaskRecord, int64, error) {
	return s.getTasks(ctx, cluster, ids, 0)
}

// getTasks reads the running tasks ids at rev (0: the latest revision,
// which it returns), in transactions of at most 64 reads; missing ones are
// left out.
func (s *Store) getTasks(ctx context.Context, cluster string, ids []string, rev int64) ([]*TaskRecord, int64, error) {
	out := make([]*TaskRecord, 0, len(ids))
	for chunk := range slices.Chunk(ids, 64) {
		ops := make([]clientv3.Op, len(chunk))
		for i, id := range chunk {
			ops[i] = clientv3.OpGet(taskKey(cluster, id), clientv3.WithRev(rev))
		}
		tresp, err := s.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, 0, fmt.Errorf("etcd tasks: %w", err)
		}
		if rev == 0 {
			rev = tresp.Header.Revision
		}
		for _, r := range tresp.Responses {
			for _, kv := range r.GetResponseRange().Kvs {
				t := new(TaskRecord)
				if err := json.Unmarshal(kv.Value, t); err != nil {
					return nil, 0, fmt.Errorf("decode %s: %w", kv.Key, err)
				}
				out = append(out, t)
			}
		}
	}
	return out, rev, nil
}

// WatchInstanceTasks watches the tasks placed on an instance from revision
// rev on: every placement, change of desired or last status, and stop of
// one of them is an event; InstanceTaskChanges reads them. The channel
// closes when ctx ends.
func (s *Store) WatchInstanceTasks(ctx context.Context, cluster, instanceID string, rev int64) clientv3.WatchChan {
	return s.cli.Watch(ctx, instanceTasksOf(cluster, instanceID), clientv3.WithPrefix(), clientv3.WithRev(rev))
}

// InstanceTaskChange is one event of WatchInstanceTasks, read from the
// instance's task index alone (no task record is read).
type InstanceTaskChange struct {
	TaskID        string
	DesiredStatus string // "" when Stopped
	// Stopped: the task's record is STOPPED (moved to the stopped tasks);
	// it is no longer placed on the instance.
	Stopped  bool
	Revision int64
}

// InstanceTaskChanges decodes a WatchInstanceTasks response's events, in
// order.
func InstanceTaskChanges(wr clientv3.WatchResponse) ([]InstanceTaskChange, error) {
	out := make([]InstanceTaskChange, 0, len(wr.Events))
	for _, ev := range wr.Events {
		c := InstanceTaskChange{TaskID: lastSegment(string(ev.Kv.Key)), Revision: ev.Kv.ModRevision}
		if ev.Type == clientv3.EventTypeDelete {
			c.Stopped = true
		} else {
			var ix taskIndex
			if err := json.Unmarshal(ev.Kv.Value, &ix); err != nil {
				return nil, fmt.Errorf("decode %s: %w", ev.Kv.Key, err)
			}
			c.DesiredStatus = ix.DesiredStatus
		}
		out = append(out, c)
	}
	return out, nil
}

// TaskCounts are an instance's or a cluster's task counts as ECS reports
// them.
type TaskCounts struct {
	DesiredRunning int32 // desiredStatus RUNNING: an instance's runningTasksCount
	Running        int32 // lastStatus RUNNING: a cluster's runningTasksCount
	Pending        int32 // lastStatus PENDING: pendingTasksCount of both
}

// add counts a task by its index entry.
func (c *TaskCounts) add(ix taskIndex) {
	if ix.DesiredStatus == ecs.TaskStatusRunning {
		c.DesiredRunning++
	}
	switch ix.LastStatus {
	case ecs.TaskStatusRunning:
		c.Running++
	case ecs.TaskStatusPending:
		c.Pending++
	}
}

// CountTasks counts the tasks that are not STOPPED on each instance of a
// cluster (by instance ID) and in total.
func (s *Store) CountTasks(ctx context.Context, cluster string) (byInstance map[string]TaskCounts, total TaskCounts, err error) {
	prefix := clusterInstanceTasks(cluster)
	byInstance = map[string]TaskCounts{}
	var derr error
	_, _, err = s.scan(ctx, prefix, "", 0, func(key string, value []byte) bool {
		var ix taskIndex
		if derr = json.Unmarshal(value, &ix); derr != nil {
			derr = fmt.Errorf("decode %s: %w", key, derr)
			return false
		}
		iid, _, _ := strings.Cut(key[len(prefix):], "/")
		c := byInstance[iid]
		c.add(ix)
		total.add(ix)
		byInstance[iid] = c
		return true
	})
	if err == nil {
		err = derr
	}
	return byInstance, total, err
}

// ListTasks returns up to limit tasks of cluster, running ones (active)
// and/or stopped ones (stopped), whose IDs sort after `after` and for
// which keep (may be nil) is true, in ID order; next is the ID to continue
// from when more may remain. Both sets are read at one revision.
func (s *Store) ListTasks(ctx context.Context, cluster string, active, stopped bool, after string, limit int, keep func(*TaskRecord) bool) (out []*TaskRecord, next string, err error) {
	var rev int64
	var more bool
	collect := func(prefix string) ([]*TaskRecord, error) {
		var got []*TaskRecord
		var derr error
		m, r, err := s.scan(ctx, prefix, after, rev, func(key string, value []byte) bool {
			t := new(TaskRecord)
			if derr = json.Unmarshal(value, t); derr != nil {
				derr = fmt.Errorf("decode %s: %w", key, derr)
				return false
			}
			if keep == nil || keep(t) {
				got = append(got, t)
			}
			return len(got) < limit
		})
		rev = r
		more = more || m
		if err == nil {
			err = derr
		}
		return got, err
	}
	if active {
		got, err := collect(tasksOf(cluster))
		if err != nil {
			return nil, "", err
		}
		out = append(out, got...)
	}
	if stopped {
		got, err := collect(stoppedTasksOf(cluster))
		if err != nil {
			return nil, "", err
		}
		out = append(out, got...)
	}
	slices.SortFunc(out, func(a, b *TaskRecord) int { return strings.Compare(a.ID(), b.ID()) })
	if len(out) > limit {
		out, more = out[:limit], true
	}
	if more && len(out) > 0 {
		next = out[len(out)-1].ID()
	}
	return out, next, nil
}
