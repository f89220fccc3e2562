package ecsapi

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/scheduler"
	"github.com/gantry-dev/gantry/scheduler/query"
	"github.com/gantry-dev/gantry/state"
)

// RunTask and StartTask place tasks before they answer. The scheduler
// decides on the cluster's placement view (state.InstanceView: the
// instances in memory, kept current by an etcd watch and synced with etcd
// before each decision), and the tasks are committed in one transaction
// guarded by the revision of each instance record used and by its agent's
// connection (state.PlaceTasks). A lost race (another server's placement,
// a task that stopped, an instance drained or disconnected meanwhile)
// syncs the view and decides again, so concurrent RunTasks, on this server
// or another, never hand out the same capacity twice.
//
// Within one server, a cluster's placements go through one committer at a
// time (group commit): requests that arrive while a transaction is in
// flight queue up, and the next batch of them is decided together, each
// on the cluster as the ones before it left it, and committed in one
// transaction. An etcd commit (a disk sync) costs more than deciding, so
// under load this places several RunTasks per commit instead of one. See
// docs/scheduler.md.

// maxPlaceAttempts bounds the decisions after lost races.
const maxPlaceAttempts = 64

// Limits of one batch: etcd allows 128 operations of each kind in a
// transaction; a task takes two writes and, with a clientToken (the AWS
// SDKs and CLI always send one), two comparisons; an instance one write
// and two comparisons.
const (
	maxTasksPerCommit    = 30
	maxRequestsPerCommit = 3
	maxTasksPerRequest   = 10 // RunTask's most; larger requests go in parts
)

// clusterPlacer is this server's placement state for one cluster: the
// queue of placement requests, whether a committer is draining it, and
// the placement view.
type clusterPlacer struct {
	mu      sync.Mutex
	queue   []*placeReq
	running bool // a committer goroutine drains the queue

	viewMu sync.Mutex
	view   *state.InstanceView // nil until the first placement
}

// placeReq is one decision and commit a request waits for.
type placeReq struct {
	ctx     context.Context
	spec    *taskSpec
	ids     []string // at most maxTasksPerCommit
	running map[string]state.TaskCounts
	choose  chooser

	done     chan struct{}
	placed   []*state.TaskRecord
	failures []ecs.Failure
	err      error
}

func (a *API) placer(cluster string) *clusterPlacer {
	v, _ := a.placeLocks.LoadOrStore(cluster, new(clusterPlacer))
	return v.(*clusterPlacer)
}

// synced returns the cluster's placement view, synced with etcd; a view
// whose watch failed is replaced.
func (cp *clusterPlacer) synced(ctx context.Context, store *state.Store, cluster string) (*state.InstanceView, error) {
	cp.viewMu.Lock()
	v := cp.view
	if v == nil || v.Err() != nil {
		if v != nil {
			v.Close()
		}
		var err error
		if v, err = store.WatchInstances(cluster); err != nil {
			cp.viewMu.Unlock()
			return nil, err
		}
		cp.view = v
		cp.viewMu.Unlock()
		return v, nil
	}
	cp.viewMu.Unlock()
	if err := v.Sync(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return cp.synced(ctx, store, cluster) // the watch failed: a new view
	}
	return v, nil
}

// chooser picks instances for n tasks from the cluster's registered
// instances; an error refuses the whole request. nodes must not be kept.
type chooser func(nodes []scheduler.Node, n int) (scheduler.Plan, error)

// place places one task per ID in ids, as choose decides, and returns the
// tasks it placed and, for those it could not, the instances' reasons.
// counts asks for the instances' exact runningTasksCount (an extra read),
// for constraints that look at it.
func (a *API) place(ctx context.Context, spec *taskSpec, ids []string, counts bool, choose chooser) (placed []*state.TaskRecord, failures []ecs.Failure, err error) {
	cp := a.placer(spec.cluster)
	for attempt := 0; len(ids) > 0; attempt++ {
		switch {
		case attempt == maxPlaceAttempts:
			return placed, nil, fmt.Errorf("placing tasks in %s: %w", spec.cluster, state.ErrConflict)
		case attempt > 1:
			pause(ctx, attempt) // another server keeps winning: back off
		}
		// Sync before queueing: everything committed before now is then
		// in the view the committer decides on.
		if _, err := cp.synced(ctx, a.store, spec.cluster); err != nil {
			return placed, nil, err
		}
		req := &placeReq{ctx: ctx, spec: spec, ids: ids[:min(len(ids), maxTasksPerRequest)], choose: choose, done: make(chan struct{})}
		if counts {
			if req.running, _, err = a.store.CountTasks(ctx, spec.cluster); err != nil {
				return placed, nil, err
			}
		}
		a.submit(cp, req)
		select {
		case <-req.done:
		case <-ctx.Done():
			// The batch may already be committing; the caller cannot hear.
			return placed, nil, ctx.Err()
		}
		switch err := req.err; {
		case errors.Is(err, state.ErrConflict):
			continue // sync again and decide again
		case errors.Is(err, state.ErrExists):
			// The same clientToken, placed concurrently: those count.
			if ids, placed, err = a.takeExisting(ctx, spec.cluster, ids, placed); err != nil {
				return placed, nil, err
			}
			continue
		case err != nil:
			return placed, nil, err
		}
		placed = append(placed, req.placed...)
		ids = ids[len(req.placed):]
		if len(ids) > 0 && req.failures != nil {
			return placed, req.failures, nil
		}
	}
	return placed, nil, nil
}

