package state

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"

	"github.com/gantry-dev/gantry/scheduler"
)

// InstanceView is a cluster's registered instances held in memory, with
// their connection states and their scheduler.Nodes, kept current by etcd
// watches: the placement view. Reading it costs no etcd round trip and no
// decoding, where SnapshotInstances reads and decodes every record.
//
// The watches deliver changes a little after they commit, so a caller
// first Syncs the view: it learns etcd's current revision with one read
// and waits until the watches have reported up to it (asking etcd for a
// progress notification when nothing else changed), which makes every
// registration, state change and placement that completed before the call
// visible to it. A change that lands between Sync and the commit makes the
// commit fail: every placement is guarded by the revision of the instance
// record it read, and PlaceTasks also by the agent's connection (PlaceTask,
// PlaceTasks), so the caller Syncs again and decides again. Callers Update
// the view with the records their own placements wrote.
type InstanceView struct {
	store   *Store
	cluster string
	wctx    context.Context // the watches' context: their own gRPC stream
	cancel  context.CancelFunc

	mu        sync.RWMutex
	instRev   int64             // etcd revision the instance watch has reported up to
	connRev   int64             // the same for the connection watch
	advanced  chan struct{}     // closed (and replaced) when either moves on
	recs      []*InstanceRecord // registration order, then ID
	revs      []int64
	nodes     []scheduler.Node
	pos       map[string]int   // instance ID -> index
	connected map[string]bool  // instance ID -> agent connected
	gone      map[string]int64 // deregistered instance ID -> revision it went at
	err       error            // the watch ended: the view is no longer current
}

// viewStreams numbers the views' watch streams.
var viewStreams atomic.Int64

// WatchInstances loads the cluster's registered instances and keeps them
// current until Close, or until the watch fails (Err).
func (s *Store) WatchInstances(cluster string) (*InstanceView, error) {
	// clientv3 puts watches whose contexts carry the same gRPC metadata on
	// one stream, and etcd answers Sync's progress requests per stream,
	// only when every watch on it is caught up and started: a view gets a
	// stream of its own (a unique metadata value), so neither another
	// view nor a busy watch elsewhere (the service controller's, the
	// agents') can hold its Sync up. WithRequireLeader: a lost leader ends
	// the watch; the caller then loads a new view.
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(
		clientv3.WithRequireLeader(context.Background()), "gantry-view", strconv.FormatInt(viewStreams.Add(1), 10)))
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(instancesOf(cluster), clientv3.WithPrefix()),
		clientv3.OpGet(connectedOf(cluster), clientv3.WithPrefix(), clientv3.WithKeysOnly()),
	).Commit()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("etcd load instances: %w", err)
	}
	v := &InstanceView{store: s, cluster: cluster, wctx: ctx, cancel: cancel, advanced: make(chan struct{}),
		instRev: resp.Header.Revision, connRev: resp.Header.Revision,
		pos: map[string]int{}, connected: map[string]bool{}, gone: map[string]int64{}}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		v.connected[lastSegment(string(kv.Key))] = true
	}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		r := new(InstanceRecord)
		if err := json.Unmarshal(kv.Value, r); err != nil {
			cancel()
			return nil, fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		v.set(r, kv.ModRevision)
	}
	// Watch from the next revision: a watch that starts after etcd's
	// current revision is in sync at once, while one that starts at or
	// before it stays unsynced until etcd's next sync pass, and etcd drops
	// progress requests on a stream with an unsynced watch (Sync would wait
	// for its re-ask). A view on its own stream cannot hold another up.
	rev := resp.Header.Revision + 1
	instances := s.cli.Watch(ctx, instancesOf(cluster), clientv3.WithPrefix(), clientv3.WithRev(rev))
	connected := s.cli.Watch(ctx, connectedOf(cluster), clientv3.WithPrefix(), clientv3.WithRev(rev))
	go v.follow(ctx, instances, connected)
	return v, nil
}

// Close stops the watch.
func (v *InstanceView) Close() { v.cancel() }

// Err is why the view stopped following etcd (nil while it does). A view
// with an error is stale: make a new one.
func (v *InstanceView) Err() error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.err
}

// Read calls fn with the instances in registration order, the revision
// each was read at, and their Nodes, under the view's read lock: fn must
// be quick and must not keep or modify what it is given.
func (v *InstanceView) Read(fn func(recs []*InstanceRecord, revs []int64, nodes []scheduler.Node)) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	fn(v.recs, v.revs, v.nodes)
}

// Update records what a placement wrote: the instance as written at rev.
// Older news than the view has is ignored.
func (v *InstanceView) Update(r *InstanceRecord, rev int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.set(r, rev)
}

// syncStall is how long Sync waits for the watches before it gives the
// view up.
const syncStall = 10 * time.Second

