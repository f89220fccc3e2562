package ecsapi

import (
	"context"
	"errors"
	"slices"
	"strconv"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/state"
)

func (a *API) registerClusters() {
	a.handle("CreateCluster", op(a.createCluster))
	a.handle("DescribeClusters", op(a.describeClusters))
	a.handle("ListClusters", op(a.listClusters))
	a.handle("DeleteCluster", op(a.deleteCluster))
	a.handle("UpdateCluster", op(a.updateCluster))
	a.handle("UpdateClusterSettings", op(a.updateClusterSettings))
}

func (a *API) createCluster(ctx context.Context, in *ecs.CreateClusterRequest) (*ecs.CreateClusterResponse, error) {
	name := in.ClusterName
	if name == "" {
		name = ecs.DefaultClusterName
	}
	if err := ecs.ValidateClusterName(name); err != nil {
		return nil, err
	}
	if err := ecs.ValidateTags(in.Tags); err != nil {
		return nil, err
	}
	if err := ecs.ValidateClusterSettings(in.Settings); err != nil {
		return nil, err
	}
	if err := validateCapacityProviders(in.CapacityProviders, in.DefaultCapacityProviderStrategy); err != nil {
		return nil, err
	}
	if in.ServiceConnectDefaults != nil {
		return nil, ecs.UnsupportedFeature("Service Connect namespaces (serviceConnectDefaults) are not supported by Gantry yet.")
	}
	c := &ecs.Cluster{
		ClusterARN:                      a.scope.ClusterARN(name),
		ClusterName:                     name,
		Status:                          ecs.ClusterStatusActive,
		Settings:                        ecs.MergeClusterSettings([]ecs.ClusterSetting{{Name: ecs.ClusterSettingNameContainerInsights, Value: "disabled"}}, in.Settings),
		Configuration:                   in.Configuration,
		Tags:                            nonNil(in.Tags),
		CapacityProviders:               nonNil(in.CapacityProviders),
		DefaultCapacityProviderStrategy: nonNil(in.DefaultCapacityProviderStrategy),
	}
	stored, _, err := a.store.CreateCluster(ctx, c)
	if err != nil {
		return nil, err
	}
	out, err := a.clusterView(ctx, stored, allClusterFields)
	if err != nil {
		return nil, err
	}
	return &ecs.CreateClusterResponse{Cluster: out}, nil
}

// Gantry has no capacity provider API yet; ECS's two built-in providers are
// accepted and recorded so existing CreateCluster calls keep working.
func validateCapacityProviders(names []string, strategy []ecs.CapacityProviderStrategyItem) error {
	known := func(n string) bool { return n == "FARGATE" || n == "FARGATE_SPOT" }
	for _, n := range names {
		if !known(n) {
			return ecs.InvalidParameter("The specified capacity provider %s does not exist. Gantry supports FARGATE and FARGATE_SPOT.", n)
		}
	}
	for _, s := range strategy {
		if !slices.Contains(names, s.CapacityProvider) {
			return ecs.InvalidParameter("The specified capacity provider strategy cannot contain a capacity provider (%s) that is not associated with the cluster.", s.CapacityProvider)
		}
		if s.Weight < 0 || s.Weight > 1000 || s.Base < 0 || s.Base > 100000 {
			return ecs.InvalidParameter("capacity provider %s: weight must be 0-1000 and base 0-100000.", s.CapacityProvider)
		}
	}
	return nil
}

// clusterFields says which optional parts DescribeClusters includes.
type clusterFields struct{ settings, tags, statistics, configurations bool }

var allClusterFields = clusterFields{settings: true, tags: true, statistics: true, configurations: true}

