package controller

import (
	"maps"
	"slices"

	"github.com/gantry-dev/gantry/ecs"
)

// decideDaemon keeps one task of the primary deployment on each eligible
// instance ("exactly one task on each active container instance that
// meets all of the task placement constraints"), including instances that
// register later; the desired count is the number of eligible instances.
// Tasks on instances that are no longer eligible (draining, or no longer
// meeting the constraints) are stopped. A deployment replaces the task of
// each instance in place: the old task stops (while minimumHealthyPercent
// allows; ECS's DAEMON default is 0) and the new one starts once nothing
// else of the service runs there (maximumPercent is 100).
func (d *decision) decideDaemon() {
	eligible := 0
	for _, inst := range d.in.Instances {
		if inst.Eligible {
			eligible++
		}
	}
	if !d.draining && int(d.svc.DesiredCount) != eligible {
		d.svc.DesiredCount = int32(eligible)
		d.plan.Changed = true
	}
	want := d.desired()
	pid := d.primary().ID
	byInst := map[string][]*Task{}
	h := 0
	for _, t := range d.live {
		byInst[t.Instance] = append(byInst[t.Instance], t)
		if healthy(t) {
			h++
		}
	}
	busy := map[string]bool{}
	for _, t := range d.stopping {
		busy[t.Instance] = true
	}
	canStop := h - d.settings.MinimumHealthy(want)
	ids := slices.Sorted(maps.Keys(d.in.Instances))
	start := d.canStart()
	var victims []*Task
	for _, id := range ids {
		ts := byInst[id]
		if d.draining || !d.in.Instances[id].Eligible {
			victims = append(victims, ts...)
			continue
		}
		var prim, old []*Task
		for _, t := range ts {
			if t.Deployment == pid {
				prim = append(prim, t)
			} else {
				old = append(old, t)
			}
		}
		// Keep the best copy of the primary's: healthy, then oldest.
		slices.SortStableFunc(prim, func(a, b *Task) int {
			switch ha, hb := healthy(a), healthy(b); {
			case ha != hb && ha:
				return -1
			case ha != hb:
				return 1
			}
			return a.CreatedAt.Compare(b.CreatedAt)
		})
		if len(prim) > 1 {
			victims = append(victims, prim[1:]...)
		}
		replaced := len(prim) > 0 && healthy(prim[0])
		for _, t := range old {
			switch {
			case replaced || !healthy(t):
				victims = append(victims, t)
			case canStop > 0:
				victims = append(victims, t)
				canStop--
			}
		}
		if len(ts) == 0 && !busy[id] && start {
			d.plan.StartOn = append(d.plan.StartOn, id)
		}
	}
	for _, t := range victims {
		d.stop(t, StopScale, ecs.StoppedReasonScaling(pid))
	}
	d.removeLive(victims)
}
