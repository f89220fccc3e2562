package scheduler

import (
	"slices"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/ecs"
)

func i32(v int32) *int32 { return &v }

func ci(arn string, cpu, mem int64, status string, attrs ...ecs.Attribute) *ecs.ContainerInstance {
	return &ecs.ContainerInstance{
		ContainerInstanceARN: arn,
		Status:               status,
		Attributes:           attrs,
		RegisteredResources: []ecs.Resource{
			ecs.IntegerResource(ecs.ResourceCPU, cpu),
			ecs.IntegerResource(ecs.ResourceMemory, mem),
			ecs.PortsResource(ecs.ResourcePorts, ecs.ReservedPorts),
			ecs.PortsResource(ecs.ResourcePortsUDP, nil),
		},
	}
}

func TestTaskResources(t *testing.T) {
	web := ecs.ContainerDefinition{Name: "web", CPU: 256, Memory: i32(512), MemoryReservation: i32(128),
		PortMappings: []ecs.PortMapping{{ContainerPort: i32(80), HostPort: i32(8080)}, {ContainerPort: i32(81), HostPort: i32(0)},
			{ContainerPort: i32(53), HostPort: i32(53), Protocol: ecs.TransportProtocolUDP}}}
	side := ecs.ContainerDefinition{Name: "side", CPU: 10, Memory: i32(64)}
	for _, tc := range []struct {
		name string
		td   ecs.TaskDefinition
		ov   *ecs.TaskOverride
		want Resources
	}{
		{"ReservationElseMemory", ecs.TaskDefinition{ContainerDefinitions: []ecs.ContainerDefinition{web, side}},
			nil, Resources{CPU: 266, Memory: 128 + 64, Ports: []int32{8080}, PortsUDP: []int32{53}}},
		{"TaskLevelWins", ecs.TaskDefinition{CPU: "1 vCPU", Memory: "2GB", ContainerDefinitions: []ecs.ContainerDefinition{web}},
			nil, Resources{CPU: 1024, Memory: 2048, Ports: []int32{8080}, PortsUDP: []int32{53}}},
		{"HostModeReservesContainerPort", ecs.TaskDefinition{NetworkMode: ecs.NetworkModeHost, ContainerDefinitions: []ecs.ContainerDefinition{
			{Name: "h", Memory: i32(10), PortMappings: []ecs.PortMapping{{ContainerPort: i32(9000)}}}}},
			nil, Resources{Memory: 10, Ports: []int32{9000}}},
		{"ContainerOverrides", ecs.TaskDefinition{ContainerDefinitions: []ecs.ContainerDefinition{side}},
			&ecs.TaskOverride{ContainerOverrides: []ecs.ContainerOverride{{Name: "side", CPU: i32(100), MemoryReservation: i32(32)}}},
			Resources{CPU: 100, Memory: 32}},
		{"TaskOverrides", ecs.TaskDefinition{CPU: "256", Memory: "512", ContainerDefinitions: []ecs.ContainerDefinition{side}},
			&ecs.TaskOverride{CPU: "512", Memory: "1024"}, Resources{CPU: 512, Memory: 1024}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := TaskResources(&tc.td, tc.ov)
			if got.CPU != tc.want.CPU || got.Memory != tc.want.Memory || !slices.Equal(got.Ports, tc.want.Ports) || !slices.Equal(got.PortsUDP, tc.want.PortsUDP) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRemaining(t *testing.T) {
	ci := ci("i", 1024, 2048, ecs.InstanceStatusActive)
	got := Remaining(ci.RegisteredResources, []Resources{{CPU: 100, Memory: 200, Ports: []int32{8080}}, {CPU: 24, Memory: 48, PortsUDP: []int32{53}}})
	if got[0].IntegerValue != 900 || got[1].IntegerValue != 1800 ||
		!slices.Equal(got[2].StringSetValue, []string{"22", "2375", "2376", "8080", "51678", "51679"}) || !slices.Equal(got[3].StringSetValue, []string{"53"}) {
		t.Errorf("remaining: %+v", got)
	}
	if ci.RegisteredResources[2].StringSetValue[0] != "22" || len(ci.RegisteredResources[2].StringSetValue) != 5 {
		t.Errorf("registered resources modified: %+v", ci.RegisteredResources)
	}
}

func TestFilters(t *testing.T) {
	n := NewNode(ci("i", 1024, 1024, ecs.InstanceStatusActive, ecs.Attribute{Name: "ecs.capability.x"}, ecs.Attribute{Name: "stack", Value: "prod"}),
		true, []Held{{Resources: Resources{Ports: []int32{8080}, PortsUDP: []int32{53}}, Group: "family:web"}})
	for _, tc := range []struct {
		name   string
		node   func(Node) Node
		demand Demand
		reason string // "" when it fits
	}{
		{"Fits", nil, Demand{Resources: Resources{CPU: 1024, Memory: 1024, Ports: []int32{8081}}}, ""},
		{"Draining", func(n Node) Node { n.Status = ecs.InstanceStatusDraining; return n }, Demand{}, "DRAINING"},
		{"Disconnected", func(n Node) Node { n.Connected = false; return n }, Demand{}, "AGENT"},
		{"StatusBeforeAgent", func(n Node) Node { n.Status, n.Connected = ecs.InstanceStatusInactive, false; return n }, Demand{}, "INACTIVE"},
		{"CPU", nil, Demand{Resources: Resources{CPU: 1025}}, "RESOURCE:CPU"},
		{"Memory", nil, Demand{Resources: Resources{Memory: 1025}}, "RESOURCE:MEMORY"},
		{"CPUBeforeMemory", nil, Demand{Resources: Resources{CPU: 2000, Memory: 2000}}, "RESOURCE:CPU"},
		{"ReservedPort", nil, Demand{Resources: Resources{Ports: []int32{22}}}, "RESOURCE:PORTS"},
		{"PortInUse", nil, Demand{Resources: Resources{Ports: []int32{8080}}}, "RESOURCE:PORTS"},
		{"SamePortTwice", nil, Demand{Resources: Resources{Ports: []int32{9000, 9000}}}, "RESOURCE:PORTS"},
		{"UDPPortInUse", nil, Demand{Resources: Resources{PortsUDP: []int32{53}}}, "RESOURCE:PORTS_UDP"},
		{"UDPDoesNotTakeTCP", nil, Demand{Resources: Resources{PortsUDP: []int32{8080}}}, ""},
		{"Attribute", nil, Demand{RequiresAttributes: []ecs.Attribute{{Name: "ecs.capability.x"}, {Name: "stack", Value: "prod"}}}, ""},
		{"MissingAttribute", nil, Demand{RequiresAttributes: []ecs.Attribute{{Name: "ecs.capability.y"}}}, "ATTRIBUTE"},
		{"AttributeValue", nil, Demand{RequiresAttributes: []ecs.Attribute{{Name: "stack", Value: "dev"}}}, "ATTRIBUTE"},
		{"DistinctInstance", nil, Demand{Group: "family:web"}, ReasonDistinctInstance},
		{"DistinctInstanceOtherGroup", nil, Demand{Group: "family:api"}, ""},
		{"MemberOf", nil, Demand{Group: "x"}, ReasonMemberOf},
		{"ResourcesBeforeConstraints", nil, Demand{Resources: Resources{Memory: 4096}, Group: "family:web"}, "RESOURCE:MEMORY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := n
			if tc.node != nil {
				node = tc.node(n)
			}
			filters := DefaultFilters
			switch {
			case strings.HasPrefix(tc.name, "DistinctInstance"), tc.name == "ResourcesBeforeConstraints":
				filters = append(slices.Clone(filters), DistinctInstance{})
			case tc.name == "MemberOf":
				filters = append(slices.Clone(filters), MemberOf{mustParse(t, "attribute:stack == dev")})
			}
			reason, ok := Check(filters, &tc.demand, &node)
			if ok != (tc.reason == "") || reason != tc.reason {
				t.Errorf("got %q %v, want %q", reason, ok, tc.reason)
			}
		})
	}
}

// TestPlaceFirstFit: with no strategy, each task goes on the first node
// that fits, in the order given.
func TestPlaceFirstFit(t *testing.T) {
	nodes := func() []Node {
		return []Node{
			NewNode(ci("a", 1024, 300, ecs.InstanceStatusActive), true, nil),
			NewNode(ci("b", 1024, 1000, ecs.InstanceStatusDraining), true, nil),
			NewNode(ci("c", 1024, 250, ecs.InstanceStatusActive), true, nil),
		}
	}
	for _, tc := range []struct {
		name     string
		demand   Demand
		count    int
		want     []int
		failures []Failure
	}{
		{"FillsInOrder", Demand{Resources: Resources{Memory: 100}}, 5, []int{0, 0, 0, 2, 2}, nil},
		{"ExplainsEachNode", Demand{Resources: Resources{Memory: 100}}, 7, []int{0, 0, 0, 2, 2},
			[]Failure{{"a", "RESOURCE:MEMORY"}, {"b", "DRAINING"}, {"c", "RESOURCE:MEMORY"}}},
		{"FixedPortOncePerNode", Demand{Resources: Resources{Memory: 10, Ports: []int32{80}}}, 3, []int{0, 2},
			[]Failure{{"a", "RESOURCE:PORTS"}, {"b", "DRAINING"}, {"c", "RESOURCE:PORTS"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := nodes()
			p := Place(in, &Task{Demand: tc.demand}, tc.count)
			if !slices.Equal(p.Placements, tc.want) || !slices.Equal(p.Failures, tc.failures) {
				t.Errorf("got %v %v, want %v %v", p.Placements, p.Failures, tc.want, tc.failures)
			}
			if in[0].Memory != 300 || len(in[0].Ports) != 5 {
				t.Errorf("FirstFit modified its input: %+v", in[0])
			}
		})
	}
}
