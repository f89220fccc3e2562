package ecsapi

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/awsproto"
	"github.com/gantry-dev/gantry/scheduler"
	"github.com/gantry-dev/gantry/state"
)

// taskSpec is what RunTask and StartTask were asked to run, checked: the
// task definition revision, the overrides, the user's fields, and what
// each task will hold on its instance.
type taskSpec struct {
	cluster     string
	td          *ecs.TaskDefinitionRecord
	overrides   *ecs.TaskOverride // as the task echoes them
	group       string
	startedBy   string
	tags        []ecs.Tag
	demand      scheduler.Demand
	clientToken string
}

// newTaskSpec resolves and checks everything RunTask and StartTask share,
// before anything is placed: a bad override refuses the request and starts
// nothing.
func (a *API) newTaskSpec(ctx context.Context, cluster, tdRef string, ov *ecs.TaskOverride, group, startedBy string, tags []ecs.Tag, propagate ecs.PropagateTags) (*taskSpec, error) {
	td, err := a.runnableTaskDefinition(ctx, tdRef)
	if err != nil {
		return nil, err
	}
	if err := validateOverrides(&td.TaskDefinition, ov); err != nil {
		return nil, err
	}
	if group == "" {
		group = "family:" + td.Family
	}
	if len(group) > 255 {
		return nil, ecs.InvalidParameter("group can be at most 255 characters long.")
	}
	if err := validateStartedBy(startedBy); err != nil {
		return nil, err
	}
	if err := ecs.ValidateTags(tags); err != nil {
		return nil, err
	}
	switch propagate {
	case ecs.PropagateTagsTaskDefinition:
		tags = ecs.MergeTags(td.Tags, tags)
		if err := ecs.ValidateTags(tags); err != nil {
			return nil, err
		}
	case ecs.PropagateTagsService:
		return nil, ecs.InvalidParameter("propagateTags SERVICE applies only to tasks a service starts.")
	}
	return &taskSpec{
		cluster:   cluster,
		td:        td,
		overrides: echoOverrides(&td.TaskDefinition, ov),
		group:     group,
		startedBy: startedBy,
		tags:      tags,
		demand: scheduler.Demand{
			Resources:          scheduler.TaskResources(&td.TaskDefinition, ov),
			RequiresAttributes: td.RequiresAttributes,
			Group:              group,
		},
	}, nil
}

// runnableTaskDefinition resolves "family", "family:revision" or an ARN to
// an ACTIVE revision that Gantry can run on a container instance.
func (a *API) runnableTaskDefinition(ctx context.Context, ref string) (*ecs.TaskDefinitionRecord, error) {
	notFound := ecs.ClientError("TaskDefinition not found.")
	r, err := a.scope.ParseTaskDefinitionRef(ref)
	if errors.Is(err, ecs.ErrNoSuchTaskDefinition) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	var td *ecs.TaskDefinitionRecord
	if r.Revision == 0 {
		td, err = a.store.LatestActiveTaskDefinition(ctx, r.Family)
	} else {
		td, err = a.store.GetTaskDefinition(ctx, r.Family, r.Revision)
	}
	if errors.Is(err, state.ErrNotFound) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	if td.Status != ecs.TaskDefinitionStatusActive {
		return nil, ecs.ClientError("TaskDefinition is inactive")
	}
	if !slices.Contains(td.Compatibilities, ecs.CompatibilityEC2) {
		return nil, ecs.InvalidParameter("Task definition does not support launch_type EC2.")
	}
	if td.NetworkMode == ecs.NetworkModeAwsvpc {
		return nil, ecs.UnsupportedFeature("Gantry does not run tasks in awsvpc network mode yet; use bridge or host.")
	}
	for _, cd := range td.ContainerDefinitions {
		for _, r := range cd.ResourceRequirements {
			if r.Type != ecs.ResourceTypeGPU {
				return nil, ecs.UnsupportedFeature("Container %s has a resourceRequirement of type %s, which Gantry does not schedule.", cd.Name, r.Type)
			}
		}
	}
	return td, nil
}

