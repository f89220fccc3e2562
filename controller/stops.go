package controller

import (
	"time"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/awsproto"
	"github.com/gantry-dev/gantry/state"
)

// Failed reports whether a stopped service task failed, as the circuit
// breaker counts failures: it stopped on its own (an essential container
// exited, or it failed to start), or the scheduler stopped it for failing
// its health checks. Tasks stopped by users, by scaling, deployments and
// lost instances did not fail.
func Failed(t *ecs.Task) bool {
	switch t.StopCode {
	case ecs.TaskStopCodeEssentialContainerExited, ecs.TaskStopCodeTaskFailedToStart:
		return true
	case ecs.TaskStopCodeServiceSchedulerInitiated:
		return t.StoppedReason == ecs.StoppedReasonUnhealthy
	}
	return false
}

// AccountStop records, in the service record, that task t of the service
// stopped (rev is the etcd revision of the stop, which makes a replayed
// stop count once), and reports whether the record changed. A failure
// counts against its deployment's failedTasks; a crash of the primary
// deployment's task (it failed before it started or within MinRuntime of
// starting) extends the crash loop and, from the policy's threshold on,
// delays the next start, with ECS's event; any other failure ends the
// crash loop.
func AccountStop(rec *state.ServiceRecord, t *ecs.Task, rev int64, now time.Time, pol Policy) bool {
	pol = pol.withDefaults()
	c := &rec.Controller
	if rev <= c.StopRev {
		return false
	}
	c.StopRev = rev
	if !Failed(t) {
		return true
	}
	for i := range rec.Deployments {
		dep := &rec.Deployments[i]
		if dep.ID != t.StartedBy {
			continue
		}
		dep.FailedTasks++
		dep.UpdatedAt = awsproto.Timestamp{Time: now}
		if c.LastFailureAt == nil {
			c.LastFailureAt = map[string]time.Time{}
		}
		c.LastFailureAt[dep.ID] = now
		if i != 0 {
			return true
		}
	}
	if len(rec.Deployments) == 0 || rec.Deployments[0].ID != t.StartedBy {
		return true
	}
	ran := t.StoppedAt.Sub(t.StartedAt.Time)
	if !t.StartedAt.IsZero() && (t.StoppedAt.IsZero() || ran >= pol.MinRuntime) {
		c.CrashCount, c.BackoffUntil = 0, time.Time{}
		return true
	}
	c.CrashCount++
	c.LastCrashAt = now
	if c.CrashCount >= pol.CrashThreshold {
		wait := pol.backoff(c.CrashCount)
		c.BackoffUntil = now.Add(wait)
		AddEvent(&rec.Service, ecs.EventThrottled(rec.ServiceName, wait.String()), now, false)
	}
	return true
}

// ResetCrashLoop forgets a crash loop: a new deployment starts afresh
// ("your service returns to a normal, non-throttled state immediately").
func ResetCrashLoop(rec *state.ServiceRecord) {
	rec.Controller.CrashCount = 0
	rec.Controller.BackoffUntil = time.Time{}
	rec.Controller.LastCrashAt = time.Time{}
}
