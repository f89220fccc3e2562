package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/agent/runtime"
	"github.com/gantry-dev/gantry/ecs"
)

// This file holds the ordering rules of the task machine: which container
// may start (dependsOn, links, shared namespaces) and in which order
// containers stop (the reverse).

// startNext starts the first created container whose dependencies are met,
// or settles one whose dependencies can never be met. With nothing to do it
// makes no progress and sets wakeAt to the next dependency deadline.
func (m *taskMachine) startNext(ctx context.Context) (bool, error) {
	m.wakeAt = time.Time{}
	for _, c := range m.containers {
		if c.started || c.status == StatusStopped || c.id == "" {
			continue
		}
		ok, failed, wake := m.dependenciesMet(c)
		switch {
		case failed != "":
			c.status = StatusStopped
			c.reason = prefixCannotStart + failed
			m.version++
			if c.plan.Essential {
				m.failTask(c.reason)
			}
			return true, nil
		case ok:
			return true, m.start(ctx, c)
		}
		if !wake.IsZero() && (m.wakeAt.IsZero() || wake.Before(m.wakeAt)) {
			m.wakeAt = wake
		}
	}
	return false, nil
}

// dependenciesMet says whether c may start now, or why it never will, or
// (neither) when to look again at the latest: when a dependency's
// startTimeout runs out. The rules are the ECS agent's
// (agent/engine/dependencygraph): START needs the dependency started;
// COMPLETE needs it exited; SUCCESS exited with 0 (any other exit code
// fails at once); HEALTHY needs its health check passed (an exit fails at
// once). A dependency that will never start fails every condition; one
// that started more than its startTimeout ago without meeting a COMPLETE,
// SUCCESS or HEALTHY condition fails it.
func (m *taskMachine) dependenciesMet(c *taskContainer) (ok bool, failed string, wake time.Time) {
	now := m.env.now()
	ok = true
	for _, d := range c.plan.DependsOn {
		dep := m.byName[d.Container]
		if dep == nil {
			return false, fmt.Sprintf("dependency %s: no such container in the task", d.Container), time.Time{}
		}
		why := func(format string, args ...any) string {
			return fmt.Sprintf("dependency on container %s (%s) can never be met: ", d.Container, d.Condition) + fmt.Sprintf(format, args...)
		}
		if dep.neverStarts() {
			return false, why("it did not start"), time.Time{}
		}
		exited := dep.started && dep.status == StatusStopped
		met := false
		switch d.Condition {
		case ecs.ContainerConditionStart:
			met = dep.started
		case ecs.ContainerConditionComplete:
			met = exited
		case ecs.ContainerConditionSuccess:
			if exited && (dep.exitCode == nil || *dep.exitCode != 0) {
				return false, why("it exited with %s", exitText(dep.exitCode)), time.Time{}
			}
			met = exited
		case ecs.ContainerConditionHealthy:
			if exited {
				return false, why("it exited with %s before it was healthy", exitText(dep.exitCode)), time.Time{}
			}
			met = dep.health == runtime.HealthHealthy
		}
		if met {
			continue
		}
		ok = false
		if d.Condition == ecs.ContainerConditionStart || !dep.started || dep.plan.StartTimeout <= 0 {
			continue
		}
		started := dep.last.StartedAt
		if started.IsZero() {
			continue
		}
		deadline := started.Add(dep.plan.StartTimeout)
		if !now.Before(deadline) {
			return false, why("it did not get there within its startTimeout of %v", dep.plan.StartTimeout), time.Time{}
		}
		if wake.IsZero() || deadline.Before(wake) {
			wake = deadline
		}
	}
	return ok, "", wake
}

func exitText(code *int32) string {
	if code == nil {
		return "an unknown exit code"
	}
	return fmt.Sprintf("exit code %d", *code)
}

// stopAll stops every running container of the task, each with its
// stopTimeout, and then marks the task STOPPED. Containers stop in waves,
// the reverse of their start order: a container another running container
// depends on stops after it ("for container shutdown it is reversed",
// ContainerDependency); the containers of a wave stop in parallel.
func (m *taskMachine) stopAll(ctx context.Context) error {
	rt := m.env.rt
	// A container this run of the agent did not create may exist from an
	// earlier run: find it by its deterministic name.
	for _, c := range m.containers {
		if c.id != "" || c.status == StatusStopped || c.plan.Spec.Name == "" {
			continue
		}
		st, err := rt.Inspect(ctx, c.plan.Spec.Name)
		switch {
		case errors.Is(err, runtime.ErrNotFound):
		case err != nil:
			return err
		case st.Labels[LabelTaskARN] == m.arn:
			c.id = st.ID
			c.started = st.State != runtime.StateCreated
		}
	}
	for {
		wave := m.stopWave()
		if len(wave) == 0 {
			break
		}
		if err := m.stopContainers(ctx, wave); err != nil {
			return err
		}
	}
	for _, c := range m.containers {
		c.status = StatusStopped
	}
	m.executionStoppedAt = m.env.now()
	m.setStatus(StatusStopped)
	return nil
}

// stopWave is the running containers no other running container depends
// on (all running ones, should dependencies ever form a cycle).
func (m *taskMachine) stopWave() []*taskContainer {
	running := func(c *taskContainer) bool { return c.id != "" && c.started && c.status != StatusStopped }
	needed := map[string]bool{}
	var all []*taskContainer
	for _, c := range m.containers {
		if !running(c) {
			continue
		}
		all = append(all, c)
		for _, d := range c.plan.DependsOn {
			needed[d.Container] = true
		}
	}
	var wave []*taskContainer
	for _, c := range all {
		if !needed[c.plan.Name] {
			wave = append(wave, c)
		}
	}
	if len(wave) == 0 {
		return all
	}
	return wave
}

// stopContainers stops cs in parallel and records how they ended.
func (m *taskMachine) stopContainers(ctx context.Context, cs []*taskContainer) error {
	rt := m.env.rt
	type result struct {
		st  runtime.ContainerStatus
		err error
	}
	results := make([]result, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, c.plan.StopTimeout+30*time.Second)
			defer cancel()
			if err := rt.Stop(sctx, c.id, c.plan.StopTimeout); err != nil && !errors.Is(err, runtime.ErrNotFound) {
				results[i].err = err
				return
			}
			results[i].st, results[i].err = rt.Inspect(ctx, c.id)
		}()
	}
	wg.Wait()
	var errs []error
	for i, c := range cs {
		r := results[i]
		switch {
		case errors.Is(r.err, runtime.ErrNotFound):
			c.status = StatusStopped
		case r.err != nil:
			errs = append(errs, r.err)
		case r.st.State == runtime.StateExited:
			m.record(c, r.st)
		default: // still running (cannot be, after Stop): look again next time
			errs = append(errs, fmt.Errorf("container %s still %s after stop", c.plan.Name, r.st.State))
		}
	}
	if len(errs) > 0 {
		m.version++
		return errors.Join(errs...)
	}
	return nil
}
