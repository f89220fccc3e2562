package scheduler

import (
	"iter"
	"maps"
	"slices"
	"time"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/scheduler/query"
)

// Node is a container instance as the scheduler sees it: identity, whether
// it may take tasks, what the cluster query language can ask of it, its
// tasks' groups, and its free capacity. Place copies the Nodes it is given
// and never writes to their maps.
type Node struct {
	ARN           string
	EC2InstanceID string
	Status        string // ecs.InstanceStatusActive, ...
	Connected     bool   // the agent's heartbeat is current
	Attributes    map[string]string
	AgentVersion  string
	RegisteredAt  time.Time

	// Groups counts the instance's tasks that are not STOPPED by task
	// group: distinctInstance, spread and task:group look at it.
	Groups map[string]int
	// RunningTasks is runningTasksCount: tasks desired RUNNING. NewNode
	// counts every task that is not STOPPED; callers that know which are
	// stopping (and need it: see query.Expr.Uses) set it.
	RunningTasks int

	CPU, Memory     int64          // remaining
	Ports, PortsUDP map[int32]bool // host ports taken (reserved or held by tasks)
	GPUs            []string       // IDs of the GPUs no task holds, in registration order
}

// Held is what one task placed on an instance holds there until it is
// STOPPED, and its task group.
type Held struct {
	Resources
	Group string `json:"group,omitempty"`
}

// NewNode builds the scheduler's view of an instance from its registered
// resources and what the tasks placed on it hold.
func NewNode(ci *ecs.ContainerInstance, connected bool, held []Held) Node {
	n := Node{
		ARN:           ci.ContainerInstanceARN,
		EC2InstanceID: ci.EC2InstanceID,
		Status:        ci.Status,
		Connected:     connected,
		Attributes:    make(map[string]string, len(ci.Attributes)),
		RegisteredAt:  ci.RegisteredAt.Time,
		Groups:        map[string]int{},
		RunningTasks:  len(held),
		Ports:         map[int32]bool{},
		PortsUDP:      map[int32]bool{},
	}
	if ci.VersionInfo != nil {
		n.AgentVersion = ci.VersionInfo.AgentVersion
	}
	for _, a := range ci.Attributes {
		n.Attributes[a.Name] = a.Value
	}
	res := make([]Resources, len(held))
	for i, h := range held {
		res[i] = h.Resources
		if h.Group != "" {
			n.Groups[h.Group]++
		}
	}
	for _, r := range Remaining(ci.RegisteredResources, res) {
		switch r.Name {
		case ecs.ResourceCPU:
			n.CPU = int64(r.IntegerValue)
		case ecs.ResourceMemory:
			n.Memory = int64(r.IntegerValue)
		case ecs.ResourcePorts:
			ports, _ := ecs.ParsePorts(r.StringSetValue)
			addPorts(n.Ports, ports)
		case ecs.ResourcePortsUDP:
			ports, _ := ecs.ParsePorts(r.StringSetValue)
			addPorts(n.PortsUDP, ports)
		case ecs.ResourceGPU:
			n.GPUs = r.StringSetValue
		}
	}
	return n
}

// Take accounts for a task that needs d placed on n and returns what the
// task holds there: d's resources with the GPUs it was given (the first
// free ones, so a caller repeating a Place decision on the same nodes
// assigns the same IDs). The maps and slices it changes are copied first:
// n may share them with the caller's Node.
func (n *Node) Take(d *Demand) Resources {
	held := d.Resources
	if k := min(int(d.GPUs), len(n.GPUs)); k > 0 {
		held.GPUIDs = slices.Clone(n.GPUs[:k])
		n.GPUs = n.GPUs[k:]
	}
	n.CPU -= d.CPU
	n.Memory -= d.Memory
	if len(d.Ports) > 0 {
		n.Ports = maps.Clone(n.Ports)
		addPorts(n.Ports, d.Ports)
	}
	if len(d.PortsUDP) > 0 {
		n.PortsUDP = maps.Clone(n.PortsUDP)
		addPorts(n.PortsUDP, d.PortsUDP)
	}
	if d.Group != "" {
		g := make(map[string]int, len(n.Groups)+1)
		maps.Copy(g, n.Groups)
		g[d.Group]++
		n.Groups = g
	}
	n.RunningTasks++
	return held
}

// Matches reports whether the instance satisfies a cluster query language
// expression (memberOf, ListContainerInstances' filter).
func (n *Node) Matches(e *query.Expr) bool { return e.Match(instance{n}) }

func addPorts(set map[int32]bool, ports []int32) {
	for _, p := range ports {
		set[p] = true
	}
}

// instance is a Node as the query language sees it (one pointer, so
// converting it to the interface allocates nothing).
type instance struct{ n *Node }

func (i instance) Attribute(name string) (string, bool) { v, ok := i.n.Attributes[name]; return v, ok }
func (i instance) AgentConnected() bool                 { return i.n.Connected }
func (i instance) AgentVersion() string                 { return i.n.AgentVersion }
func (i instance) EC2InstanceID() string                { return i.n.EC2InstanceID }
func (i instance) RegisteredAt() time.Time              { return i.n.RegisteredAt }
func (i instance) RunningTasksCount() int               { return i.n.RunningTasks }
func (i instance) TaskGroups() iter.Seq[string] {
	return func(yield func(string) bool) {
		for g, c := range i.n.Groups {
			if c > 0 && !yield(g) {
				return
			}
		}
	}
}

var _ query.Instance = instance{}
