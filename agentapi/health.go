package agentapi

import (
	"fmt"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/ecs"
)

// validHealth checks the health values of a report before the store is
// asked anything.
func validHealth(req *protocol.TaskStateChange) error {
	for name, h := range req.ContainerHealth {
		if !h.Valid() {
			return fmt.Errorf("container %s: unknown health status %q", name, h)
		}
	}
	if req.HealthStatus != "" && !req.HealthStatus.Valid() {
		return fmt.Errorf("unknown task health status %q", req.HealthStatus)
	}
	return nil
}

// applyHealth records the health an agent reports: each container's (of
// those with a health check) and the task's, which the agent derives from
// its essential containers. It reports whether t changed; a container the
// task does not have is an error wrapping ecs.ErrBadStateChange.
func applyHealth(t *ecs.Task, containers map[string]ecs.HealthStatus, task ecs.HealthStatus) (bool, error) {
	changed := false
	for name, h := range containers {
		found := false
		for i := range t.Containers {
			if c := &t.Containers[i]; c.Name == name {
				found = true
				if c.HealthStatus != h {
					c.HealthStatus, changed = h, true
				}
			}
		}
		if !found {
			return false, fmt.Errorf("%w: the task has no container named %q", ecs.ErrBadStateChange, name)
		}
	}
	if task != "" && t.HealthStatus != task {
		t.HealthStatus, changed = task, true
	}
	return changed, nil
}
