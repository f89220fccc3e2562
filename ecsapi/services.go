package ecsapi

import (
	"context"
	"errors"
	"slices"

	"github.com/gantry-dev/gantry/controller"
	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/awsproto"
	"github.com/gantry-dev/gantry/scheduler"
	"github.com/gantry-dev/gantry/state"
)

// Services: the API writes a service's spec and, when a new deployment is
// asked for, its new PRIMARY deployment (so UpdateService's answer already
// shows it); the service controller (package controller) does the rest:
// it starts and stops tasks, completes, fails and removes deployments and
// writes the events. See docs/services.md.

func (a *API) registerServices() {
	a.handle("CreateService", op(a.createService))
	a.handle("UpdateService", op(a.updateService))
	a.handle("DeleteService", op(a.deleteService))
	a.handle("DescribeServices", op(a.describeServices))
	a.handle("ListServices", op(a.listServices))
}

func errServiceNotFound() error {
	return ecs.Errorf(ecs.ErrCodeServiceNotFoundException, "Service not found.")
}

func errServiceNotActive() error {
	return ecs.Errorf(ecs.ErrCodeServiceNotActiveException, "Service was not ACTIVE.")
}

func (a *API) createService(ctx context.Context, in *ecs.CreateServiceRequest) (*ecs.CreateServiceResponse, error) {
	if err := ecs.ValidateServiceName(in.ServiceName); err != nil {
		return nil, err
	}
	if err := unsupportedServiceOptions(in.LoadBalancers, in.ServiceRegistries, in.NetworkConfiguration, in.ServiceConnectConfiguration,
		in.VolumeConfigurations, in.VPCLatticeConfigurations, in.EnableExecuteCommand, in.EnableECSManagedTags); err != nil {
		return nil, err
	}
	if err := checkDeploymentController(in.DeploymentController); err != nil {
		return nil, err
	}
	if len(in.ClientToken) > 36 {
		return nil, ecs.InvalidParameter("clientToken can be at most 36 characters long.")
	}
	strategy := in.SchedulingStrategy
	if strategy == "" {
		strategy = ecs.SchedulingStrategyReplica
	}
	var desired int32
	switch {
	case strategy == ecs.SchedulingStrategyDaemon && in.DesiredCount != nil:
		return nil, ecs.InvalidParameter("The daemon scheduling strategy does not support a desired count for services.")
	case strategy == ecs.SchedulingStrategyDaemon && len(in.PlacementStrategy) > 0:
		return nil, ecs.InvalidParameter("Placement strategies are not supported with the DAEMON scheduling strategy.")
	case strategy == ecs.SchedulingStrategyReplica && in.DesiredCount == nil:
		return nil, ecs.InvalidParameter("desiredCount is required for a service with the REPLICA scheduling strategy.")
	case in.DesiredCount != nil:
		if desired = *in.DesiredCount; desired < 0 {
			return nil, ecs.InvalidParameter("desiredCount must be at least 0.")
		}
	}
	if err := validateGracePeriod(in.HealthCheckGracePeriodSeconds); err != nil {
		return nil, err
	}
	if err := ecs.ValidateTags(in.Tags); err != nil {
		return nil, err
	}
	if in.TaskDefinition == "" {
		return nil, ecs.InvalidParameter("taskDefinition is required for a service with the ECS deployment controller.")
	}
	if _, err := scheduler.ParseStrategies(in.PlacementStrategy); err != nil {
		return nil, err
	}
	dc, err := ecs.ResolveDeploymentConfiguration(strategy, in.DeploymentConfiguration, nil)
	if err != nil {
		return nil, err
	}
	c, err := a.activeCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	if err := checkLaunchType(in.LaunchType, in.CapacityProviderStrategy, in.PlatformVersion, c); err != nil {
		return nil, err
	}
	td, err := a.runnableTaskDefinition(ctx, in.TaskDefinition)
	if err != nil {
		return nil, err
	}
	if _, err := scheduler.ParseConstraints(td.PlacementConstraints, in.PlacementConstraints); err != nil {
		return nil, err
	}
	propagate := in.PropagateTags
	if propagate == "" {
		propagate = ecs.PropagateTagsNone
	}
	at := awsproto.Timestamp{Time: now()}
	rec := &state.ServiceRecord{
		Service: ecs.Service{
			ServiceARN:                    a.scope.ServiceARN(c.ClusterName, in.ServiceName),
			ServiceName:                   in.ServiceName,
			ClusterARN:                    c.ClusterARN,
			Status:                        ecs.ServiceStatusActive,
			DesiredCount:                  desired,
			LaunchType:                    ecs.LaunchTypeEC2,
			TaskDefinition:                td.TaskDefinitionARN,
			DeploymentConfiguration:       dc,
			Deployments:                   []ecs.Deployment{newDeployment(td.TaskDefinitionARN, desired, at)},
			RoleARN:                       in.Role,
			Events:                        []ecs.ServiceEvent{},
			CreatedAt:                     at,
			PlacementConstraints:          nonNil(in.PlacementConstraints),
			PlacementStrategy:             nonNil(in.PlacementStrategy),
			HealthCheckGracePeriodSeconds: in.HealthCheckGracePeriodSeconds,
			SchedulingStrategy:            strategy,
			DeploymentController:          &ecs.DeploymentController{Type: ecs.DeploymentControllerTypeECS},
			Tags:                          nonNil(in.Tags),
			PropagateTags:                 propagate,
			AvailabilityZoneRebalancing:   in.AvailabilityZoneRebalancing,
		},
		ClientToken: in.ClientToken,
	}
	stored, err := a.store.CreateService(ctx, rec)
	switch {
	case errors.Is(err, state.ErrClusterNotActive):
		return nil, ecs.ClusterNotFound()
	case errors.Is(err, state.ErrServiceExists) && stored.Status == ecs.ServiceStatusDraining:
		return nil, ecs.InvalidParameter("Unable to Start a service that is still Draining.")
	case errors.Is(err, state.ErrServiceExists) && (in.ClientToken == "" || stored.ClientToken != in.ClientToken):
		return nil, ecs.InvalidParameter("Creation of service was not idempotent.")
	case errors.Is(err, state.ErrServiceExists):
		// The same clientToken: a retry of the request that created it.
	case err != nil:
		return nil, err
	}
	v, err := a.serviceViews(ctx, c.ClusterName, []*state.ServiceRecord{stored}, true)
	if err != nil {
		return nil, err
	}
	return &ecs.CreateServiceResponse{Service: &v[0]}, nil
}

