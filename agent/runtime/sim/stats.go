package sim

import (
	"cmp"
	"context"
	"encoding/json"
	"time"

	"github.com/gantry-dev/gantry/agent/runtime"
)

// Stats reports a small document in the Docker Engine's stats format: the
// fields clients compute usage from (CPU and system time, memory usage and
// limit, PIDs, bridge network counters), with the counters the simulation
// can make up: CPU time grows by a hundredth of a CPU while a container
// runs, memory usage is a fixed 4 MiB of its limit, traffic is zero.
// Like the engine's, the document of a container that does not run has
// zero times and counters.
func (r *Runtime) Stats(ctx context.Context, id string) (json.RawMessage, error) {
	info, _ := r.Info(ctx)
	r.mu.Lock()
	c := r.lookup(id)
	if c == nil {
		r.mu.Unlock()
		return nil, notFound("stats", id)
	}
	doc := simStats{Name: "/" + c.spec.Name, ID: c.id}
	if c.state == runtime.StateRunning {
		now := time.Now()
		doc.Read, doc.PreRead = now, now.Add(-time.Second)
		doc.CPU = cpuAt(c.started, now, info.CPUs)
		doc.PreCPU = cpuAt(c.started, doc.PreRead, info.CPUs)
		doc.PIDs.Current = 1
		doc.Memory = simMemory{Usage: 4 << 20, Limit: uint64(cmp.Or(c.spec.MemoryLimit, info.MemoryBytes))}
		if c.spec.NetworkMode == "" || c.spec.NetworkMode == runtime.NetworkBridge {
			doc.Networks = map[string]simNetwork{"eth0": {}}
		}
	}
	r.mu.Unlock()
	return json.Marshal(doc)
}

// booted stands for the host's boot: system_cpu_usage is the CPU time of
// all CPUs since.
var booted = time.Now().Add(-time.Hour)

// cpuAt is a container's CPU usage at t if it used a hundredth of one CPU
// since started.
func cpuAt(started, t time.Time, cpus int) simCPU {
	up := uint64(max(t.Sub(started), 0))
	return simCPU{
		Usage:      simCPUUsage{Total: up / 100},
		System:     uint64(max(t.Sub(booted), 0)) * uint64(max(cpus, 1)),
		OnlineCPUs: uint32(max(cpus, 1)),
	}
}

// The Docker Engine API's stats document (api/types/container.StatsResponse),
// the part the simulation fills.
type simStats struct {
	Read     time.Time             `json:"read"`
	PreRead  time.Time             `json:"preread"`
	PIDs     simPIDs               `json:"pids_stats"`
	CPU      simCPU                `json:"cpu_stats"`
	PreCPU   simCPU                `json:"precpu_stats"`
	Memory   simMemory             `json:"memory_stats"`
	Name     string                `json:"name"`
	ID       string                `json:"id"`
	Networks map[string]simNetwork `json:"networks,omitempty"`
}

type simPIDs struct {
	Current uint64 `json:"current,omitempty"`
}

type simCPU struct {
	Usage      simCPUUsage `json:"cpu_usage"`
	System     uint64      `json:"system_cpu_usage,omitempty"`
	OnlineCPUs uint32      `json:"online_cpus,omitempty"`
}

type simCPUUsage struct {
	Total uint64 `json:"total_usage"`
}

type simMemory struct {
	Usage uint64 `json:"usage,omitempty"`
	Limit uint64 `json:"limit,omitempty"`
}

type simNetwork struct {
	RxBytes   uint64 `json:"rx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
}
