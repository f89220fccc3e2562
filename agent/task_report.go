package agent

import (
	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/agent/runtime"
	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/awsproto"
)

// report is the state change the server should hear of now. While the
// task is PENDING (the server placed it PENDING) it reports its containers
// only (an empty status), once any has started or given up: a task waiting
// for a HEALTHY dependency shows which containers run.
func (m *taskMachine) report(cluster string) (protocol.TaskStateChange, bool) {
	status := m.status
	if status == StatusPending {
		if m.first(func(c *taskContainer) bool { return c.status != StatusPending }) == nil {
			return protocol.TaskStateChange{}, false
		}
		status = ""
	}
	r := protocol.TaskStateChange{SubmitTaskStateChangeRequest: ecs.SubmitTaskStateChangeRequest{
		Cluster:            cluster,
		Task:               m.arn,
		Status:             status,
		PullStartedAt:      awsproto.Timestamp{Time: m.pullStartedAt},
		PullStoppedAt:      awsproto.Timestamp{Time: m.pullStoppedAt},
		ExecutionStoppedAt: awsproto.Timestamp{Time: m.executionStoppedAt},
	}}
	if m.stopCode != "" && status != StatusRunning && status != "" {
		r.StopCode = m.stopCode
		r.Reason = truncate(m.reason, maxTaskReason)
	}
	for _, c := range m.containers {
		r.Containers = append(r.Containers, ecs.ContainerStateChange{
			ContainerName:   c.plan.Name,
			RuntimeID:       c.id,
			ImageDigest:     c.digest,
			Status:          c.status,
			ExitCode:        c.exitCode,
			Reason:          truncate(c.reason, maxContainerReason),
			NetworkBindings: c.bindings,
		})
		if c.plan.HealthCheck {
			if r.ContainerHealth == nil {
				r.ContainerHealth = map[string]ecs.HealthStatus{}
			}
			r.ContainerHealth[c.plan.Name] = ecsHealth(c.health)
		}
	}
	r.HealthStatus = m.taskHealth()
	return r, true
}

// ecsHealth is a container's health in ECS's words: a container not yet
// judged (starting), or not running, is UNKNOWN.
func ecsHealth(h runtime.HealthStatus) ecs.HealthStatus {
	switch h {
	case runtime.HealthHealthy:
		return ecs.HealthStatusHealthy
	case runtime.HealthUnhealthy:
		return ecs.HealthStatusUnhealthy
	}
	return ecs.HealthStatusUnknown
}

// taskHealth derives the task's health from its essential containers that
// have a health check, as ECS does: UNHEALTHY if any is unhealthy, else
// UNKNOWN if any is not judged yet, else HEALTHY; non-essential containers
// do not count. Empty when no essential container has a health check (the
// server then keeps what it has: UNKNOWN, or nothing).
func (m *taskMachine) taskHealth() ecs.HealthStatus {
	checked, unknown := false, false
	for _, c := range m.containers {
		if !c.plan.Essential || !c.plan.HealthCheck {
			continue
		}
		checked = true
		switch ecsHealth(c.health) {
		case ecs.HealthStatusUnhealthy:
			return ecs.HealthStatusUnhealthy
		case ecs.HealthStatusUnknown:
			unknown = true
		}
	}
	switch {
	case !checked:
		return ""
	case unknown:
		return ecs.HealthStatusUnknown
	}
	return ecs.HealthStatusHealthy
}

// networkBindings converts the runtime's port bindings to ECS's. Like the
// ECS agent (ECS_EXCLUDE_IPV6_PORTBINDING, on by default), it leaves out the
// IPv6 bindings of a port that has an IPv4 one: the engine may publish a
// port once per address family, and Docker 20.10 even picks a different
// dynamic host port for each.
func networkBindings(ports []runtime.PortBinding) []ecs.NetworkBinding {
	type key struct {
		c     uint16
		proto runtime.Protocol
	}
	v4 := map[key]bool{}
	for _, p := range ports {
		if !isIPv6(p.HostIP) {
			v4[key{p.ContainerPort, p.Protocol}] = true
		}
	}
	var out []ecs.NetworkBinding
	for _, p := range ports {
		if isIPv6(p.HostIP) && v4[key{p.ContainerPort, p.Protocol}] {
			continue
		}
		cp, hp := int32(p.ContainerPort), int32(p.HostPort)
		ip := p.HostIP
		if ip == "" {
			ip = "0.0.0.0"
		}
		proto := ecs.TransportProtocolTCP
		if p.Protocol == runtime.UDP {
			proto = ecs.TransportProtocolUDP
		}
		out = append(out, ecs.NetworkBinding{BindIP: ip, ContainerPort: &cp, HostPort: &hp, Protocol: proto})
	}
	return out
}

func isIPv6(ip string) bool {
	for i := 0; i < len(ip); i++ {
		if ip[i] == ':' {
			return true
		}
	}
	return false
}

func equalBindings(a, b []ecs.NetworkBinding) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].BindIP != b[i].BindIP || *a[i].ContainerPort != *b[i].ContainerPort ||
			*a[i].HostPort != *b[i].HostPort || a[i].Protocol != b[i].Protocol {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
