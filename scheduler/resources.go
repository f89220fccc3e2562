package scheduler

import (
	"slices"

	"github.com/gantry-dev/gantry/ecs"
)

// Resources are what one task holds on its container instance from
// placement until it is STOPPED, as ECS accounts them: CPU units, MiB of
// memory, the fixed host ports it binds, and its GPUs. Dynamic host ports
// (hostPort 0 in bridge mode) are not reserved, as in ECS.
type Resources struct {
	CPU      int64   `json:"cpu,omitempty"`
	Memory   int64   `json:"memory,omitempty"`
	Ports    []int32 `json:"ports,omitempty"`    // TCP host ports
	PortsUDP []int32 `json:"portsUdp,omitempty"` // UDP host ports
	// GPUs is how many GPUs the task needs; GPUIDs, once it is placed,
	// which of the instance's GPUs it holds (Node.Take assigns them).
	GPUs   int64    `json:"gpus,omitempty"`
	GPUIDs []string `json:"gpuIds,omitempty"`
}

// TaskResources computes what a task of td, with overrides ov (may be
// nil), holds:
//
//   - CPU: the task-level cpu if set, else the sum of the containers' cpu;
//   - MEMORY: the task-level memory if set, else the sum over containers of
//     memoryReservation if set, else memory ("If you specify
//     memoryReservation, then that value is subtracted from the available
//     memory resources for the container instance ... Otherwise, the value
//     of memory is used.", ContainerDefinition API reference);
//   - PORTS / PORTS_UDP: every fixed host port; in host network mode a
//     mapping's host port is its container port;
//   - GPU: the sum of the containers' GPU resourceRequirements.
//
// Overrides replace the values they name. Values that do not parse count
// as zero: the caller validates overrides before it places.
func TaskResources(td *ecs.TaskDefinition, ov *ecs.TaskOverride) Resources {
	var r Resources
	taskCPU, taskMem := td.CPU, td.Memory
	if ov != nil && ov.CPU != "" {
		taskCPU = ov.CPU
	}
	if ov != nil && ov.Memory != "" {
		taskMem = ov.Memory
	}
	for i := range td.ContainerDefinitions {
		cd := EffectiveContainer(&td.ContainerDefinitions[i], ov)
		r.CPU += int64(cd.CPU)
		r.GPUs += ContainerGPUs(cd)
		switch {
		case cd.MemoryReservation != nil:
			r.Memory += int64(*cd.MemoryReservation)
		case cd.Memory != nil:
			r.Memory += int64(*cd.Memory)
		}
		for _, pm := range cd.PortMappings {
			port := hostPort(td.NetworkMode, pm)
			if port == 0 {
				continue
			}
			if pm.Protocol == ecs.TransportProtocolUDP {
				r.PortsUDP = append(r.PortsUDP, port)
			} else {
				r.Ports = append(r.Ports, port)
			}
		}
	}
	if v, ok := ecs.TaskCPUUnits(taskCPU); ok {
		r.CPU = int64(v)
	}
	if v, ok := ecs.TaskMemoryMiB(taskMem); ok {
		r.Memory = int64(v)
	}
	return r
}

// hostPort is the host port a mapping reserves: 0 for none (dynamic, or
// awsvpc, where the task has its own interface).
func hostPort(mode ecs.NetworkMode, pm ecs.PortMapping) int32 {
	switch mode {
	case ecs.NetworkModeHost:
		if pm.HostPort != nil && *pm.HostPort != 0 {
			return *pm.HostPort
		}
		if pm.ContainerPort != nil {
			return *pm.ContainerPort
		}
	case ecs.NetworkModeAwsvpc, ecs.NetworkModeNone:
	default: // bridge, the EC2 default
		if pm.HostPort != nil {
			return *pm.HostPort
		}
	}
	return 0
}

// ContainerGPUs is the number of GPUs a container requires (its GPU
// resourceRequirement; 0 for none or a value that does not parse, which
// registration refuses).
func ContainerGPUs(cd *ecs.ContainerDefinition) int64 {
	for _, r := range cd.ResourceRequirements {
		if r.Type == ecs.ResourceTypeGPU {
			n, _ := ecs.GPUCount(r.Value) // 0 when not ok
			return int64(n)
		}
	}
	return 0
}

// ContainerGPUIDs deals the GPU IDs a task holds out to its containers, in
// task definition order, each as many as it requires (ECS pins each GPU to
// one container: a container's gpuIds). ov is applied as in
// TaskResources. The result is indexed like td.ContainerDefinitions.
func ContainerGPUIDs(td *ecs.TaskDefinition, ov *ecs.TaskOverride, ids []string) [][]string {
	out := make([][]string, len(td.ContainerDefinitions))
	for i := range td.ContainerDefinitions {
		n := min(ContainerGPUs(EffectiveContainer(&td.ContainerDefinitions[i], ov)), int64(len(ids)))
		if n > 0 {
			out[i], ids = slices.Clone(ids[:n]), ids[n:]
		}
	}
	return out
}

// EffectiveContainer returns cd with the cpu, memory, memoryReservation and
// resourceRequirements of its override in ov applied (command and
// environment are the agent's business). cd itself is not modified.
func EffectiveContainer(cd *ecs.ContainerDefinition, ov *ecs.TaskOverride) *ecs.ContainerDefinition {
	if ov == nil {
		return cd
	}
	for _, co := range ov.ContainerOverrides {
		if co.Name != cd.Name {
			continue
		}
		c := *cd
		if co.CPU != nil {
			c.CPU = *co.CPU
		}
		if co.Memory != nil {
			c.Memory = co.Memory
		}
		if co.MemoryReservation != nil {
			c.MemoryReservation = co.MemoryReservation
		}
		if len(co.ResourceRequirements) > 0 {
			c.ResourceRequirements = co.ResourceRequirements
		}
		return &c
	}
	return cd
}

// Remaining is what DescribeContainerInstances reports as
// remainingResources: the registered resources less what the tasks in held
// hold. PORTS and PORTS_UDP list the ports taken: those registered as
// reserved and those held by tasks. GPU lists the GPUs no task holds.
func Remaining(registered []ecs.Resource, held []Resources) []ecs.Resource {
	var cpu, mem int64
	var ports, udp []int32
	var gpus map[string]bool
	for _, h := range held {
		cpu += h.CPU
		mem += h.Memory
		ports = append(ports, h.Ports...)
		udp = append(udp, h.PortsUDP...)
		for _, id := range h.GPUIDs {
			if gpus == nil {
				gpus = map[string]bool{}
			}
			gpus[id] = true
		}
	}
	out := make([]ecs.Resource, 0, len(registered))
	for _, r := range registered {
		switch r.Name {
		case ecs.ResourceCPU:
			r = ecs.IntegerResource(r.Name, int64(r.IntegerValue)-cpu)
		case ecs.ResourceMemory:
			r = ecs.IntegerResource(r.Name, int64(r.IntegerValue)-mem)
		case ecs.ResourcePorts:
			reserved, _ := ecs.ParsePorts(r.StringSetValue)
			r = ecs.PortsResource(r.Name, append(reserved, ports...))
		case ecs.ResourcePortsUDP:
			reserved, _ := ecs.ParsePorts(r.StringSetValue)
			r = ecs.PortsResource(r.Name, append(reserved, udp...))
		case ecs.ResourceGPU:
			r.StringSetValue = slices.DeleteFunc(slices.Clone(r.StringSetValue), func(id string) bool { return gpus[id] })
		default:
			r.StringSetValue = slices.Clone(r.StringSetValue)
		}
		out = append(out, r)
	}
	return out
}
