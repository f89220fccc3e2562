package scheduler

import (
	"github.com/gantry-dev/gantry/ecs"
)

// Demand is what a task asks of the instance it is placed on.
type Demand struct {
	Resources
	// RequiresAttributes are the task definition's requiresAttributes: the
	// instance must have each (with the same value, when one is given).
	RequiresAttributes []ecs.Attribute
	// Group is the task's group (RunTask's group, "family:<family>" by
	// default, or "service:<name>"): distinctInstance and spread count the
	// tasks of this group.
	Group string
}

// A Filter is one feasibility check. Check reports whether node n can take
// a task that needs d; Explain is the failure reason ECS reports for a
// node that fails it (Failure.reason in RunTask and StartTask answers).
//
// A Filter must look only at d and n: placing a task on one node never
// changes whether another passes, which lets Place re-check only the node
// it just used.
type Filter interface {
	Check(d *Demand, n *Node) bool
	Explain(n *Node) string
}

// DefaultFilters are the checks every placement makes, in the order their
// reasons are reported: a node is explained by the first check it fails.
// Placement constraints come after them (ECS checks resources, then
// constraints).
var DefaultFilters = []Filter{
	StatusFilter{},
	AgentFilter{},
	AttributeFilter{},
	CPUFilter{},
	MemoryFilter{},
	PortsFilter{},
	PortsUDPFilter{},
	GPUFilter{},
}

// StatusFilter admits only ACTIVE instances: DRAINING ones get no new
// tasks, and deregistering or deregistered ones none at all. The reason is
// the instance's status.
type StatusFilter struct{}

func (StatusFilter) Check(_ *Demand, n *Node) bool { return n.Status == ecs.InstanceStatusActive }
func (StatusFilter) Explain(n *Node) string        { return n.Status }

// AgentFilter admits instances whose agent is connected ("Only instances
// connected to an agent can accept task placement requests").
type AgentFilter struct{}

func (AgentFilter) Check(_ *Demand, n *Node) bool { return n.Connected }
func (AgentFilter) Explain(*Node) string          { return "AGENT" }

// AttributeFilter admits instances that have every attribute the task
// definition requires.
type AttributeFilter struct{}

func (AttributeFilter) Check(d *Demand, n *Node) bool {
	for _, a := range d.RequiresAttributes {
		v, ok := n.Attributes[a.Name]
		if !ok || (a.Value != "" && v != a.Value) {
			return false
		}
	}
	return true
}
func (AttributeFilter) Explain(*Node) string { return "ATTRIBUTE" }

// CPUFilter admits instances with enough CPU units left.
type CPUFilter struct{}

func (CPUFilter) Check(d *Demand, n *Node) bool { return d.CPU <= n.CPU }
func (CPUFilter) Explain(*Node) string          { return "RESOURCE:CPU" }

// MemoryFilter admits instances with enough memory left.
type MemoryFilter struct{}

func (MemoryFilter) Check(d *Demand, n *Node) bool { return d.Memory <= n.Memory }
func (MemoryFilter) Explain(*Node) string          { return "RESOURCE:MEMORY" }

// PortsFilter admits instances where every fixed TCP host port is free.
type PortsFilter struct{}

func (PortsFilter) Check(d *Demand, n *Node) bool { return portsFree(d.Ports, n.Ports) }
func (PortsFilter) Explain(*Node) string          { return "RESOURCE:PORTS" }

// PortsUDPFilter admits instances where every fixed UDP host port is free.
type PortsUDPFilter struct{}

func (PortsUDPFilter) Check(d *Demand, n *Node) bool { return portsFree(d.PortsUDP, n.PortsUDP) }
func (PortsUDPFilter) Explain(*Node) string          { return "RESOURCE:PORTS_UDP" }

// GPUFilter admits instances with as many GPUs free as the task's
// containers require in all.
type GPUFilter struct{}

func (GPUFilter) Check(d *Demand, n *Node) bool { return d.GPUs <= int64(len(n.GPUs)) }
func (GPUFilter) Explain(*Node) string          { return "RESOURCE:GPU" }

// portsFree: the wanted ports are free on the node and the task does not
// want one port twice (two containers of one task cannot share it).
func portsFree(want []int32, taken map[int32]bool) bool {
	for i, p := range want {
		if taken[p] {
			return false
		}
		for _, q := range want[:i] {
			if q == p {
				return false
			}
		}
	}
	return true
}
