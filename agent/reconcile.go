package agent

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/agent/runtime"
)

// reconciler keeps one runner per task the server has placed on this
// instance. Assignments (a snapshot, then deltas) say which tasks exist
// and what the server wants of them; runtime events wake the runner of the
// task whose container they concern. Runners drive their task's machine
// and hand its reports to a per-task reporter, so a slow or unreachable
// server never holds up containers.
type reconciler struct {
	env     *machineEnv
	send    func(context.Context, protocol.TaskStateChange) (protocol.TaskStateResponse, error)
	cluster string
	log     *slog.Logger

	mu       sync.Mutex
	ctx      context.Context // the runners' lifetime; set by start
	tasks    map[string]*taskRunner
	assigned map[string]bool // task ARNs assigned: the latest snapshot and the deltas since
	synced   bool            // a snapshot was applied: tasks without a runner are not this instance's
	wg       sync.WaitGroup
}

func newReconciler(env *machineEnv, cluster string, send func(context.Context, protocol.TaskStateChange) (protocol.TaskStateResponse, error), log *slog.Logger) *reconciler {
	return &reconciler{env: env, send: send, cluster: cluster, log: log, tasks: map[string]*taskRunner{}, assigned: map[string]bool{}}
}

// start sets the context runners live in; apply may be called afterwards.
func (r *reconciler) start(ctx context.Context) {
	r.mu.Lock()
	r.ctx = ctx
	r.mu.Unlock()
}

// wait returns when every runner and reporter has returned (after the
// context given to start ends).
func (r *reconciler) wait() { r.wg.Wait() }

// apply reconciles with an assignments message. A snapshot replaces the
// assigned set: a task missing from it is no longer wanted (its record is
// STOPPED). A delta adds or updates the tasks it carries and removes those
// it names. A task no longer wanted is stopped by its runner, which is
// forgotten once it has reported so.
func (r *reconciler) apply(a protocol.Assignment) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !a.Delta {
		r.synced = true
		r.assigned = make(map[string]bool, len(a.Tasks))
	}
	for _, at := range a.Tasks {
		arn := at.Task.TaskARN
		if arn == "" {
			continue
		}
		r.assigned[arn] = true
		if tr := r.tasks[arn]; tr != nil {
			tr.update(at.Task.DesiredStatus, false)
			continue
		}
		tr := &taskRunner{r: r, arn: arn, m: newTaskMachine(r.env, at), wake: make(chan struct{}, 1)}
		tr.reports.wake = make(chan struct{}, 1)
		r.tasks[arn] = tr
		r.wg.Add(2)
		go tr.run(r.ctx)
		go tr.reports.run(r.ctx, tr)
	}
	if a.Delta {
		for _, arn := range a.Removed {
			delete(r.assigned, arn)
			r.unassigned(arn)
		}
		return
	}
	for arn := range r.tasks {
		if !r.assigned[arn] {
			r.unassigned(arn)
		}
	}
}

// unassigned stops a task that is no longer assigned, or forgets it if it
// is stopped and reported. r.mu is held.
func (r *reconciler) unassigned(arn string) {
	tr := r.tasks[arn]
	switch {
	case tr == nil:
	case tr.done():
		delete(r.tasks, arn)
	default:
		tr.update(StatusStopped, false)
	}
}

// event wakes the runner of the task an event's container belongs to.
// Start events are the agent's own doing (Start returned, then it
// inspected): only exits, OOM kills and removals are news.
func (r *reconciler) event(e runtime.Event) {
	if e.Type == runtime.EventStart {
		return
	}
	r.mu.Lock()
	tr := r.tasks[e.Labels[LabelTaskARN]]
	r.mu.Unlock()
	if tr != nil {
		tr.update("", true)
	}
}

// pokeAll makes every runner inspect its containers (after events may have
// been lost).
func (r *reconciler) pokeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, tr := range r.tasks {
		tr.update("", true)
	}
}

// stopAll asks every runner to stop its task (the instance was
// deregistered).
func (r *reconciler) stopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, tr := range r.tasks {
		tr.update(StatusStopped, false)
	}
}

// active counts tasks not yet STOPPED and reported.
func (r *reconciler) active() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, tr := range r.tasks {
		if !tr.done() {
			n++
		}
	}
	return n
}

// isSynced reports whether a snapshot was applied since the agent started.
func (r *reconciler) isSynced() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.synced
}

// has reports whether the task has a runner: it is assigned, or stopping,
// or its STOPPED report is not delivered yet. Its containers are not
// leftovers.
func (r *reconciler) has(arn string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tasks[arn] != nil
}

// views are the latest published views of the tasks (for the metadata
// endpoint).
func (r *reconciler) views() []*taskView {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*taskView, 0, len(r.tasks))
	for _, tr := range r.tasks {
		if v := tr.view.Load(); v != nil {
			out = append(out, v)
		}
	}
	return out
}

// finished forgets a task that is STOPPED, reported, and no longer assigned.
func (r *reconciler) finished(arn string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if tr := r.tasks[arn]; tr != nil && !r.assigned[arn] && tr.done() {
		delete(r.tasks, arn)
	}
}