// Sync waits until the view reflects everything etcd had committed when
// Sync was called.
func (v *InstanceView) Sync(ctx context.Context) error {
	resp, err := v.store.cli.Get(ctx, clusterKey(v.cluster), clientv3.WithCountOnly())
	if err != nil {
		return fmt.Errorf("etcd revision: %w", err)
	}
	rev := resp.Header.Revision
	asked, stall := false, time.Now().Add(syncStall)
	for {
		v.mu.RLock()
		caught, advanced, err := min(v.instRev, v.connRev) >= rev, v.advanced, v.err
		v.mu.RUnlock()
		switch {
		case err != nil:
			return err
		case caught:
			return nil
		case !asked:
			// Changes elsewhere in etcd do not move these watches on:
			// ask for a progress notification, which comes after every
			// event up to etcd's current revision.
			if err := v.store.cli.RequestProgress(v.wctx); err != nil {
				return fmt.Errorf("etcd watch progress: %w", err)
			}
			asked = true
		}
		// etcd drops a progress request while a watch on the stream is
		// catching up (writes between the load and the watch), so ask
		// again soon: on a view's own stream a request is cheap.
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-advanced:
		case <-t.C:
			asked = false // ask again
			if time.Now().After(stall) {
				// A view that cannot catch up (a starved etcd, a watch
				// etcd keeps unsynced) must not hold RunTask forever:
				// give it up, the caller loads a new one.
				err := fmt.Errorf("placement view of %s: not caught up with revision %d after %v", v.cluster, rev, syncStall)
				v.mu.Lock()
				v.err = cmp.Or(v.err, err)
				v.mu.Unlock()
				v.cancel()
				return err
			}
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}

// follow applies watch events until a watch ends.
func (v *InstanceView) follow(ctx context.Context, instances, connected clientv3.WatchChan) {
	fail := func(err error) {
		v.mu.Lock()
		v.err = cmp.Or(err, ctx.Err(), errors.New("watch closed"))
		v.mu.Unlock()
		v.cancel()
	}
	for {
		select {
		case resp, ok := <-instances:
			if !ok || resp.Err() != nil {
				fail(resp.Err())
				return
			}
			v.mu.Lock()
			v.advance(&v.instRev, resp.Header.Revision)
			for _, ev := range resp.Events {
				id := lastSegment(string(ev.Kv.Key))
				if ev.Type == clientv3.EventTypeDelete {
					v.remove(id, ev.Kv.ModRevision)
					continue
				}
				if i, ok := v.pos[id]; ok && v.revs[i] >= ev.Kv.ModRevision {
					continue // our own placement, already applied: skip decoding
				}
				r := new(InstanceRecord)
				if err := json.Unmarshal(ev.Kv.Value, r); err != nil {
					v.mu.Unlock()
					fail(fmt.Errorf("decode %s: %w", ev.Kv.Key, err))
					return
				}
				v.set(r, ev.Kv.ModRevision)
			}
			v.mu.Unlock()
		case resp, ok := <-connected:
			if !ok || resp.Err() != nil {
				fail(resp.Err())
				return
			}
			v.mu.Lock()
			v.advance(&v.connRev, resp.Header.Revision)
			for _, ev := range resp.Events {
				id := lastSegment(string(ev.Kv.Key))
				v.connected[id] = ev.Type == clientv3.EventTypePut
				if i, ok := v.pos[id]; ok {
					v.nodes[i].Connected = v.connected[id]
				}
			}
			v.mu.Unlock()
		}
	}
}

// advance moves a watch's revision on and wakes Sync. Call with v.mu
// held.
func (v *InstanceView) advance(watched *int64, rev int64) {
	if rev > *watched {
		*watched = rev
		close(v.advanced)
		v.advanced = make(chan struct{})
	}
}

// set puts r, read at rev, in its place in registration order, unless the
// view already has it at rev or later, or saw it deregistered. Call with
// v.mu held.
func (v *InstanceView) set(r *InstanceRecord, rev int64) {
	id := r.ID()
	if g, ok := v.gone[id]; ok && g >= rev {
		return
	}
	i, ok := v.pos[id]
	if ok && v.revs[i] >= rev {
		return
	}
	node := scheduler.NewNode(&r.ContainerInstance, v.connected[id], r.HeldTasks())
	if ok && v.recs[i].RegisteredAt.Equal(r.RegisteredAt.Time) {
		v.recs[i], v.revs[i], v.nodes[i] = r, rev, node
		return
	}
	if ok {
		v.removeAt(i)
	}
	i, _ = slices.BinarySearchFunc(v.recs, r, func(a, b *InstanceRecord) int {
		if c := a.RegisteredAt.Compare(b.RegisteredAt.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID(), b.ID())
	})
	v.recs = slices.Insert(v.recs, i, r)
	v.revs = slices.Insert(v.revs, i, rev)
	v.nodes = slices.Insert(v.nodes, i, node)
	v.reindex(i)
}

// remove drops an instance deregistered at rev. Call with v.mu held.
func (v *InstanceView) remove(id string, rev int64) {
	v.gone[id] = max(v.gone[id], rev)
	if i, ok := v.pos[id]; ok && v.revs[i] < rev {
		v.removeAt(i)
	}
}

func (v *InstanceView) removeAt(i int) {
	delete(v.pos, v.recs[i].ID())
	v.recs = slices.Delete(v.recs, i, i+1)
	v.revs = slices.Delete(v.revs, i, i+1)
	v.nodes = slices.Delete(v.nodes, i, i+1)
	v.reindex(i)
}

func (v *InstanceView) reindex(from int) {
	for j := from; j < len(v.recs); j++ {
		v.pos[v.recs[j].ID()] = j
	}
}

// PlaceTasks is PlaceTask for several tasks in one transaction, so a batch
// of RunTasks costs one etcd commit: task i goes on insts[on[i]], which was
// read at revs[on[i]], and holds held[i]. All or nothing: ErrConflict when
// any of the instances changed since it was read or its agent is no longer
// connected (the caller reads again and decides again), ErrExists when the
// ID of a task with a ClientToken is taken (a retried RunTask; the caller
// finds which). Keep a transaction under etcd's 128 operations of each
// kind: a task is two writes, an instance one write and two comparisons.
// On success it returns the instance records as written, parallel to
// insts, and the revision they were written at.
func (s *Store) PlaceTasks(ctx context.Context, insts []*InstanceRecord, revs []int64, tasks []*TaskRecord, held []scheduler.Resources, on []int) ([]*InstanceRecord, int64, error) {
	next := make([]*InstanceRecord, len(insts))
	for i, inst := range insts {
		n := *inst
		n.Held = maps.Clone(inst.Held)
		if n.Held == nil {
			n.Held = map[string]scheduler.Held{}
		}
		n.Version++
		next[i] = &n
	}
	var cmps []clientv3.Cmp
	var ops, orElse []clientv3.Op
	for k, t := range tasks {
		cluster, tid := t.Cluster(), t.ID()
		next[on[k]].Held[tid] = scheduler.Held{Resources: held[k], Group: t.Group}
		tb, err := json.Marshal(t)
		if err != nil {
			return nil, 0, err
		}
		tkey, skey := taskKey(cluster, tid), stoppedTaskKey(cluster, tid)
		ops = append(ops, clientv3.OpPut(tkey, string(tb)), clientv3.OpPut(instanceTaskKey(cluster, insts[on[k]].ID(), tid), indexOf(t)))
		if t.ClientToken != "" {
			// IDs derived from a clientToken repeat when a request is
			// retried; random ones (128 bits) do not, and need no check.
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(tkey), "=", 0), clientv3.Compare(clientv3.CreateRevision(skey), "=", 0))
			orElse = append(orElse, clientv3.OpGet(tkey, clientv3.WithCountOnly()), clientv3.OpGet(skey, clientv3.WithCountOnly()))
		}
	}
	for i, inst := range insts {
		key := instanceKey(inst.Cluster(), inst.ID())
		b, err := json.Marshal(next[i])
		if err != nil {
			return nil, 0, err
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", revs[i]),
			clientv3.Compare(clientv3.CreateRevision(connectedKey(inst.Cluster(), inst.ID())), ">", 0))
		ops = append(ops, clientv3.OpPut(key, string(b)))
	}
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Else(orElse...).Commit()
	if err != nil {
		return nil, 0, fmt.Errorf("etcd place tasks: %w", err)
	}
	if resp.Succeeded {
		return next, resp.Header.Revision, nil
	}
	for _, r := range resp.Responses {
		if r.GetResponseRange().Count > 0 {
			return nil, 0, ErrExists
		}
	}
	return nil, 0, ErrConflict
}

// FindTasks returns the tasks, running or stopped, that exist among ids
// (by ID), read in one transaction: RunTask's check for the tasks of a
// retried clientToken.
func (s *Store) FindTasks(ctx context.Context, cluster string, ids []string) (map[string]*TaskRecord, error) {
	ops := make([]clientv3.Op, 0, 2*len(ids))
	for _, id := range ids {
		ops = append(ops, clientv3.OpGet(taskKey(cluster, id)), clientv3.OpGet(stoppedTaskKey(cluster, id)))
	}
	resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, fmt.Errorf("etcd find tasks: %w", err)
	}
	out := map[string]*TaskRecord{}
	for _, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().Kvs {
			t := new(TaskRecord)
			if err := json.Unmarshal(kv.Value, t); err != nil {
				return nil, fmt.Errorf("decode %s: %w", kv.Key, err)
			}
			out[t.ID()] = t
		}
	}
	return out, nil
}
