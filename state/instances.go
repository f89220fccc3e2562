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

// InactiveInstanceTTL is how long a deregistered container instance stays
// describable as INACTIVE.
const InactiveInstanceTTL = time.Hour

// InstanceRecord is a container instance as the store keeps it: the
// ContainerInstance's own fields (derived ones, remainingResources,
// agentConnected and the task counts, are computed when read), the hash of
// the agent's instance token, and what each task placed on it holds.
//
// The record is the instance's lock: every placement on the instance, and
// every release when a task stops, rewrites it in the same transaction as
// the task, guarded by the revision it was read at, so two writers can
// never hand out the same capacity.
type InstanceRecord struct {
	ecs.ContainerInstance
	TokenHash string `json:"tokenHash,omitempty"`
	// AgentAttributes names the attributes the agent reported when it last
	// registered, as opposed to those set with PutAttributes: a
	// re-registration replaces the former and keeps the latter.
	AgentAttributes []string `json:"agentAttributes,omitzero"`
	// Held maps the ID of each task placed here and not yet STOPPED to
	// what it holds and its group (placement constraints and strategies
	// look at the groups; being in this record, they are as consistent as
	// the capacity).
	Held map[string]scheduler.Held `json:"held,omitzero"`
}

// ID is the instance's ID, the last segment of its ARN.
func (r *InstanceRecord) ID() string { return lastSegment(r.ContainerInstanceARN) }

// Cluster is the name of the instance's cluster, from its ARN.
func (r *InstanceRecord) Cluster() string { return clusterSegment(r.ContainerInstanceARN) }

// HeldResources lists what the instance's tasks hold.
func (r *InstanceRecord) HeldResources() []scheduler.Resources {
	out := make([]scheduler.Resources, 0, len(r.Held))
	for _, k := range slices.Sorted(maps.Keys(r.Held)) {
		out = append(out, r.Held[k].Resources)
	}
	return out
}

// HeldTasks lists what the instance's tasks hold, with their groups.
func (r *InstanceRecord) HeldTasks() []scheduler.Held {
	out := make([]scheduler.Held, 0, len(r.Held))
	for _, h := range r.Held {
		out = append(out, h)
	}
	return out
}

// View is the instance as DescribeContainerInstances shows it: the stored
// fields plus the derived ones, remainingResources, agentConnected and the
// task counts. Tags are included; callers drop them unless asked for.
func (r *InstanceRecord) View(connected bool, c TaskCounts) *ecs.ContainerInstance {
	v := r.ContainerInstance
	v.RemainingResources = scheduler.Remaining(r.RegisteredResources, r.HeldResources())
	v.RegisteredResources = slices.Clone(r.RegisteredResources)
	v.AgentConnected = connected && r.Status != ecs.InstanceStatusInactive
	v.RunningTasksCount = c.DesiredRunning
	v.PendingTasksCount = c.Pending
	v.Attributes = slices.Clone(r.Attributes)
	return &v
}