// newDeployment is a new PRIMARY deployment, IN_PROGRESS.
func newDeployment(taskDefinition string, desired int32, at awsproto.Timestamp) ecs.Deployment {
	id := ecs.NewDeploymentID()
	return ecs.Deployment{
		ID:                 id,
		Status:             ecs.DeploymentStatusPrimary,
		TaskDefinition:     taskDefinition,
		DesiredCount:       desired,
		CreatedAt:          at,
		UpdatedAt:          at,
		LaunchType:         ecs.LaunchTypeEC2,
		RolloutState:       ecs.DeploymentRolloutStateInProgress,
		RolloutStateReason: ecs.DeploymentInProgressReason(id),
	}
}

// updateService applies ECS's rules: desiredCount, deploymentConfiguration,
// the health check grace period and tag propagation change the service in
// place; a new task definition, a placement change or forceNewDeployment
// start a new deployment, which the answer already shows as PRIMARY.
func (a *API) updateService(ctx context.Context, in *ecs.UpdateServiceRequest) (*ecs.UpdateServiceResponse, error) {
	if err := unsupportedServiceOptions(in.LoadBalancers, in.ServiceRegistries, in.NetworkConfiguration, in.ServiceConnectConfiguration,
		in.VolumeConfigurations, in.VPCLatticeConfigurations, in.EnableExecuteCommand != nil && *in.EnableExecuteCommand,
		in.EnableECSManagedTags != nil && *in.EnableECSManagedTags); err != nil {
		return nil, err
	}
	if err := checkDeploymentController(in.DeploymentController); err != nil {
		return nil, err
	}
	switch {
	case len(in.CapacityProviderStrategy) > 0:
		return nil, ecs.UnsupportedFeature("Capacity provider strategies are not supported by Gantry yet.")
	case in.PlatformVersion != "":
		return nil, ecs.InvalidParameter("platformVersion is only supported for the FARGATE launch type.")
	case in.DesiredCount != nil && *in.DesiredCount < 0:
		return nil, ecs.InvalidParameter("desiredCount must be at least 0.")
	}
	if err := validateGracePeriod(in.HealthCheckGracePeriodSeconds); err != nil {
		return nil, err
	}
	if _, err := scheduler.ParseStrategies(in.PlacementStrategy); err != nil {
		return nil, err
	}
	c, err := a.activeCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	name, ok := a.scope.ParseServiceRef(c.ClusterName, in.Service)
	if !ok {
		return nil, errServiceNotFound()
	}
	cur, rev, err := a.store.GetService(ctx, c.ClusterName, name)
	switch {
	case errors.Is(err, state.ErrNotFound):
		return nil, errServiceNotFound()
	case err != nil:
		return nil, err
	case rev == 0 || cur.Status != ecs.ServiceStatusActive:
		return nil, errServiceNotActive()
	case cur.SchedulingStrategy == ecs.SchedulingStrategyDaemon && in.DesiredCount != nil:
		return nil, ecs.InvalidParameter("The daemon scheduling strategy does not support a desired count for services.")
	case cur.SchedulingStrategy == ecs.SchedulingStrategyDaemon && len(in.PlacementStrategy) > 0:
		return nil, ecs.InvalidParameter("Placement strategies are not supported with the DAEMON scheduling strategy.")
	}
	// A new task definition must be ACTIVE; naming the one the service
	// runs is no change, even if it was deregistered since.
	var td *ecs.TaskDefinitionRecord
	if in.TaskDefinition != "" {
		if td, err = a.serviceTaskDefinition(ctx, in.TaskDefinition, cur.TaskDefinition); err != nil {
			return nil, err
		}
	}
	tdConstraints := []ecs.TaskDefinitionPlacementConstraint(nil)
	if td != nil {
		tdConstraints = td.PlacementConstraints
	}
	if _, err := scheduler.ParseConstraints(tdConstraints, in.PlacementConstraints); err != nil {
		return nil, err
	}
	if _, err := ecs.ResolveDeploymentConfiguration(cur.SchedulingStrategy, in.DeploymentConfiguration, cur.DeploymentConfiguration); err != nil {
		return nil, err
	}
	at := awsproto.Timestamp{Time: now()}
	rec, err := a.store.UpdateService(ctx, c.ClusterName, name, func(r *state.ServiceRecord) error {
		if r.Status != ecs.ServiceStatusActive {
			return errServiceNotActive()
		}
		deploy := in.ForceNewDeployment
		if in.DesiredCount != nil {
			r.DesiredCount = *in.DesiredCount
			r.Deployments[0].DesiredCount = *in.DesiredCount
			r.Controller.Steady = false
		}
		if td != nil && td.TaskDefinitionARN != r.TaskDefinition {
			r.TaskDefinition = td.TaskDefinitionARN
			deploy = true
		}
		if in.PlacementConstraints != nil && !slices.Equal(in.PlacementConstraints, r.PlacementConstraints) {
			r.PlacementConstraints = in.PlacementConstraints
			deploy = true
		}
		if in.PlacementStrategy != nil && !slices.Equal(in.PlacementStrategy, r.PlacementStrategy) {
			r.PlacementStrategy = in.PlacementStrategy
			deploy = true
		}
		dc, err := ecs.ResolveDeploymentConfiguration(r.SchedulingStrategy, in.DeploymentConfiguration, r.DeploymentConfiguration)
		if err != nil {
			return err
		}
		r.DeploymentConfiguration = dc
		if in.HealthCheckGracePeriodSeconds != nil {
			r.HealthCheckGracePeriodSeconds = in.HealthCheckGracePeriodSeconds
		}
		if in.PropagateTags != "" {
			r.PropagateTags = in.PropagateTags
		}
		if in.AvailabilityZoneRebalancing != "" {
			r.AvailabilityZoneRebalancing = in.AvailabilityZoneRebalancing
		}
		if deploy {
			for i := range r.Deployments {
				r.Deployments[i].Status = ecs.DeploymentStatusActive
			}
			r.Deployments = append([]ecs.Deployment{newDeployment(r.TaskDefinition, r.DesiredCount, at)}, r.Deployments...)
			r.Controller.Steady = false
			controller.ResetCrashLoop(r)
		}
		return nil
	})
	if errors.Is(err, state.ErrNotFound) {
		return nil, errServiceNotActive()
	}
	if err != nil {
		return nil, err
	}
	v, err := a.serviceViews(ctx, c.ClusterName, []*state.ServiceRecord{rec}, true)
	if err != nil {
		return nil, err
	}
	return &ecs.UpdateServiceResponse{Service: &v[0]}, nil
}

