package ecsapi

import (
	"context"
	"math/rand/v2"
	"slices"

	"github.com/gantry-dev/gantry/controller"
	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/scheduler"
	"github.com/gantry-dev/gantry/state"
)

// serviceViews are services as DescribeServices shows them: the stored
// spec, deployments and events, with the counts derived from the tasks now
// (service and deployment runningCount and pendingCount; an ACTIVE
// deployment's desiredCount is the tasks it still keeps). Tasks the service
// gave up on because their instance was lost do not count.
func (a *API) serviceViews(ctx context.Context, cluster string, recs []*state.ServiceRecord, tags bool) ([]ecs.Service, error) {
	out := make([]ecs.Service, 0, len(recs))
	var tasks map[string][]*state.ServiceTask
	var connected map[string]bool
	for _, r := range recs {
		if r.Status != ecs.ServiceStatusInactive && tasks == nil {
			var err error
			if tasks, err = a.store.ClusterServiceTaskSummaries(ctx, cluster); err != nil {
				return nil, err
			}
			if connected, err = a.store.Connected(ctx, cluster); err != nil {
				return nil, err
			}
		}
		out = append(out, serviceView(r, tasks[r.ServiceName], connected, tags))
	}
	return out, nil
}

func serviceView(r *state.ServiceRecord, tasks []*state.ServiceTask, connected map[string]bool, tags bool) ecs.Service {
	v := r.Service
	running, pending, live := map[string]int32{}, map[string]int32{}, map[string]int32{}
	v.RunningCount, v.PendingCount = 0, 0
	for _, t := range tasks {
		if t.DesiredStatus != ecs.TaskStatusRunning && !connected[t.InstanceID()] {
			continue // lost with its instance, replaced
		}
		switch t.LastStatus {
		case ecs.TaskStatusRunning:
			running[t.StartedBy]++
			v.RunningCount++
		case ecs.TaskStatusProvisioning, ecs.TaskStatusPending, ecs.TaskStatusActivating:
			if t.DesiredStatus == ecs.TaskStatusRunning {
				pending[t.StartedBy]++
				v.PendingCount++
			}
		}
		if t.DesiredStatus == ecs.TaskStatusRunning {
			live[t.StartedBy]++
		}
	}
	v.Deployments = slices.Clone(r.Deployments)
	for i := range v.Deployments {
		d := &v.Deployments[i]
		d.RunningCount, d.PendingCount = running[d.ID], pending[d.ID]
		if i > 0 {
			d.DesiredCount = live[d.ID]
		}
	}
	if v.Status == ecs.ServiceStatusInactive {
		v.RunningCount, v.PendingCount = 0, 0
	}
	v.Deployments = nonNil(v.Deployments)
	v.Events = nonNil(slices.Clone(r.Events))
	v.LoadBalancers = nonNil(v.LoadBalancers)
	v.ServiceRegistries = nonNil(v.ServiceRegistries)
	v.PlacementConstraints = nonNil(v.PlacementConstraints)
	v.PlacementStrategy = nonNil(v.PlacementStrategy)
	v.Tags = nil
	if tags {
		v.Tags = nonNil(r.Tags)
	}
	return v
}

var _ controller.Placer = (*API)(nil)

// PlaceServiceTasks places a service's new tasks with the placement RunTask
// uses (controller.Placer): the same task records (group "service:<name>",
// startedBy the deployment ID), the same scheduler with the service's
// constraints and strategies (ECS's AZ-balanced spread by default), the
// same revision-guarded commit. The task definition may be INACTIVE:
// deregistered revisions keep running and scaling.
func (a *API) PlaceServiceTasks(ctx context.Context, p *controller.Placement) ([]*state.TaskRecord, []ecs.Failure, error) {
	svc, td := p.Service, p.TaskDefinition
	group := ecs.ServiceGroup(svc.ServiceName)
	var tags []ecs.Tag
	switch svc.PropagateTags {
	case ecs.PropagateTagsService:
		tags = svc.Tags
	case ecs.PropagateTagsTaskDefinition:
		tags = td.Tags
	}
	spec := &taskSpec{
		cluster:   p.Cluster,
		td:        td,
		overrides: echoOverrides(&td.TaskDefinition, nil),
		group:     group,
		startedBy: p.StartedBy,
		tags:      slices.Clone(tags),
		demand: scheduler.Demand{
			Resources:          scheduler.TaskResources(&td.TaskDefinition, nil),
			RequiresAttributes: td.RequiresAttributes,
			Group:              group,
		},
	}
	constraints, err := scheduler.ParseConstraints(td.PlacementConstraints, svc.PlacementConstraints)
	if err != nil {
		return nil, nil, err
	}
	counts := usesRunningTasksCount(constraints)
	if len(p.Instances) > 0 {
		var placed []*state.TaskRecord
		var failures []ecs.Failure
		for _, arn := range p.Instances {
			got, failed, err := a.place(ctx, spec, []string{ecs.NewID()}, counts, func(nodes []scheduler.Node, _ int) (scheduler.Plan, error) {
				for i := range nodes {
					if nodes[i].ARN != arn {
						continue
					}
					reason, ok := scheduler.Check(scheduler.DefaultFilters, &spec.demand, &nodes[i])
					if ok {
						reason, ok = scheduler.Check(constraints, &spec.demand, &nodes[i])
					}
					if !ok {
						return scheduler.Plan{Failures: []scheduler.Failure{{ARN: arn, Reason: reason}}}, nil
					}
					return scheduler.Plan{Placements: []int{i}}, nil
				}
				return scheduler.Plan{Failures: []scheduler.Failure{{ARN: arn, Reason: "MISSING"}}}, nil
			})
			placed = append(placed, got...)
			failures = append(failures, failed...)
			if err != nil {
				return placed, failures, err
			}
		}
		return placed, failures, nil
	}
	strategies, err := scheduler.ParseStrategies(svc.PlacementStrategy)
	if err != nil {
		return nil, nil, err
	}
	if strategies == nil {
		strategies = scheduler.DefaultStrategies
	}
	ids := make([]string, p.Count)
	for i := range ids {
		ids[i] = ecs.NewID()
	}
	task := &scheduler.Task{Demand: spec.demand, Constraints: constraints, Strategies: strategies,
		Rand: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
	return a.place(ctx, spec, ids, counts, func(nodes []scheduler.Node, n int) (scheduler.Plan, error) {
		if len(nodes) == 0 {
			return scheduler.Plan{Failures: []scheduler.Failure{}}, nil // no instances: nothing to explain
		}
		return scheduler.Place(nodes, task, n), nil
	})
}
