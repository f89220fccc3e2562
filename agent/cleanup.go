package agent

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/agent/runtime"
)

// DefaultTaskCleanupWait is how long the containers of a stopped task stay
// (with their logs) before the agent removes them: the ECS agent's
// ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION default.
const DefaultTaskCleanupWait = 3 * time.Hour

// cleanupLoop removes what the agent's tasks leave behind, every
// cleanupInterval, once the first snapshot has said which tasks are this
// instance's.
func (a *Agent) cleanupLoop(ctx context.Context) {
	interval := min(max(a.cfg.TaskCleanupWait/4, time.Second), time.Minute)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		if !a.rec.isSynced() {
			continue
		}
		if err := a.cleanup(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("cleanup failed; trying again later", "err", err)
		}
	}
}

// cleanup looks at every container and task-scoped volume carrying this
// instance's label whose task has no runner (the server no longer assigns
// it here: it is STOPPED, or was never this agent's to run):
//   - a running container is stopped: its task is over (the agent was down
//     when it was stopped, or the container was started behind its back);
//   - the containers of a task are removed once the newest of them has been
//     stopped for TaskCleanupWait (until then `gantry logs` reads them);
//   - a task-scoped volume is removed once its task has no containers left.
//
// Shared volumes and anything without the instance label are never
// touched.
func (a *Agent) cleanup(ctx context.Context) error {
	rt := a.cfg.Runtime
	arn := a.ContainerInstanceARN()
	list, err := rt.List(ctx, map[string]string{LabelContainerInstance: arn})
	if err != nil {
		return err
	}
	byTask := map[string][]runtime.ContainerStatus{}
	for _, st := range list {
		if task := st.Labels[LabelTaskARN]; task != "" {
			byTask[task] = append(byTask[task], st)
		}
	}
	now := time.Now()
	left := map[string]bool{} // tasks that still have containers
	var errs []error
	for task, cs := range byTask {
		left[task] = true
		if a.rec.has(task) {
			continue
		}
		var running []runtime.ContainerStatus
		newest := time.Time{}
		for _, st := range cs {
			if st.State == runtime.StateRunning {
				running = append(running, st)
			}
			newest = maxTime(newest, st.FinishedAt, st.CreatedAt)
		}
		if len(running) > 0 {
			errs = append(errs, a.stopLeftovers(ctx, task, running))
			continue
		}
		if now.Sub(newest) < a.cfg.TaskCleanupWait {
			continue
		}
		removed := 0
		for _, st := range cs {
			if a.rec.has(task) {
				break
			}
			if err := rt.Remove(ctx, st.ID); err != nil && !errors.Is(err, runtime.ErrNotFound) {
				errs = append(errs, err)
				continue
			}
			removed++
			a.log.Debug("removed the container of a stopped task", "task", task, "container", st.Name)
		}
		if removed == len(cs) {
			delete(left, task)
			a.log.Info("removed the containers of a stopped task", "task", task, "containers", removed)
		}
	}
	vols, err := rt.ListVolumes(ctx, map[string]string{LabelContainerInstance: arn, LabelVolumeScope: "task"})
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, v := range vols {
		task := v.Labels[LabelTaskARN]
		if task == "" || left[task] || a.rec.has(task) {
			continue
		}
		switch err := rt.RemoveVolume(ctx, v.Name); {
		case err == nil:
			a.log.Debug("removed the volume of a stopped task", "task", task, "volume", v.Name)
		case errors.Is(err, runtime.ErrNotFound), errors.Is(err, runtime.ErrConflict):
		default:
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stopLeftovers stops the running containers of a task this instance does
// not run (any more), in parallel.
func (a *Agent) stopLeftovers(ctx context.Context, task string, cs []runtime.ContainerStatus) error {
	a.log.Warn("stopping the containers of a task that is not assigned to this instance", "task", task, "containers", len(cs))
	var wg sync.WaitGroup
	errs := make([]error, len(cs))
	for i, st := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a.rec.has(task) {
				return
			}
			timeout := a.cfg.DefaultStopTimeout
			sctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
			defer cancel()
			if err := a.cfg.Runtime.Stop(sctx, st.ID, timeout); err != nil && !errors.Is(err, runtime.ErrNotFound) {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func maxTime(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}
