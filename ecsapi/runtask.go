package ecsapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strconv"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/awsproto"
	"github.com/gantry-dev/gantry/scheduler"
	"github.com/gantry-dev/gantry/state"
)

func (a *API) runTask(ctx context.Context, in *ecs.RunTaskRequest) (*ecs.RunTaskResponse, error) {
	count := int32(1)
	if in.Count != nil {
		count = *in.Count
	}
	if count < 1 || count > 10 {
		return nil, ecs.InvalidParameter("count must be between 1 and 10.")
	}
	if err := validateClientToken(in.ClientToken); err != nil {
		return nil, err
	}
	if err := unsupportedRunOptions(in.NetworkConfiguration, in.EnableExecuteCommand, in.EnableECSManagedTags, in.VolumeConfigurations); err != nil {
		return nil, err
	}
	strategies, err := scheduler.ParseStrategies(in.PlacementStrategy)
	if err != nil {
		return nil, err
	}
	if strategies == nil {
		strategies = scheduler.DefaultStrategies
	}
	c, err := a.activeCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	if err := checkLaunchType(in.LaunchType, in.CapacityProviderStrategy, in.PlatformVersion, c); err != nil {
		return nil, err
	}
	spec, err := a.newTaskSpec(ctx, c.ClusterName, in.TaskDefinition, in.Overrides, in.Group, in.StartedBy, in.Tags, in.PropagateTags)
	if err != nil {
		return nil, err
	}
	// The task definition's memberOf constraints hold for every task of it;
	// the call's come on top.
	constraints, err := scheduler.ParseConstraints(spec.td.PlacementConstraints, in.PlacementConstraints)
	if err != nil {
		return nil, err
	}

	// A clientToken (the AWS SDKs and CLI always send one) makes the task
	// IDs a function of the request, so a retried RunTask finds the tasks
	// the first one placed (state.PlaceTasks refuses an ID twice) instead of
	// running them again.
	ids := make([]string, count)
	for i := range ids {
		ids[i] = ecs.NewID()
		if in.ClientToken != "" {
			ids[i] = tokenTaskID(c.ClusterName, in.ClientToken, i)
		}
	}
	var existing []*state.TaskRecord
	todo := ids
	if in.ClientToken != "" {
		found, err := a.store.FindTasks(ctx, c.ClusterName, ids)
		if err != nil {
			return nil, err
		}
		todo = nil
		for _, id := range ids {
			t, ok := found[id]
			switch {
			case !ok:
				todo = append(todo, id)
			case t.ClientToken != in.ClientToken || t.TaskDefinitionARN != spec.td.TaskDefinitionARN:
				return nil, ecs.InvalidParameter("clientToken %q was already used for a different RunTask request.", in.ClientToken)
			default:
				existing = append(existing, t)
			}
		}
	}
	spec.clientToken = in.ClientToken

	out := &ecs.RunTaskResponse{Tasks: []ecs.Task{}, Failures: []ecs.Failure{}}
	for _, t := range existing {
		out.Tasks = append(out.Tasks, taskView(t, true))
	}
	if len(todo) == 0 {
		return out, nil
	}
	task := &scheduler.Task{Demand: spec.demand, Constraints: constraints, Strategies: strategies,
		Rand: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
	placed, failures, err := a.place(ctx, spec, todo, usesRunningTasksCount(constraints), func(nodes []scheduler.Node, n int) (scheduler.Plan, error) {
		if len(nodes) == 0 {
			return scheduler.Plan{}, ecs.InvalidParameter("No Container Instances were found in your cluster.")
		}
		return scheduler.Place(nodes, task, n), nil
	})
	if err != nil && (len(placed) == 0 || !isAWSError(err)) {
		return nil, err
	}
	for _, t := range placed {
		out.Tasks = append(out.Tasks, taskView(t, true))
	}
	out.Failures = append(out.Failures, failures...)
	return out, nil
}

// startTask starts one task on each named instance, checked as RunTask
// checks an instance but without choosing one.
func (a *API) startTask(ctx context.Context, in *ecs.StartTaskRequest) (*ecs.StartTaskResponse, error) {
	if len(in.ContainerInstances) == 0 || len(in.ContainerInstances) > 10 {
		return nil, ecs.InvalidParameter("containerInstances must contain between 1 and 10 container instances.")
	}
	if err := unsupportedRunOptions(in.NetworkConfiguration, in.EnableExecuteCommand, in.EnableECSManagedTags, in.VolumeConfigurations); err != nil {
		return nil, err
	}
	c, err := a.activeCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	spec, err := a.newTaskSpec(ctx, c.ClusterName, in.TaskDefinition, in.Overrides, in.Group, in.StartedBy, in.Tags, in.PropagateTags)
	if err != nil {
		return nil, err
	}
	out := &ecs.StartTaskResponse{Tasks: []ecs.Task{}, Failures: []ecs.Failure{}}
	for _, ref := range in.ContainerInstances {
		id, ok := a.scope.ParseContainerInstanceRef(c.ClusterName, ref)
		want := a.scope.ContainerInstanceARN(c.ClusterName, id)
		if !ok {
			out.Failures = append(out.Failures, ecs.Failure{ARN: a.instanceFailureARN(c.ClusterName, ref), Reason: "MISSING"})
			continue
		}
		placed, failures, err := a.place(ctx, spec, []string{ecs.NewID()}, false, func(nodes []scheduler.Node, _ int) (scheduler.Plan, error) {
			for i := range nodes {
				if nodes[i].ARN != want {
					continue
				}
				if reason, ok := scheduler.Check(scheduler.DefaultFilters, &spec.demand, &nodes[i]); !ok {
					return scheduler.Plan{Failures: []scheduler.Failure{{ARN: want, Reason: reason}}}, nil
				}
				return scheduler.Plan{Placements: []int{i}}, nil
			}
			return scheduler.Plan{Failures: []scheduler.Failure{{ARN: want, Reason: "MISSING"}}}, nil
		})
		if err != nil {
			return nil, err
		}
		for _, t := range placed {
			out.Tasks = append(out.Tasks, taskView(t, true))
		}
		out.Failures = append(out.Failures, failures...)
	}
	return out, nil
}

// tokenTaskID derives the ID of the i-th task of a RunTask with a client
// token.
func tokenTaskID(cluster, token string, i int) string {
	sum := sha256.Sum256([]byte("gantry-run-task\x00" + cluster + "\x00" + token + "\x00" + strconv.Itoa(i)))
	return hex.EncodeToString(sum[:16])
}

// validateClientToken: "Up to 64 characters are allowed. The valid
// characters are characters in the range of 33-126, inclusive."
func validateClientToken(tok string) error {
	if len(tok) > 64 {
		return ecs.InvalidParameter("clientToken can be at most 64 characters long.")
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < 33 || tok[i] > 126 {
			return ecs.InvalidParameter("clientToken may only contain characters 33-126 (printable ASCII without spaces).")
		}
	}
	return nil
}

// unsupportedRunOptions refuses, rather than ignores, what Gantry cannot do
// yet.
func unsupportedRunOptions(network *ecs.NetworkConfiguration, exec, managedTags bool, volumes []ecs.TaskVolumeConfiguration) error {
	switch {
	case network != nil:
		return ecs.UnsupportedFeature("networkConfiguration (awsvpc) is not supported by Gantry yet.")
	case exec:
		return ecs.UnsupportedFeature("ECS Exec (enableExecuteCommand) is not supported by Gantry yet.")
	case managedTags:
		return ecs.UnsupportedFeature("Amazon ECS managed tags (enableECSManagedTags) are not supported by Gantry yet.")
	case len(volumes) > 0:
		return ecs.UnsupportedFeature("volumeConfigurations (Amazon EBS) are not supported by Gantry.")
	}
	return nil
}

// checkLaunchType: Gantry runs tasks on container instances, the EC2
// launch type.
func checkLaunchType(lt ecs.LaunchType, cps []ecs.CapacityProviderStrategyItem, platformVersion string, c *ecs.Cluster) error {
	switch {
	case len(cps) > 0 && lt != "":
		return ecs.InvalidParameter("Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.")
	case len(cps) > 0:
		return ecs.UnsupportedFeature("Capacity provider strategies are not supported by Gantry yet; use launchType EC2.")
	case lt == ecs.LaunchTypeFargate:
		return ecs.UnsupportedFeature("Gantry does not run FARGATE tasks yet; use launchType EC2 with container instances registered by gantry agent.")
	case lt != "" && lt != ecs.LaunchTypeEC2:
		return ecs.UnsupportedFeature("Gantry does not run %s tasks; use launchType EC2.", lt)
	case lt == "" && len(c.DefaultCapacityProviderStrategy) > 0:
		return ecs.UnsupportedFeature("The cluster's default capacity provider strategy would run this task on %s, which Gantry does not do yet; pass launchType EC2.", c.DefaultCapacityProviderStrategy[0].CapacityProvider)
	case platformVersion != "":
		return ecs.InvalidParameter("platformVersion is only supported for the FARGATE launch type.")
	}
	return nil
}

func isAWSError(err error) bool {
	var ae *awsproto.Error
	return errors.As(err, &ae)
}