func lastSegment(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

// clusterSegment returns <cluster> from ".../<kind>/<cluster>/<id>".
func clusterSegment(arn string) string {
	rest := arn[:strings.LastIndexByte(arn, '/')]
	return rest[strings.LastIndexByte(rest, '/')+1:]
}

// Errors of the instance store.
var (
	// ErrClusterNotActive: the cluster does not exist or was deleted.
	ErrClusterNotActive = errors.New("cluster is not active")
	// ErrInstanceHasTasks: deregistration without force of an instance
	// with tasks that are not STOPPED.
	ErrInstanceHasTasks = errors.New("container instance has tasks")
)

// CreateInstance stores a new instance, in the same transaction checking
// that its cluster is ACTIVE (so an instance cannot be registered into a
// cluster being deleted), and marks its agent connected for ttl when ttl
// is positive.
func (s *Store) CreateInstance(ctx context.Context, rec *InstanceRecord, ttl time.Duration) error {
	cluster, id := rec.Cluster(), rec.ID()
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	key := instanceKey(cluster, id)
	ops := []clientv3.Op{clientv3.OpPut(key, string(b))}
	var lease clientv3.LeaseID
	if ttl > 0 {
		if lease, err = s.grant(ctx, ttl); err != nil {
			return err
		}
		ops = append(ops, clientv3.OpPut(connectedKey(cluster, id), "", clientv3.WithLease(lease)))
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(clusterKey(cluster)), ">", 0),
			clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(ops...).
		Commit()
	if err != nil {
		return fmt.Errorf("etcd create instance: %w", err)
	}
	if !resp.Succeeded {
		s.revoke(lease)
		if _, err := s.ActiveCluster(ctx, cluster); err != nil {
			return ErrClusterNotActive
		}
		return ErrExists
	}
	return nil
}

// GetInstance returns an instance, registered or recently deregistered
// (INACTIVE), and the revision it was read at; ErrNotFound otherwise.
func (s *Store) GetInstance(ctx context.Context, cluster, id string) (*InstanceRecord, int64, error) {
	rec := new(InstanceRecord)
	rev, err := s.get(ctx, instanceKey(cluster, id), rec)
	if errors.Is(err, ErrNotFound) {
		rec = new(InstanceRecord)
		rev, err = s.get(ctx, inactiveInstanceKey(cluster, id), rec)
	}
	if err != nil {
		return nil, 0, err
	}
	return rec, rev, nil
}

// UpdateInstance applies fn to a registered (not INACTIVE) instance
// atomically. fn may run several times.
func (s *Store) UpdateInstance(ctx context.Context, cluster, id string, fn func(*InstanceRecord) error) (*InstanceRecord, error) {
	return update(ctx, s, instanceKey(cluster, id), func(r *InstanceRecord) error {
		if err := fn(r); err != nil {
			return err
		}
		r.Version++
		return nil
	})
}

// UpdateInstances applies fn to several registered instances of one
// cluster in one transaction, all or none: ErrNotFound names no instance
// but says one is missing (callers check which first to explain it).
func (s *Store) UpdateInstances(ctx context.Context, cluster string, ids []string, fn func(*InstanceRecord) error) ([]*InstanceRecord, error) {
	for attempt := range maxAttempts {
		recs := make([]*InstanceRecord, len(ids))
		var cmps []clientv3.Cmp
		var ops []clientv3.Op
		for i, id := range ids {
			key := instanceKey(cluster, id)
			rec := new(InstanceRecord)
			rev, err := s.get(ctx, key, rec)
			if err != nil {
				return nil, err
			}
			if err := fn(rec); err != nil {
				return nil, err
			}
			rec.Version++
			b, err := json.Marshal(rec)
			if err != nil {
				return nil, err
			}
			recs[i] = rec
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", rev))
			ops = append(ops, clientv3.OpPut(key, string(b)))
		}
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err != nil {
			return nil, fmt.Errorf("etcd update instances: %w", err)
		}
		if resp.Succeeded {
			return recs, nil
		}
		retryPause(ctx, attempt)
	}
	return nil, ErrConflict
}

// ListInstances returns up to limit registered instances of cluster whose
// IDs sort after `after` and for which keep (may be nil) is true, and the
// ID to continue from when more may remain.
func (s *Store) ListInstances(ctx context.Context, cluster, after string, limit int, keep func(*InstanceRecord) bool) (out []*InstanceRecord, next string, err error) {
	out, more, err := scanRecords(ctx, s, instancesOf(cluster), after, limit, keep)
	if err != nil {
		return nil, "", err
	}
	if more && len(out) > 0 {
		next = out[len(out)-1].ID()
	}
	return out, next, nil
}

// InstanceSnapshot is the placement view of a cluster's registered
// instances, read at one revision: each record with the revision to guard
// a placement with, and whether its agent is connected.
type InstanceSnapshot struct {
	Records   []*InstanceRecord
	Revisions []int64
	Connected []bool
}

// SnapshotInstances reads every registered instance of cluster, ordered by
// registration time (then ID), with their connection state.
func (s *Store) SnapshotInstances(ctx context.Context, cluster string) (*InstanceSnapshot, error) {
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(instancesOf(cluster), clientv3.WithPrefix()),
		clientv3.OpGet(connectedOf(cluster), clientv3.WithPrefix(), clientv3.WithKeysOnly()),
	).Commit()
	if err != nil {
		return nil, fmt.Errorf("etcd snapshot instances: %w", err)
	}
	connected := map[string]bool{}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		connected[lastSegment(string(kv.Key))] = true
	}
	type entry struct {
		rec *InstanceRecord
		rev int64
	}
	var es []entry
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		r := new(InstanceRecord)
		if err := json.Unmarshal(kv.Value, r); err != nil {
			return nil, fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		es = append(es, entry{r, kv.ModRevision})
	}
	slices.SortStableFunc(es, func(a, b entry) int {
		if c := a.rec.RegisteredAt.Compare(b.rec.RegisteredAt.Time); c != 0 {
			return c
		}
		return strings.Compare(a.rec.ID(), b.rec.ID())
	})
	snap := &InstanceSnapshot{}
	for _, e := range es {
		snap.Records = append(snap.Records, e.rec)
		snap.Revisions = append(snap.Revisions, e.rev)
		snap.Connected = append(snap.Connected, connected[e.rec.ID()])
	}
	return snap, nil
}

