package agent

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/ecs"
)

// recorder is a reconciler's server: it keeps the last status reported per
// task.
type recorder struct {
	mu   sync.Mutex
	last map[string]string
}

func (rc *recorder) send(_ context.Context, ch protocol.TaskStateChange) (protocol.TaskStateResponse, error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if ch.Status != "" {
		rc.last[ch.Task] = ch.Status
	}
	return protocol.TaskStateResponse{Accepted: true}, nil
}

func (rc *recorder) status(arn string) string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.last[arn]
}

func newTestReconciler(t *testing.T) (*reconciler, *recorder) {
	t.Helper()
	rc := &recorder{last: map[string]string{}}
	env := testEnv(offline())
	r := newReconciler(env, "demo", rc.send, env.log)
	ctx, cancel := context.WithCancel(context.Background())
	r.start(ctx)
	t.Cleanup(func() { cancel(); r.wait() })
	return r, rc
}

func (r *reconciler) assignedARNs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.assigned))
}

// placement is the server's side in these tests: the tasks placed on the
// instance and not STOPPED, by ARN, with their desired status.
type placement map[string]string

func assigned(arn, desired string) protocol.AssignedTask {
	return protocol.AssignedTask{
		Task: ecs.Task{TaskARN: arn, ClusterARN: "arn:aws:ecs:us-east-1:123456789012:cluster/demo",
			DesiredStatus: desired, LastStatus: StatusPending},
		TaskDefinition: serveDef(),
	}
}

func (p placement) snapshot() protocol.Assignment {
	a := protocol.Assignment{Tasks: []protocol.AssignedTask{}}
	for _, arn := range slices.Sorted(maps.Keys(p)) {
		a.Tasks = append(a.Tasks, assigned(arn, p[arn]))
	}
	return a
}

// delta is what the server sends when the placement goes from p to next.
func (p placement) delta(next placement) protocol.Assignment {
	a := protocol.Assignment{Delta: true, Tasks: []protocol.AssignedTask{}}
	for _, arn := range slices.Sorted(maps.Keys(next)) {
		if d, ok := p[arn]; !ok || d != next[arn] {
			a.Tasks = append(a.Tasks, assigned(arn, next[arn]))
		}
	}
	for _, arn := range slices.Sorted(maps.Keys(p)) {
		if _, ok := next[arn]; !ok {
			a.Removed = append(a.Removed, arn)
		}
	}
	return a
}

func taskARN(i int) string {
	return fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task/demo/%032x", i)
}

// settled waits until every task of p has reported what its desired status
// leads to, and every task in gone has reported STOPPED.
func settled(t *testing.T, rc *recorder, p placement, gone []string) {
	t.Helper()
	waitFor(t, 10*time.Second, func() bool {
		for arn, d := range p {
			if rc.status(arn) != d {
				return false
			}
		}
		for _, arn := range gone {
			if rc.status(arn) != StatusStopped {
				return false
			}
		}
		return true
	}, func() string {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return fmt.Sprintf("reports %v, placement %v, gone %v", rc.last, p, gone)
	})
}

// TestDeltasEqualSnapshot: an agent that applied a snapshot and then the
// deltas of a sequence of changes ends where an agent that applied only
// the final snapshot does: the same tasks assigned, each running or
// stopped as desired, and the tasks removed meanwhile stopped.
func TestDeltasEqualSnapshot(t *testing.T) {
	t.Parallel()
	steps := []placement{
		{taskARN(1): StatusRunning, taskARN(2): StatusRunning},
		{taskARN(1): StatusRunning, taskARN(2): StatusRunning, taskARN(3): StatusRunning},
		{taskARN(1): StatusStopped, taskARN(2): StatusRunning, taskARN(3): StatusRunning, taskARN(4): StatusRunning},
		{taskARN(2): StatusRunning, taskARN(3): StatusStopped, taskARN(4): StatusRunning},
		{taskARN(2): StatusRunning, taskARN(4): StatusRunning, taskARN(5): StatusStopped},
		{taskARN(2): StatusRunning, taskARN(6): StatusRunning},
	}
	streamed, rcs := newTestReconciler(t)
	streamed.apply(steps[0].snapshot())
	for i := 1; i < len(steps); i++ {
		streamed.apply(steps[i-1].delta(steps[i]))
	}
	final := steps[len(steps)-1]
	fresh, rcf := newTestReconciler(t)
	fresh.apply(final.snapshot())

	if got, want := streamed.assignedARNs(), fresh.assignedARNs(); !slices.Equal(got, want) {
		t.Fatalf("assigned after deltas %v, after a snapshot %v", got, want)
	}
	var gone []string
	for _, s := range steps {
		for arn := range s {
			if _, ok := final[arn]; !ok && !slices.Contains(gone, arn) {
				gone = append(gone, arn)
			}
		}
	}
	settled(t, rcs, final, gone)
	settled(t, rcf, final, nil)
	// Removed tasks are forgotten once stopped and reported.
	waitFor(t, 10*time.Second, func() bool {
		for _, arn := range gone {
			if streamed.has(arn) {
				return false
			}
		}
		return true
	}, func() string { return "removed tasks still have runners" })
}

// TestSnapshotAfterMissedDelta: an agent that missed a delta (its stream
// broke) converges on the snapshot of its next connection: what the delta
// removed is stopped, what it added runs.
func TestSnapshotAfterMissedDelta(t *testing.T) {
	t.Parallel()
	before := placement{taskARN(1): StatusRunning, taskARN(2): StatusRunning, taskARN(3): StatusRunning}
	after := placement{taskARN(2): StatusRunning, taskARN(3): StatusStopped, taskARN(4): StatusRunning}
	r, rc := newTestReconciler(t)
	r.apply(before.snapshot())
	settled(t, rc, before, nil)
	// before.delta(after) is lost with the connection.
	r.apply(after.snapshot())
	if got, want := r.assignedARNs(), slices.Sorted(maps.Keys(after)); !slices.Equal(got, want) {
		t.Fatalf("assigned %v, want %v", got, want)
	}
	settled(t, rc, after, []string{taskARN(1)})
	// A delta removing a task the agent never heard of changes nothing.
	r.apply(protocol.Assignment{Delta: true, Removed: []string{taskARN(9)}})
	if got, want := r.assignedARNs(), slices.Sorted(maps.Keys(after)); !slices.Equal(got, want) {
		t.Errorf("assigned %v after removing an unknown task, want %v", got, want)
	}
}
