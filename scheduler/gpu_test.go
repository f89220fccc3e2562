package scheduler

import (
	"slices"
	"testing"

	"github.com/gantry-dev/gantry/ecs"
)

// gpuInstance is an ACTIVE instance with plenty of CPU and memory and the
// given GPU IDs.
func gpuInstance(arn string, gpus ...string) *ecs.ContainerInstance {
	c := ci(arn, 4096, 4096, ecs.InstanceStatusActive)
	c.RegisteredResources = append(c.RegisteredResources, ecs.Resource{Name: ecs.ResourceGPU, Type: ecs.ResourceTypeStringSet, StringSetValue: gpus})
	return c
}

func gpuRequirement(n string) []ecs.ResourceRequirement {
	return []ecs.ResourceRequirement{{Type: ecs.ResourceTypeGPU, Value: n}}
}

func TestTaskResourcesGPU(t *testing.T) {
	td := &ecs.TaskDefinition{ContainerDefinitions: []ecs.ContainerDefinition{
		{Name: "a", Memory: i32(10), ResourceRequirements: gpuRequirement("2")},
		{Name: "b", Memory: i32(10)},
		{Name: "c", Memory: i32(10), ResourceRequirements: gpuRequirement("1")},
	}}
	if got := TaskResources(td, nil).GPUs; got != 3 {
		t.Errorf("GPUs = %d, want 3", got)
	}
	ov := &ecs.TaskOverride{ContainerOverrides: []ecs.ContainerOverride{{Name: "c", ResourceRequirements: gpuRequirement("4")}}}
	if got := TaskResources(td, ov).GPUs; got != 6 {
		t.Errorf("GPUs with an override = %d, want 6", got)
	}
	got := ContainerGPUIDs(td, nil, []string{"g0", "g1", "g2"})
	if !slices.Equal(got[0], []string{"g0", "g1"}) || got[1] != nil || !slices.Equal(got[2], []string{"g2"}) {
		t.Errorf("ContainerGPUIDs = %q", got)
	}
}

func TestRemainingGPU(t *testing.T) {
	c := gpuInstance("i", "g0", "g1", "g2")
	got := Remaining(c.RegisteredResources, []Resources{{GPUs: 1, GPUIDs: []string{"g1"}}})
	if r := got[4]; r.Name != ecs.ResourceGPU || r.Type != ecs.ResourceTypeStringSet || !slices.Equal(r.StringSetValue, []string{"g0", "g2"}) {
		t.Errorf("remaining GPU: %+v", r)
	}
	if !slices.Equal(c.RegisteredResources[4].StringSetValue, []string{"g0", "g1", "g2"}) {
		t.Errorf("registered resources modified: %+v", c.RegisteredResources[4])
	}
}

// TestPlaceGPU: GPUs are counted per instance, assigned by ID (the first
// free ones), not given twice, and an instance without enough is
// RESOURCE:GPU.
func TestPlaceGPU(t *testing.T) {
	held := []Held{{Resources: Resources{GPUs: 1, GPUIDs: []string{"a0"}}, Group: "family:x"}}
	nodes := []Node{
		NewNode(gpuInstance("a", "a0", "a1", "a2"), true, held), // a1, a2 free
		NewNode(gpuInstance("b", "b0"), true, nil),
		NewNode(ci("c", 4096, 4096, ecs.InstanceStatusActive), true, nil), // no GPUs
	}
	if !slices.Equal(nodes[0].GPUs, []string{"a1", "a2"}) {
		t.Fatalf("free GPUs of a: %q", nodes[0].GPUs)
	}
	task := &Task{Demand: Demand{Resources: Resources{Memory: 10, GPUs: 1}}}
	p := Place(nodes, task, 5)
	if got := names(nodes, p); !slices.Equal(got, []string{"a", "a", "b"}) {
		t.Errorf("placed on %v, want [a a b]", got)
	}
	want := []Failure{{"a", "RESOURCE:GPU"}, {"b", "RESOURCE:GPU"}, {"c", "RESOURCE:GPU"}}
	if !slices.Equal(p.Failures, want) {
		t.Errorf("failures %v, want %v", p.Failures, want)
	}

	// The caller replays the plan with Take and gets distinct IDs.
	work := slices.Clone(nodes)
	var got []string
	for _, i := range p.Placements {
		h := work[i].Take(&task.Demand)
		got = append(got, h.GPUIDs...)
	}
	if !slices.Equal(got, []string{"a1", "a2", "b0"}) {
		t.Errorf("assigned %q, want [a1 a2 b0]", got)
	}
	if !slices.Equal(nodes[0].GPUs, []string{"a1", "a2"}) || len(nodes[1].GPUs) != 1 {
		t.Errorf("Take modified the caller's nodes: %q %q", nodes[0].GPUs, nodes[1].GPUs)
	}

	two := &Task{Demand: Demand{Resources: Resources{GPUs: 2}}}
	if p := Place(nodes, two, 2); !slices.Equal(names(nodes, p), []string{"a"}) {
		t.Errorf("two GPUs each: placed on %v, want [a]", names(nodes, p))
	}
	if reason, ok := Check(DefaultFilters, &Demand{Resources: Resources{GPUs: 3}}, &nodes[0]); ok || reason != "RESOURCE:GPU" {
		t.Errorf("3 GPUs on a: %q %v", reason, ok)
	}
}