// Connected reports which of cluster's instances have a connected agent.
func (s *Store) Connected(ctx context.Context, cluster string) (map[string]bool, error) {
	resp, err := s.cli.Get(ctx, connectedOf(cluster), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("etcd connected: %w", err)
	}
	out := make(map[string]bool, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[lastSegment(string(kv.Key))] = true
	}
	return out, nil
}

// Heartbeat records that the agent of a registered instance is alive: it
// refreshes the lease on the instance's connected key, or, when the key
// has expired, creates it again on a new lease of ttl. It returns the
// instance's status; a deregistered instance is not refreshed (INACTIVE),
// and one whose record is gone is ErrNotFound.
func (s *Store) Heartbeat(ctx context.Context, cluster, id string, ttl time.Duration) (string, error) {
	ckey, ikey := connectedKey(cluster, id), instanceKey(cluster, id)
	resp, err := s.cli.Txn(ctx).Then(clientv3.OpGet(ckey), clientv3.OpGet(ikey)).Commit()
	if err != nil {
		return "", fmt.Errorf("etcd heartbeat: %w", err)
	}
	conn, inst := resp.Responses[0].GetResponseRange().Kvs, resp.Responses[1].GetResponseRange().Kvs
	if len(inst) == 0 {
		return s.inactiveStatus(ctx, cluster, id)
	}
	status, err := instanceStatus(inst[0].Value)
	if err != nil {
		return "", err
	}
	if len(conn) > 0 && conn[0].Lease != 0 {
		if _, err := s.cli.KeepAliveOnce(ctx, clientv3.LeaseID(conn[0].Lease)); err == nil {
			return status, nil
		}
		// Expired between the read and the refresh: connect anew.
	}
	lease, err := s.grant(ctx, ttl)
	if err != nil {
		return "", err
	}
	tresp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(ikey), ">", 0)).
		Then(clientv3.OpPut(ckey, "", clientv3.WithLease(lease)), clientv3.OpGet(ikey)).
		Commit()
	if err != nil {
		s.revoke(lease)
		return "", fmt.Errorf("etcd heartbeat: %w", err)
	}
	if !tresp.Succeeded {
		s.revoke(lease)
		return s.inactiveStatus(ctx, cluster, id)
	}
	return instanceStatus(tresp.Responses[1].GetResponseRange().Kvs[0].Value)
}

// inactiveStatus is the status of an instance that is not registered: that
// of its INACTIVE record, or ErrNotFound.
func (s *Store) inactiveStatus(ctx context.Context, cluster, id string) (string, error) {
	var st struct {
		Status string `json:"status"`
	}
	if _, err := s.get(ctx, inactiveInstanceKey(cluster, id), &st); err != nil {
		return "", err
	}
	return st.Status, nil
}