// validateOverrides checks a RunTask or StartTask overrides against the
// task definition, as ECS does before it places anything.
func validateOverrides(td *ecs.TaskDefinition, ov *ecs.TaskOverride) error {
	if ov == nil {
		return nil
	}
	switch {
	case len(ov.InferenceAcceleratorOverrides) > 0:
		return ecs.UnsupportedFeature("inferenceAcceleratorOverrides are not supported by Gantry.")
	case ov.EphemeralStorage != nil:
		return ecs.UnsupportedFeature("ephemeralStorage overrides apply to Fargate tasks, which Gantry does not run yet.")
	}
	taskCPU, taskMem := int64(0), int64(0)
	if v, ok := ecs.TaskCPUUnits(td.CPU); ok {
		taskCPU = int64(v)
	}
	if v, ok := ecs.TaskMemoryMiB(td.Memory); ok {
		taskMem = int64(v)
	}
	if ov.CPU != "" {
		v, ok := ecs.TaskCPUUnits(ov.CPU)
		if !ok {
			return ecs.InvalidParameter("Invalid cpu override %q: give CPU units (1024) or vCPUs (1 vCPU).", ov.CPU)
		}
		taskCPU = int64(v)
	}
	if ov.Memory != "" {
		v, ok := ecs.TaskMemoryMiB(ov.Memory)
		if !ok {
			return ecs.InvalidParameter("Invalid memory override %q: give MiB (2048) or GB (2 GB).", ov.Memory)
		}
		taskMem = int64(v)
	}
	seen := map[string]bool{}
	for i, co := range ov.ContainerOverrides {
		if co.Name == "" {
			return ecs.InvalidParameter("overrides.containerOverrides[%d].name is required.", i)
		}
		if !slices.ContainsFunc(td.ContainerDefinitions, func(cd ecs.ContainerDefinition) bool { return cd.Name == co.Name }) {
			return ecs.InvalidParameter("Override for container named %s is not a container in the TaskDefinition.", co.Name)
		}
		if seen[co.Name] {
			return ecs.InvalidParameter("overrides.containerOverrides names container %s more than once.", co.Name)
		}
		seen[co.Name] = true
		if err := validateContainerOverride(&co); err != nil {
			return err
		}
	}
	var cpuSum, memSum int64
	for i := range td.ContainerDefinitions {
		cd := scheduler.EffectiveContainer(&td.ContainerDefinitions[i], ov)
		if cd.Memory != nil && cd.MemoryReservation != nil && *cd.Memory < *cd.MemoryReservation {
			return ecs.InvalidParameter("Container %s: memory (%d MiB) must be greater than memoryReservation (%d MiB).", cd.Name, *cd.Memory, *cd.MemoryReservation)
		}
		if taskMem == 0 && cd.Memory == nil && cd.MemoryReservation == nil {
			return ecs.InvalidParameter("Container %s needs memory or memoryReservation: the task has no task-level memory.", cd.Name)
		}
		cpuSum += int64(cd.CPU)
		switch {
		case cd.MemoryReservation != nil:
			memSum += int64(*cd.MemoryReservation)
		case cd.Memory != nil:
			memSum += int64(*cd.Memory)
		}
	}
	if taskCPU > 0 && cpuSum > taskCPU {
		return ecs.InvalidParameter("The containers' cpu (%d units in all) cannot be greater than the task's cpu (%d).", cpuSum, taskCPU)
	}
	if taskMem > 0 && memSum > taskMem {
		return ecs.InvalidParameter("The containers' memory (%d MiB in all) cannot be greater than the task's memory (%d MiB).", memSum, taskMem)
	}
	return nil
}

// minContainerMemoryMiB is the least memory Docker 20.10+ gives a
// container ("don't specify less than 6 MiB").
const minContainerMemoryMiB = 6

func validateContainerOverride(co *ecs.ContainerOverride) error {
	switch {
	case len(co.EnvironmentFiles) > 0:
		return ecs.UnsupportedFeature("environmentFiles overrides (Amazon S3) are not supported by Gantry.")
	case co.CPU != nil && *co.CPU < 0:
		return ecs.InvalidParameter("Container %s: the cpu override must not be negative.", co.Name)
	case co.Memory != nil && *co.Memory < minContainerMemoryMiB:
		return ecs.InvalidParameter("Container %s: the memory override must be at least %d MiB.", co.Name, minContainerMemoryMiB)
	case co.MemoryReservation != nil && *co.MemoryReservation < minContainerMemoryMiB:
		return ecs.InvalidParameter("Container %s: the memoryReservation override must be at least %d MiB.", co.Name, minContainerMemoryMiB)
	}
	for _, r := range co.ResourceRequirements {
		switch r.Type {
		case ecs.ResourceTypeGPU:
			if _, ok := ecs.GPUCount(r.Value); !ok {
				return ecs.InvalidParameter("Container %s: invalid GPU resourceRequirements override value '%s'. Specify a positive number of GPUs.", co.Name, r.Value)
			}
		default:
			return ecs.UnsupportedFeature("Container %s: resourceRequirements overrides of type %s are not supported by Gantry.", co.Name, r.Type)
		}
	}
	for _, kv := range co.Environment {
		if kv.Name == "" {
			return ecs.InvalidParameter("Container %s: environment variable names must not be empty.", co.Name)
		}
	}
	return nil
}

// echoOverrides is the overrides a task shows: one containerOverride per
// container, in task definition order, with the user's values where given
// (as ECS reports them).
func echoOverrides(td *ecs.TaskDefinition, ov *ecs.TaskOverride) *ecs.TaskOverride {
	out := &ecs.TaskOverride{ContainerOverrides: []ecs.ContainerOverride{}, InferenceAcceleratorOverrides: []ecs.InferenceAcceleratorOverride{}}
	if ov != nil {
		out.CPU, out.Memory, out.TaskRoleARN, out.ExecutionRoleARN = ov.CPU, ov.Memory, ov.TaskRoleARN, ov.ExecutionRoleARN
	}
next:
	for _, cd := range td.ContainerDefinitions {
		if ov != nil {
			for _, co := range ov.ContainerOverrides {
				if co.Name == cd.Name {
					out.ContainerOverrides = append(out.ContainerOverrides, co)
					continue next
				}
			}
		}
		out.ContainerOverrides = append(out.ContainerOverrides, ecs.ContainerOverride{Name: cd.Name})
	}
	return out
}