// taskRunner owns one task's machine: it steps it whenever something may
// have changed (a new desired status, a runtime event, a retry) and queues
// its reports.
type taskRunner struct {
	r    *reconciler
	arn  string
	m    *taskMachine // owned by run
	wake chan struct{}

	mu      sync.Mutex
	desired string // pending desired status, "" if none
	dirty   bool   // pending runtime event
	stopped bool   // the machine reached STOPPED

	reports reportQueue
	view    atomic.Pointer[taskView] // what the metadata endpoint shows; replaced, never changed
}

func (tr *taskRunner) update(desired string, dirty bool) {
	tr.mu.Lock()
	if desired != "" {
		tr.desired = desired
	}
	tr.dirty = tr.dirty || dirty
	tr.mu.Unlock()
	select {
	case tr.wake <- struct{}{}:
	default:
	}
}

// done reports whether the task is STOPPED and the server has heard so.
func (tr *taskRunner) done() bool {
	tr.mu.Lock()
	stopped := tr.stopped
	tr.mu.Unlock()
	return stopped && tr.reports.drained()
}

func (tr *taskRunner) absorb() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.desired != "" {
		tr.m.setDesired(tr.desired)
		tr.desired = ""
	}
	if tr.dirty {
		tr.m.dirty, tr.dirty = true, false
	}
}

func (tr *taskRunner) run(ctx context.Context) {
	defer tr.r.wg.Done()
	m := tr.m
	bo := backoff{min: 100 * time.Millisecond, max: 10 * time.Second}
	reported, viewed := 0, -1
	var retry <-chan time.Time
	for {
		tr.absorb()
		for {
			progressed, err := m.Step(ctx)
			// A PENDING task reports its containers only while it waits
			// (for a dependency): not at every step on its way to RUNNING.
			if m.version != reported && (m.status != StatusPending || !progressed) {
				reported = m.version
				if rep, ok := m.report(tr.r.cluster); ok {
					tr.reports.push(rep)
				}
			}
			if m.version != viewed {
				viewed = m.version
				tr.view.Store(m.view())
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				d := bo.next()
				tr.r.log.Warn("task step failed; retrying", "task", tr.arn, "status", m.status, "in", d, "err", err)
				retry = time.After(d)
				break
			}
			bo.reset()
			if !progressed {
				break
			}
			tr.absorb()
		}
		if m.status == StatusStopped {
			tr.mu.Lock()
			tr.stopped = true
			tr.mu.Unlock()
			tr.reports.close()
			return
		}
		var deadline *time.Timer // a dependency's startTimeout
		var deadlineC <-chan time.Time
		if !m.wakeAt.IsZero() {
			deadline = time.NewTimer(time.Until(m.wakeAt) + 10*time.Millisecond)
			deadlineC = deadline.C
		}
		select {
		case <-tr.wake:
		case <-retry:
			retry = nil
		case <-deadlineC:
		case <-ctx.Done():
			return
		}
		if deadline != nil {
			deadline.Stop()
		}
	}
}

// reportQueue sends one task's reports in order. A report replaces a
// queued, not yet sent one of the same status (it is a newer snapshot of
// the same state); distinct statuses are all sent, so the server sees
// RUNNING before STOPPED even for a task that ran for a millisecond.
type reportQueue struct {
	mu       sync.Mutex
	q        []protocol.TaskStateChange
	inflight bool
	closed   bool // no more reports will come
	finished bool // closed and everything sent (or given up)
	wake     chan struct{}
}

func (q *reportQueue) push(r protocol.TaskStateChange) {
	q.mu.Lock()
	if n := len(q.q); n > 0 && q.q[n-1].Status == r.Status && !(n == 1 && q.inflight) {
		q.q[n-1] = r
	} else {
		q.q = append(q.q, r)
	}
	q.mu.Unlock()
	q.signal()
}

func (q *reportQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

func (q *reportQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *reportQueue) drained() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.finished
}

func (q *reportQueue) run(ctx context.Context, tr *taskRunner) {
	defer tr.r.wg.Done()
	bo := backoff{min: 200 * time.Millisecond, max: 15 * time.Second}
	for {
		q.mu.Lock()
		if len(q.q) == 0 {
			if q.closed {
				q.finished = true
				q.mu.Unlock()
				tr.r.finished(tr.arn)
				return
			}
			q.mu.Unlock()
			select {
			case <-q.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		rep := q.q[0]
		q.inflight = true
		q.mu.Unlock()

		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		resp, err := tr.r.send(sctx, rep)
		cancel()
		if err != nil && ctx.Err() != nil {
			return
		}
		var perm *apiError
		switch {
		case err == nil && !resp.Accepted:
			tr.r.log.Info("server ignored a task state change", "task", tr.arn, "status", rep.Status, "reason", resp.Reason)
		case errors.As(err, &perm) && perm.permanent():
			tr.r.log.Warn("server refused a task state change", "task", tr.arn, "status", rep.Status, "err", err)
		case err != nil:
			d := bo.next()
			tr.r.log.Warn("task state change not delivered; retrying", "task", tr.arn, "status", rep.Status, "in", d, "err", err)
			q.mu.Lock()
			q.inflight = false
			q.mu.Unlock()
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return
			}
			continue
		}
		bo.reset()
		q.mu.Lock()
		q.q = q.q[1:]
		q.inflight = false
		q.mu.Unlock()
	}
}