func (a *API) describeClusters(ctx context.Context, in *ecs.DescribeClustersRequest) (*ecs.DescribeClustersResponse, error) {
	if len(in.Clusters) > 100 {
		return nil, ecs.InvalidParameter("clusters can have at most 100 items.")
	}
	var f clusterFields
	for _, inc := range in.Include {
		switch inc {
		case ecs.ClusterFieldSettings:
			f.settings = true
		case ecs.ClusterFieldTags:
			f.tags = true
		case ecs.ClusterFieldStatistics:
			f.statistics = true
		case ecs.ClusterFieldConfigurations:
			f.configurations = true
		}
	}
	refs := in.Clusters
	if len(refs) == 0 {
		refs = []string{ecs.DefaultClusterName}
	}
	var names []string
	for _, ref := range refs {
		if name, ok := a.scope.ClusterName(ref); ok {
			names = append(names, name)
		}
	}
	// One etcd read (per 25 clusters): the records and their counts.
	described, err := a.store.DescribeClusters(ctx, names)
	if err != nil {
		return nil, err
	}
	out := &ecs.DescribeClustersResponse{Clusters: []ecs.Cluster{}, Failures: []ecs.Failure{}}
	for _, ref := range refs {
		name, ok := a.scope.ClusterName(ref)
		var d state.DescribedCluster
		if ok {
			d, described = described[0], described[1:]
		}
		if d.Cluster == nil {
			out.Failures = append(out.Failures, ecs.Failure{ARN: a.failureARN(ref, name), Reason: "MISSING"})
			continue
		}
		out.Clusters = append(out.Clusters, *view(d.Cluster, d.Counts, f))
	}
	return out, nil
}

// failureARN is the arn a MISSING failure reports: the caller's ARN as given,
// or the ARN the name would have.
func (a *API) failureARN(ref, name string) string {
	if name == "" {
		return ref
	}
	return a.scope.ClusterARN(name)
}

// clusterView is a stored cluster as the API shows it: derived counts filled
// in, optional parts only when asked for.
func (a *API) clusterView(ctx context.Context, c *ecs.Cluster, f clusterFields) (*ecs.Cluster, error) {
	var n state.ClusterCounts
	if c.Status == ecs.ClusterStatusActive {
		var err error
		if n, err = a.store.CountCluster(ctx, c.ClusterName); err != nil {
			return nil, err
		}
	}
	return view(c, n, f), nil
}

// view is c as the API shows it with counts n (an ACTIVE cluster's).
func view(c *ecs.Cluster, n state.ClusterCounts, f clusterFields) *ecs.Cluster {
	v := *c
	if c.Status == ecs.ClusterStatusActive {
		v.RegisteredContainerInstancesCount = n.RegisteredContainerInstances
		v.ActiveServicesCount = n.ActiveServices
		v.RunningTasksCount = n.RunningTasks
		v.PendingTasksCount = n.PendingTasks
	}
	v.Statistics = nil
	if f.statistics {
		v.Statistics = clusterStatistics(v, n.DrainingServices)
	}
	if !f.settings {
		v.Settings = nil
	}
	if !f.tags {
		v.Tags = nil
	}
	if !f.configurations {
		v.Configuration = nil
	}
	v.CapacityProviders = nonNil(v.CapacityProviders)
	v.DefaultCapacityProviderStrategy = nonNil(v.DefaultCapacityProviderStrategy)
	return &v
}

// clusterStatistics are the STATISTICS ECS reports. Every task and service
// Gantry runs is of the EC2 launch type so far.
func clusterStatistics(c ecs.Cluster, draining int32) []ecs.KeyValuePair {
	kv := func(k string, n int32) ecs.KeyValuePair {
		return ecs.KeyValuePair{Name: k, Value: strconv.Itoa(int(n))}
	}
	return []ecs.KeyValuePair{
		kv("runningEC2TasksCount", c.RunningTasksCount),
		kv("runningFargateTasksCount", 0),
		kv("pendingEC2TasksCount", c.PendingTasksCount),
		kv("pendingFargateTasksCount", 0),
		kv("activeEC2ServiceCount", c.ActiveServicesCount),
		kv("activeFargateServiceCount", 0),
		kv("drainingEC2ServiceCount", draining),
		kv("drainingFargateServiceCount", 0),
	}
}