// serviceTaskDefinition resolves UpdateService's taskDefinition: current
// (the service's ARN) as it is whatever its status, anything else as
// RunTask resolves it.
func (a *API) serviceTaskDefinition(ctx context.Context, ref, current string) (*ecs.TaskDefinitionRecord, error) {
	if r, err := a.scope.ParseTaskDefinitionRef(ref); err == nil && r.Revision != 0 {
		if a.scope.TaskDefinitionARN(r.Family, r.Revision) == current {
			return a.store.GetTaskDefinition(ctx, r.Family, r.Revision)
		}
	}
	return a.runnableTaskDefinition(ctx, ref)
}

// deleteService moves the service to DRAINING with no desired tasks; the
// controller stops its tasks and moves it to INACTIVE once they are
// stopping or stopped.
func (a *API) deleteService(ctx context.Context, in *ecs.DeleteServiceRequest) (*ecs.DeleteServiceResponse, error) {
	c, err := a.activeCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	name, ok := a.scope.ParseServiceRef(c.ClusterName, in.Service)
	if !ok {
		return nil, errServiceNotFound()
	}
	force := in.Force != nil && *in.Force
	rec, err := a.store.UpdateService(ctx, c.ClusterName, name, func(r *state.ServiceRecord) error {
		if r.Status != ecs.ServiceStatusActive {
			return nil // already DRAINING: deleting again changes nothing
		}
		if r.SchedulingStrategy != ecs.SchedulingStrategyDaemon && r.DesiredCount > 0 && !force {
			return ecs.InvalidParameter("The service cannot be stopped while it is scaled above 0.")
		}
		r.Status = ecs.ServiceStatusDraining
		r.DesiredCount = 0
		r.Deployments[0].DesiredCount = 0
		r.Controller.Steady = false
		return nil
	})
	if errors.Is(err, state.ErrNotFound) {
		return nil, errServiceNotFound()
	}
	if err != nil {
		return nil, err
	}
	v, err := a.serviceViews(ctx, c.ClusterName, []*state.ServiceRecord{rec}, true)
	if err != nil {
		return nil, err
	}
	return &ecs.DeleteServiceResponse{Service: &v[0]}, nil
}