// submit queues req and makes sure a committer drains the queue.
func (a *API) submit(cp *clusterPlacer, req *placeReq) {
	cp.mu.Lock()
	cp.queue = append(cp.queue, req)
	start := !cp.running
	cp.running = true
	cp.mu.Unlock()
	if start {
		go a.commitLoop(cp)
	}
}

// commitLoop decides and commits batches of queued requests until the
// queue is empty.
func (a *API) commitLoop(cp *clusterPlacer) {
	for {
		cp.mu.Lock()
		if len(cp.queue) == 0 {
			cp.running = false
			cp.mu.Unlock()
			return
		}
		n, tasks := 0, 0
		for _, r := range cp.queue {
			if n == maxRequestsPerCommit || n > 0 && tasks+len(r.ids) > maxTasksPerCommit {
				break
			}
			n, tasks = n+1, tasks+len(r.ids)
		}
		batch := slices.Clone(cp.queue[:n])
		cp.queue = slices.Delete(cp.queue, 0, n)
		cp.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		a.commitBatch(ctx, cp, batch)
		cancel()
		for _, r := range batch {
			close(r.done)
		}
	}
}

// commitBatch decides each request in turn, on the cluster as the ones
// before it left it, and commits all their tasks in one transaction; every
// request gets the transaction's outcome (after ErrExists, a retried
// clientToken in one of them, each looks for its own tasks).
func (a *API) commitBatch(ctx context.Context, cp *clusterPlacer, batch []*placeReq) {
	cp.viewMu.Lock()
	view := cp.view
	cp.viewMu.Unlock()
	fail := func(err error) {
		for _, r := range batch {
			r.err = err
		}
	}
	// Decide under the view's read lock on a shallow copy of its nodes,
	// keeping only the chosen instances (each once) and the revisions they
	// were read at.
	var insts []*state.InstanceRecord
	var revs []int64
	var on []int
	var tasks []*state.TaskRecord
	var held []scheduler.Resources
	at := now()
	view.Read(func(recs []*state.InstanceRecord, rv []int64, nodes []scheduler.Node) {
		work := slices.Clone(nodes)
		index := map[int]int{}
		batchIDs := map[string]bool{}
	requests:
		for _, r := range batch {
			if err := r.ctx.Err(); err != nil {
				r.err = err // its caller has gone: place nothing for it
				continue
			}
			// Retries of one clientToken, queued together, have the same
			// task IDs: one transaction cannot write a key twice. The
			// later ones look for the earlier one's tasks once it is
			// committed, as after a commit that found them taken.
			for _, id := range r.ids {
				if batchIDs[id] {
					r.err = state.ErrExists
					continue requests
				}
			}
			for _, id := range r.ids {
				batchIDs[id] = true
			}
			decideOn := work
			if r.running != nil {
				// Exact counts, plus what this batch placed so far.
				decideOn = slices.Clone(work)
				for i := range decideOn {
					decideOn[i].RunningTasks += int(r.running[recs[i].ID()].DesiredRunning) - nodes[i].RunningTasks
				}
			}
			plan, err := r.choose(decideOn, len(r.ids))
			if err != nil {
				r.err = err
				continue
			}
			for _, f := range plan.Failures {
				r.failures = append(r.failures, ecs.Failure{ARN: f.ARN, Reason: f.Reason})
			}
			for k, ni := range plan.Placements {
				j, ok := index[ni]
				if !ok {
					j = len(insts)
					index[ni] = j
					insts, revs = append(insts, recs[ni]), append(revs, rv[ni])
				}
				h := work[ni].Take(&r.spec.demand) // assigns the task's GPUs
				t := r.spec.newTask(a.scope, r.ids[k], insts[j], at, h.GPUIDs)
				r.placed = append(r.placed, t)
				tasks, held, on = append(tasks, t), append(held, h), append(on, j)
			}
		}
	})
	if len(tasks) == 0 {
		return
	}
	written, rev, err := a.store.PlaceTasks(ctx, insts, revs, tasks, held, on)
	if err != nil {
		for _, r := range batch {
			r.placed, r.failures = nil, nil
		}
		fail(err)
		return
	}
	for _, r := range written {
		view.Update(r, rev)
	}
}

// takeExisting moves the IDs whose tasks exist to placed.
func (a *API) takeExisting(ctx context.Context, cluster string, ids []string, placed []*state.TaskRecord) (rest []string, _ []*state.TaskRecord, _ error) {
	for _, id := range ids {
		t, err := a.store.GetTask(ctx, cluster, id)
		switch {
		case errors.Is(err, state.ErrNotFound):
			rest = append(rest, id)
		case err != nil:
			return nil, placed, err
		default:
			placed = append(placed, t)
		}
	}
	return rest, placed, nil
}

// usesRunningTasksCount reports whether a memberOf constraint looks at
// runningTasksCount.
func usesRunningTasksCount(constraints []scheduler.Filter) bool {
	for _, c := range constraints {
		if m, ok := c.(scheduler.MemberOf); ok && m.Expr.Uses(query.SubjectRunningTasksCount) {
			return true
		}
	}
	return false
}

// pause waits a little after a lost race, longer after each, with jitter
// so servers that collided do not collide again in step.
func pause(ctx context.Context, attempt int) {
	t := time.NewTimer(rand.N(time.Millisecond<<min(attempt, 5)) + 100*time.Microsecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