func (a *API) listClusters(ctx context.Context, in *ecs.ListClustersRequest) (*ecs.ListClustersResponse, error) {
	limit, err := pageSize(in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	after, err := decodeToken("ListClusters", in.NextToken)
	if err != nil {
		return nil, err
	}
	cs, next, err := a.store.ListClusters(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	out := &ecs.ListClustersResponse{ClusterARNs: []string{}, NextToken: encodeToken("ListClusters", next)}
	for _, c := range cs {
		out.ClusterARNs = append(out.ClusterARNs, c.ClusterARN)
	}
	return out, nil
}

func (a *API) deleteCluster(ctx context.Context, in *ecs.DeleteClusterRequest) (*ecs.DeleteClusterResponse, error) {
	name, ok := a.scope.ClusterName(in.Cluster)
	if !ok {
		return nil, ecs.ClusterNotFound()
	}
	c, err := a.store.DeleteCluster(ctx, name)
	switch {
	case errors.Is(err, state.ErrNotFound):
		return nil, ecs.ClusterNotFound()
	case errors.Is(err, state.ErrClusterHasInstances):
		return nil, ecs.Errorf(ecs.ErrCodeClusterContainsContainerInstancesException, "The Cluster cannot be deleted while Container Instances are active or draining.")
	case errors.Is(err, state.ErrClusterHasServices):
		return nil, ecs.Errorf(ecs.ErrCodeClusterContainsServicesException, "The Cluster cannot be deleted while Services are active.")
	case errors.Is(err, state.ErrClusterHasTasks):
		return nil, ecs.Errorf(ecs.ErrCodeClusterContainsTasksException, "The Cluster cannot be deleted while Tasks are active.")
	case err != nil:
		return nil, err
	}
	view, err := a.clusterView(ctx, c, allClusterFields)
	if err != nil {
		return nil, err
	}
	return &ecs.DeleteClusterResponse{Cluster: view}, nil
}

func (a *API) updateCluster(ctx context.Context, in *ecs.UpdateClusterRequest) (*ecs.UpdateClusterResponse, error) {
	if err := ecs.ValidateClusterSettings(in.Settings); err != nil {
		return nil, err
	}
	if in.ServiceConnectDefaults != nil {
		return nil, ecs.UnsupportedFeature("Service Connect namespaces (serviceConnectDefaults) are not supported by Gantry yet.")
	}
	c, err := a.mutateCluster(ctx, in.Cluster, func(c *ecs.Cluster) error {
		c.Settings = ecs.MergeClusterSettings(c.Settings, in.Settings)
		if in.Configuration != nil {
			c.Configuration = in.Configuration
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecs.UpdateClusterResponse{Cluster: c}, nil
}

func (a *API) updateClusterSettings(ctx context.Context, in *ecs.UpdateClusterSettingsRequest) (*ecs.UpdateClusterSettingsResponse, error) {
	if err := ecs.ValidateClusterSettings(in.Settings); err != nil {
		return nil, err
	}
	c, err := a.mutateCluster(ctx, in.Cluster, func(c *ecs.Cluster) error {
		c.Settings = ecs.MergeClusterSettings(c.Settings, in.Settings)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecs.UpdateClusterSettingsResponse{Cluster: c}, nil
}

// mutateCluster applies fn to the ACTIVE cluster ref and returns its full view.
func (a *API) mutateCluster(ctx context.Context, ref string, fn func(*ecs.Cluster) error) (*ecs.Cluster, error) {
	name, ok := a.scope.ClusterName(ref)
	if !ok {
		return nil, ecs.ClusterNotFound()
	}
	c, err := a.store.UpdateCluster(ctx, name, fn)
	if errors.Is(err, state.ErrNotFound) {
		return nil, ecs.ClusterNotFound()
	}
	if err != nil {
		return nil, err
	}
	return a.clusterView(ctx, c, allClusterFields)
}

// nonNil turns a nil slice into an empty one, so it is sent as [] as ECS does.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