// validateStartedBy: "Up to 128 letters (uppercase and lowercase),
// numbers, hyphens (-), forward slash (/), and underscores (_) are
// allowed."
func validateStartedBy(s string) error {
	if len(s) > 128 {
		return ecs.InvalidParameter("startedBy can be at most 128 characters long.")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '/') {
			return ecs.InvalidParameter("startedBy may contain only letters, numbers, hyphens, forward slashes and underscores.")
		}
	}
	return nil
}

// newTask is a new task record for the spec, placed on inst, as ECS shows
// a task RunTask just created: PENDING, desired RUNNING, version 1. gpus
// are the instance's GPUs the task holds (Node.Take), dealt out to its
// containers as their gpuIds.
func (sp *taskSpec) newTask(scope ecs.Scope, id string, inst *state.InstanceRecord, at time.Time, gpus []string) *state.TaskRecord {
	ts := awsproto.Timestamp{Time: at}
	arn := scope.TaskARN(sp.cluster, id)
	td := &sp.td.TaskDefinition
	var health ecs.HealthStatus
	containers := make([]ecs.Container, 0, len(td.ContainerDefinitions))
	gpuIDs := scheduler.ContainerGPUIDs(td, sp.overrides, gpus)
	for i := range td.ContainerDefinitions {
		cd := scheduler.EffectiveContainer(&td.ContainerDefinitions[i], sp.overrides)
		c := ecs.Container{
			ContainerARN:      scope.ContainerARN(sp.cluster, id, newUUID()),
			TaskARN:           arn,
			Name:              cd.Name,
			Image:             cd.Image,
			LastStatus:        ecs.ContainerStatusPending,
			NetworkInterfaces: []ecs.NetworkInterface{},
			CPU:               strconv.Itoa(int(cd.CPU)),
			GPUIDs:            gpuIDs[i],
		}
		if cd.Memory != nil {
			c.Memory = strconv.Itoa(int(*cd.Memory))
		}
		if cd.MemoryReservation != nil {
			c.MemoryReservation = strconv.Itoa(int(*cd.MemoryReservation))
		}
		if cd.HealthCheck != nil {
			c.HealthStatus = ecs.HealthStatusUnknown
			health = ecs.HealthStatusUnknown
		}
		containers = append(containers, c)
	}
	az, _ := ecs.AttributeValue(inst.Attributes, ecs.AttributeAvailabilityZone)
	var attrs []ecs.Attribute // ECS shows the architecture the task runs on
	if arch, ok := ecs.AttributeValue(inst.Attributes, "ecs.cpu-architecture"); ok {
		attrs = []ecs.Attribute{{Name: "ecs.cpu-architecture", Value: arch}}
	}
	return &state.TaskRecord{
		Task: ecs.Task{
			TaskARN:              arn,
			ClusterARN:           scope.ClusterARN(sp.cluster),
			TaskDefinitionARN:    td.TaskDefinitionARN,
			ContainerInstanceARN: inst.ContainerInstanceARN,
			AvailabilityZone:     az,
			Attributes:           attrs,
			Overrides:            sp.overrides,
			LastStatus:           ecs.TaskStatusPending,
			DesiredStatus:        ecs.TaskStatusRunning,
			CPU:                  strconv.FormatInt(sp.demand.CPU, 10),
			Memory:               strconv.FormatInt(sp.demand.Memory, 10),
			Containers:           containers,
			Version:              1,
			Connectivity:         ecs.ConnectivityConnected,
			ConnectivityAt:       ts,
			CreatedAt:            ts,
			Group:                sp.group,
			StartedBy:            sp.startedBy,
			LaunchType:           ecs.LaunchTypeEC2,
			HealthStatus:         health,
			Tags:                 sp.tags,
		},
		ClientToken: sp.clientToken,
	}
}

// newUUID is a random RFC 4122 version 4 UUID, the form ECS gives
// container IDs.
func newUUID() string {
	id := ecs.NewID()
	b := []byte(id)
	b[12] = '4'
	b[16] = "89ab"[b[16]%4]
	return string(b[0:8]) + "-" + string(b[8:12]) + "-" + string(b[12:16]) + "-" + string(b[16:20]) + "-" + string(b[20:])
}

// taskView is a task as the API shows it; tags only when asked for.
func taskView(t *state.TaskRecord, tags bool) ecs.Task {
	v := t.Task
	v.Tags = nil
	if tags {
		v.Tags = nonNil(t.Tags)
	}
	return v
}