func (a *API) describeServices(ctx context.Context, in *ecs.DescribeServicesRequest) (*ecs.DescribeServicesResponse, error) {
	if len(in.Services) == 0 || len(in.Services) > 10 {
		return nil, ecs.InvalidParameter("services must contain between 1 and 10 services.")
	}
	cluster, err := a.anyCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	tags := slices.Contains(in.Include, ecs.ServiceFieldTags)
	out := &ecs.DescribeServicesResponse{Services: []ecs.Service{}, Failures: []ecs.Failure{}}
	var recs []*state.ServiceRecord
	for _, ref := range in.Services {
		name, ok := a.scope.ParseServiceRef(cluster, ref)
		var rec *state.ServiceRecord
		if ok {
			rec, _, err = a.store.GetService(ctx, cluster, name)
		}
		if !ok || errors.Is(err, state.ErrNotFound) {
			arn := ref
			if ok {
				arn = a.scope.ServiceARN(cluster, name)
			}
			out.Failures = append(out.Failures, ecs.Failure{ARN: arn, Reason: "MISSING"})
			continue
		}
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	views, err := a.serviceViews(ctx, cluster, recs, tags)
	if err != nil {
		return nil, err
	}
	out.Services = append(out.Services, views...)
	return out, nil
}

func (a *API) listServices(ctx context.Context, in *ecs.ListServicesRequest) (*ecs.ListServicesResponse, error) {
	limit, err := pageSize(in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	if in.MaxResults == nil {
		limit = 10 // ListServices' default page
	}
	after, err := decodeToken("ListServices", in.NextToken)
	if err != nil {
		return nil, err
	}
	c, err := a.activeCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	out := &ecs.ListServicesResponse{ServiceARNs: []string{}}
	if in.LaunchType != "" && in.LaunchType != ecs.LaunchTypeEC2 {
		return out, nil // every Gantry service runs EC2 tasks
	}
	recs, next, err := a.store.ListServices(ctx, c.ClusterName, after, limit, func(r *state.ServiceRecord) bool {
		return r.Status == ecs.ServiceStatusActive && (in.SchedulingStrategy == "" || r.SchedulingStrategy == in.SchedulingStrategy)
	})
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		out.ServiceARNs = append(out.ServiceARNs, r.ServiceARN)
	}
	out.NextToken = encodeToken("ListServices", next)
	return out, nil
}

// unsupportedServiceOptions refuses, rather than ignores, what Gantry's
// services cannot do yet.
func unsupportedServiceOptions(lbs []ecs.LoadBalancer, registries []ecs.ServiceRegistry, network *ecs.NetworkConfiguration,
	connect *ecs.ServiceConnectConfiguration, volumes []ecs.ServiceVolumeConfiguration, lattice []ecs.VpcLatticeConfiguration, exec, managedTags bool) error {
	switch {
	case len(lbs) > 0:
		return ecs.UnsupportedFeature("Load balancers are not supported by Gantry yet.")
	case len(registries) > 0:
		return ecs.UnsupportedFeature("Service discovery (serviceRegistries) is not supported by Gantry.")
	case network != nil:
		return ecs.UnsupportedFeature("networkConfiguration (awsvpc) is not supported by Gantry yet.")
	case connect != nil && connect.Enabled:
		return ecs.UnsupportedFeature("Service Connect is not supported by Gantry.")
	case len(volumes) > 0:
		return ecs.UnsupportedFeature("volumeConfigurations (Amazon EBS) are not supported by Gantry.")
	case len(lattice) > 0:
		return ecs.UnsupportedFeature("VPC Lattice is not supported by Gantry.")
	case exec:
		return ecs.UnsupportedFeature("ECS Exec (enableExecuteCommand) is not supported by Gantry yet.")
	case managedTags:
		return ecs.UnsupportedFeature("Amazon ECS managed tags (enableECSManagedTags) are not supported by Gantry yet.")
	}
	return nil
}

func checkDeploymentController(dc *ecs.DeploymentController) error {
	if dc != nil && dc.Type != "" && dc.Type != ecs.DeploymentControllerTypeECS {
		return ecs.UnsupportedFeature("Gantry supports the ECS (rolling update) deployment controller only, not %s.", dc.Type)
	}
	return nil
}

func validateGracePeriod(p *int32) error {
	if p != nil && *p < 0 {
		return ecs.InvalidParameter("healthCheckGracePeriodSeconds must be at least 0.")
	}
	return nil
}

// serviceTagger tags services, addressed as service/<cluster>/<name>.
func (a *API) serviceTagger() tagger {
	parse := func(resource string) (cluster, name string, err error) {
		cluster, name, ok := cutTwo(resource)
		if !ok {
			return "", "", ecs.InvalidParameter("The ARN provided is invalid: a service ARN ends in service/<cluster>/<name>.")
		}
		return cluster, name, nil
	}
	return tagger{
		get: func(ctx context.Context, resource string) ([]ecs.Tag, error) {
			cluster, name, err := parse(resource)
			if err != nil {
				return nil, err
			}
			r, _, err := a.store.GetService(ctx, cluster, name)
			if err != nil {
				return nil, err
			}
			return r.Tags, nil
		},
		update: func(ctx context.Context, resource string, fn func([]ecs.Tag) []ecs.Tag) error {
			cluster, name, err := parse(resource)
			if err != nil {
				return err
			}
			_, err = a.store.UpdateService(ctx, cluster, name, func(r *state.ServiceRecord) error {
				r.Tags = fn(r.Tags)
				return ecs.ValidateTags(r.Tags)
			})
			return err
		},
	}
}

func cutTwo(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:], i > 0 && i < len(s)-1
		}
	}
	return "", "", false
}