// instanceStatus reads an instance record's status alone.
func instanceStatus(b []byte) (string, error) {
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return "", fmt.Errorf("decode instance: %w", err)
	}
	return st.Status, nil
}

// DeregisterInstance moves a registered instance to INACTIVE: it stays
// describable for InactiveInstanceTTL and its agent is disconnected. An
// instance with tasks that are not STOPPED is ErrInstanceHasTasks unless
// force is set; then the instance first goes to DEREGISTERING (so nothing
// new is placed on it), each of its tasks is marked STOPPED with stop,
// which releases what it held, and finally the instance moves, in a
// transaction that checks no task was placed on it meanwhile.
func (s *Store) DeregisterInstance(ctx context.Context, cluster, id string, force bool, at time.Time, stop func(*ecs.Task)) (*InstanceRecord, error) {
	key, tasksPrefix := instanceKey(cluster, id), instanceTasksOf(cluster, id)
	for range maxAttempts {
		rec := new(InstanceRecord)
		rev, err := s.get(ctx, key, rec)
		if err != nil {
			return nil, err
		}
		n, err := s.count(ctx, tasksPrefix)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			if !force {
				return nil, ErrInstanceHasTasks
			}
			if err := s.stopInstanceTasks(ctx, cluster, id, at, stop); err != nil {
				return nil, err
			}
			continue
		}
		rec.Status = ecs.InstanceStatusInactive
		rec.Version++
		rec.Held = nil
		b, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		lease, err := s.grant(ctx, InactiveInstanceTTL)
		if err != nil {
			return nil, err
		}
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", rev), emptyPrefix(tasksPrefix)).
			Then(clientv3.OpDelete(key),
				clientv3.OpPut(inactiveInstanceKey(cluster, id), string(b), clientv3.WithLease(lease)),
				clientv3.OpDelete(connectedKey(cluster, id))).
			Commit()
		if err != nil {
			s.revoke(lease)
			return nil, fmt.Errorf("etcd deregister instance: %w", err)
		}
		if resp.Succeeded {
			return rec, nil
		}
		s.revoke(lease)
	}
	return nil, ErrConflict
}

// stopInstanceTasks marks DEREGISTERING and stops every task on the instance.
func (s *Store) stopInstanceTasks(ctx context.Context, cluster, id string, at time.Time, stop func(*ecs.Task)) error {
	if _, err := s.UpdateInstance(ctx, cluster, id, func(r *InstanceRecord) error {
		r.Status = ecs.InstanceStatusDeregistering
		return nil
	}); err != nil {
		return err
	}
	ids, err := s.keysUnder(ctx, instanceTasksOf(cluster, id))
	if err != nil {
		return err
	}
	for _, tid := range ids {
		_, err := s.UpdateTask(ctx, cluster, tid, func(t *TaskRecord) (bool, error) {
			stop(&t.Task)
			return true, nil
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

// keysUnder lists the last segments of the keys under prefix.
func (s *Store) keysUnder(ctx context.Context, prefix string) ([]string, error) {
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("etcd list %s: %w", prefix, err)
	}
	out := make([]string, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		out[i] = lastSegment(string(kv.Key))
	}
	return out, nil
}

// grant creates a lease of at least d (etcd counts in whole seconds).
func (s *Store) grant(ctx context.Context, d time.Duration) (clientv3.LeaseID, error) {
	secs := int64((d + time.Second - 1) / time.Second)
	resp, err := s.cli.Grant(ctx, max(secs, 1))
	if err != nil {
		return 0, fmt.Errorf("etcd lease: %w", err)
	}
	return resp.ID, nil
}

// revoke drops a lease a failed transaction did not use. Errors are
// harmless: an unused lease expires by itself.
func (s *Store) revoke(id clientv3.LeaseID) {
	if id == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.cli.Revoke(ctx, id)
}
