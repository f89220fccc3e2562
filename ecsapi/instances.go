package ecsapi

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/awsproto"
	"github.com/gantry-dev/gantry/scheduler"
	"github.com/gantry-dev/gantry/scheduler/query"
	"github.com/gantry-dev/gantry/state"
)

func (a *API) registerInstances() {
	a.handle("RegisterContainerInstance", op(a.registerContainerInstance))
	a.handle("DeregisterContainerInstance", op(a.deregisterContainerInstance))
	a.handle("DescribeContainerInstances", op(a.describeContainerInstances))
	a.handle("ListContainerInstances", op(a.listContainerInstances))
	a.handle("UpdateContainerInstancesState", op(a.updateContainerInstancesState))
}

// activeCluster resolves a cluster reference to an ACTIVE cluster, or
// ECS's ClusterNotFoundException.
func (a *API) activeCluster(ctx context.Context, ref string) (*ecs.Cluster, error) {
	name, ok := a.scope.ClusterName(ref)
	if !ok {
		return nil, ecs.ClusterNotFound()
	}
	c, err := a.store.ActiveCluster(ctx, name)
	if errors.Is(err, state.ErrNotFound) {
		return nil, ecs.ClusterNotFound()
	}
	return c, err
}

// anyCluster resolves a cluster reference to a cluster that is ACTIVE or
// recently deleted, for reads of what it held.
func (a *API) anyCluster(ctx context.Context, ref string) (string, error) {
	name, ok := a.scope.ClusterName(ref)
	if !ok {
		return "", ecs.ClusterNotFound()
	}
	if _, err := a.store.GetCluster(ctx, name); errors.Is(err, state.ErrNotFound) {
		return "", ecs.ClusterNotFound()
	} else if err != nil {
		return "", err
	}
	return name, nil
}

func errInstanceNotFound() error {
	return ecs.InvalidParameter("The referenced container instance was not found.")
}

// instanceFailureARN is the ARN a MISSING failure names: the reference as
// given when it is an ARN, else the ARN the ID would have.
func (a *API) instanceFailureARN(cluster, ref string) string {
	if ecs.ValidID(ref) {
		return a.scope.ContainerInstanceARN(cluster, ref)
	}
	return ref
}

// instanceViews shows instances as DescribeContainerInstances does, tags
// only when asked for.
func (a *API) instanceViews(ctx context.Context, cluster string, recs []*state.InstanceRecord, tags bool) ([]ecs.ContainerInstance, error) {
	connected, err := a.store.Connected(ctx, cluster)
	if err != nil {
		return nil, err
	}
	counts, _, err := a.store.CountTasks(ctx, cluster)
	if err != nil {
		return nil, err
	}
	out := make([]ecs.ContainerInstance, 0, len(recs))
	for _, r := range recs {
		v := r.View(connected[r.ID()], counts[r.ID()])
		v.Tags = nil
		if tags {
			v.Tags = nonNil(r.Tags)
		}
		out = append(out, *v)
	}
	return out, nil
}

// withPlatformGPUs is the registered resources with the GPUs listed as
// platformDevices (the only type ECS has) as the GPU resource the scheduler
// assigns, unless totalResources lists the GPUs itself.
func withPlatformGPUs(rs []ecs.Resource, devices []ecs.PlatformDevice) []ecs.Resource {
	if len(devices) == 0 || slices.ContainsFunc(rs, func(r ecs.Resource) bool { return r.Name == ecs.ResourceGPU }) {
		return rs
	}
	gpu := ecs.Resource{Name: ecs.ResourceGPU, Type: ecs.ResourceTypeStringSet, StringSetValue: []string{}}
	for _, d := range devices {
		gpu.StringSetValue = append(gpu.StringSetValue, d.ID)
	}
	return append(slices.Clone(rs), gpu)
}

// registerContainerInstance is ECS's RegisterContainerInstance, which the
// ECS agent calls; Gantry's agents register through the agent protocol,
// which also issues them the token they need. Instances registered here
// have no agent: they show agentConnected false and take no tasks until
// one registers for them.
func (a *API) registerContainerInstance(ctx context.Context, in *ecs.RegisterContainerInstanceRequest) (*ecs.RegisterContainerInstanceResponse, error) {
	c, err := a.activeCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	if err := ecs.ValidateTags(in.Tags); err != nil {
		return nil, err
	}
	in.TotalResources = withPlatformGPUs(in.TotalResources, in.PlatformDevices)
	if err := ecs.ValidateResources(in.TotalResources); err != nil {
		return nil, err
	}
	for _, at := range in.Attributes {
		if err := ecs.ValidateAttribute(at); err != nil {
			return nil, err
		}
	}
	doc := identityDocument(in.InstanceIdentityDocument)
	attrs := ecs.MergeAttributes(nil, in.Attributes)
	if _, ok := ecs.AttributeValue(attrs, ecs.AttributeAvailabilityZone); !ok && doc.AvailabilityZone != "" {
		attrs = append(attrs, ecs.Attribute{Name: ecs.AttributeAvailabilityZone, Value: doc.AvailabilityZone})
	}
	if in.ContainerInstanceARN != "" {
		id, ok := a.scope.ParseContainerInstanceRef(c.ClusterName, in.ContainerInstanceARN)
		if !ok {
			return nil, errInstanceNotFound()
		}
		rec, err := a.store.UpdateInstance(ctx, c.ClusterName, id, func(r *state.InstanceRecord) error {
			r.RegisteredResources = in.TotalResources
			r.Attributes = ecs.MergeAttributes(r.Attributes, attrs)
			r.VersionInfo = in.VersionInfo
			r.Tags = ecs.MergeTags(r.Tags, in.Tags)
			return ecs.ValidateTags(r.Tags)
		})
		if errors.Is(err, state.ErrNotFound) {
			return nil, errInstanceNotFound()
		}
		if err != nil {
			return nil, err
		}
		return a.registeredInstance(ctx, rec)
	}
	id := ecs.NewID()
	ec2ID := doc.InstanceID
	if ec2ID == "" {
		ec2ID = ecs.EC2InstanceID(id)
	}
	rec := &state.InstanceRecord{ContainerInstance: ecs.ContainerInstance{
		ContainerInstanceARN: a.scope.ContainerInstanceARN(c.ClusterName, id),
		EC2InstanceID:        ec2ID,
		Version:              1,
		VersionInfo:          in.VersionInfo,
		RegisteredResources:  in.TotalResources,
		Status:               ecs.InstanceStatusActive,
		Attributes:           attrs,
		RegisteredAt:         awsproto.Timestamp{Time: now()},
		Tags:                 in.Tags,
	}}
	if err := a.store.CreateInstance(ctx, rec, 0); errors.Is(err, state.ErrClusterNotActive) {
		return nil, ecs.ClusterNotFound()
	} else if err != nil {
		return nil, err
	}
	return a.registeredInstance(ctx, rec)
}

func (a *API) registeredInstance(ctx context.Context, rec *state.InstanceRecord) (*ecs.RegisterContainerInstanceResponse, error) {
	views, err := a.instanceViews(ctx, rec.Cluster(), []*state.InstanceRecord{rec}, true)
	if err != nil {
		return nil, err
	}
	return &ecs.RegisterContainerInstanceResponse{ContainerInstance: &views[0]}, nil
}

// identityDocument reads the instance ID and Availability Zone from an
// EC2 instance identity document, when one is given; its signature is not
// checked (Gantry runs no EC2).
func identityDocument(doc string) (out struct {
	InstanceID       string `json:"instanceId"`
	AvailabilityZone string `json:"availabilityZone"`
}) {
	json.Unmarshal([]byte(doc), &out)
	return out
}

func (a *API) deregisterContainerInstance(ctx context.Context, in *ecs.DeregisterContainerInstanceRequest) (*ecs.DeregisterContainerInstanceResponse, error) {
	c, err := a.activeCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	id, ok := a.scope.ParseContainerInstanceRef(c.ClusterName, in.ContainerInstance)
	if !ok {
		return nil, errInstanceNotFound()
	}
	at := now()
	rec, err := a.store.DeregisterInstance(ctx, c.ClusterName, id, in.Force != nil && *in.Force, at, func(t *ecs.Task) {
		// ECS: with force, "it will move all containers on it to stopped".
		t.RequestStop(ecs.TaskStopCodeUserInitiated, ecs.StoppedReasonInstanceDeregistered, at)
		t.ApplyStateChange(&ecs.SubmitTaskStateChangeRequest{Status: ecs.TaskStatusStopped}, "", at)
	})
	switch {
	case errors.Is(err, state.ErrNotFound):
		// Deregistering again answers with the INACTIVE instance.
		old, _, gerr := a.store.GetInstance(ctx, c.ClusterName, id)
		if gerr != nil {
			return nil, errInstanceNotFound()
		}
		rec = old
	case errors.Is(err, state.ErrInstanceHasTasks):
		return nil, ecs.InvalidParameter("Found running tasks on the instance. Stop them first, or deregister with force, which marks them STOPPED.")
	case err != nil:
		return nil, err
	}
	views, err := a.instanceViews(ctx, c.ClusterName, []*state.InstanceRecord{rec}, true)
	if err != nil {
		return nil, err
	}
	return &ecs.DeregisterContainerInstanceResponse{ContainerInstance: &views[0]}, nil
}

func (a *API) describeContainerInstances(ctx context.Context, in *ecs.DescribeContainerInstancesRequest) (*ecs.DescribeContainerInstancesResponse, error) {
	if len(in.ContainerInstances) == 0 || len(in.ContainerInstances) > 100 {
		return nil, ecs.InvalidParameter("containerInstances must contain between 1 and 100 container instances.")
	}
	cluster, err := a.anyCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	tags := false
	for _, f := range in.Include {
		tags = tags || f == ecs.ContainerInstanceFieldTags
	}
	out := &ecs.DescribeContainerInstancesResponse{ContainerInstances: []ecs.ContainerInstance{}, Failures: []ecs.Failure{}}
	var recs []*state.InstanceRecord
	for _, ref := range in.ContainerInstances {
		id, ok := a.scope.ParseContainerInstanceRef(cluster, ref)
		var rec *state.InstanceRecord
		if ok {
			rec, _, err = a.store.GetInstance(ctx, cluster, id)
		}
		if !ok || errors.Is(err, state.ErrNotFound) {
			out.Failures = append(out.Failures, ecs.Failure{ARN: a.instanceFailureARN(cluster, ref), Reason: "MISSING"})
			continue
		}
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	views, err := a.instanceViews(ctx, cluster, recs, tags)
	if err != nil {
		return nil, err
	}
	out.ContainerInstances = append(out.ContainerInstances, views...)
	return out, nil
}

func (a *API) listContainerInstances(ctx context.Context, in *ecs.ListContainerInstancesRequest) (*ecs.ListContainerInstancesResponse, error) {
	limit, err := pageSize(in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	after, err := decodeToken("ListContainerInstances", in.NextToken)
	if err != nil {
		return nil, err
	}
	var filter *query.Expr
	if in.Filter != "" {
		if filter, err = scheduler.ParseExpression(in.Filter, "filter"); err != nil {
			return nil, err
		}
	}
	c, err := a.activeCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	// "If you don't specify this parameter, the default is to include
	// container instances set to all states other than INACTIVE", which
	// are exactly the registered ones.
	match, err := a.instanceFilter(ctx, c.ClusterName, filter)
	if err != nil {
		return nil, err
	}
	keep := func(r *state.InstanceRecord) bool {
		return (in.Status == "" || r.Status == string(in.Status)) && match(r)
	}
	recs, next, err := a.store.ListInstances(ctx, c.ClusterName, after, limit, keep)
	if err != nil {
		return nil, err
	}
	out := &ecs.ListContainerInstancesResponse{ContainerInstanceARNs: []string{}, NextToken: encodeToken("ListContainerInstances", next)}
	for _, r := range recs {
		out.ContainerInstanceARNs = append(out.ContainerInstanceARNs, r.ContainerInstanceARN)
	}
	return out, nil
}

// instanceFilter returns a test of instances against a cluster query
// language expression (everything passes a nil one). It reads the
// cluster's connection states once, and the task counts only when the
// expression looks at runningTasksCount.
func (a *API) instanceFilter(ctx context.Context, cluster string, e *query.Expr) (func(*state.InstanceRecord) bool, error) {
	if e == nil {
		return func(*state.InstanceRecord) bool { return true }, nil
	}
	connected, err := a.store.Connected(ctx, cluster)
	if err != nil {
		return nil, err
	}
	var counts map[string]state.TaskCounts
	if e.Uses(query.SubjectRunningTasksCount) {
		if counts, _, err = a.store.CountTasks(ctx, cluster); err != nil {
			return nil, err
		}
	}
	return func(r *state.InstanceRecord) bool {
		n := scheduler.NewNode(&r.ContainerInstance, connected[r.ID()], r.HeldTasks())
		if counts != nil {
			n.RunningTasks = int(counts[r.ID()].DesiredRunning)
		}
		return n.Matches(e)
	}, nil
}

// updateContainerInstancesState moves instances between ACTIVE and
// DRAINING. DRAINING instances keep their tasks but get no new ones (the
// scheduler's StatusFilter); there is no service scheduler yet to replace
// their service tasks.
func (a *API) updateContainerInstancesState(ctx context.Context, in *ecs.UpdateContainerInstancesStateRequest) (*ecs.UpdateContainerInstancesStateResponse, error) {
	if len(in.ContainerInstances) == 0 || len(in.ContainerInstances) > 10 {
		return nil, ecs.InvalidParameter("containerInstances must contain between 1 and 10 container instances.")
	}
	status := string(in.Status)
	if status != ecs.InstanceStatusActive && status != ecs.InstanceStatusDraining {
		return nil, ecs.InvalidParameter("Container instances can only be set to ACTIVE or DRAINING.")
	}
	c, err := a.activeCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	out := &ecs.UpdateContainerInstancesStateResponse{ContainerInstances: []ecs.ContainerInstance{}, Failures: []ecs.Failure{}}
	errWrongState := errors.New("wrong state")
	var recs []*state.InstanceRecord
	for _, ref := range in.ContainerInstances {
		id, ok := a.scope.ParseContainerInstanceRef(c.ClusterName, ref)
		var rec *state.InstanceRecord
		if ok {
			rec, err = a.store.UpdateInstance(ctx, c.ClusterName, id, func(r *state.InstanceRecord) error {
				if r.Status != ecs.InstanceStatusActive && r.Status != ecs.InstanceStatusDraining {
					return errWrongState
				}
				r.Status = status
				return nil
			})
		}
		switch {
		case !ok || errors.Is(err, state.ErrNotFound):
			out.Failures = append(out.Failures, ecs.Failure{ARN: a.instanceFailureARN(c.ClusterName, ref), Reason: "MISSING"})
		case errors.Is(err, errWrongState):
			out.Failures = append(out.Failures, ecs.Failure{ARN: a.instanceFailureARN(c.ClusterName, ref), Reason: "INVALID_STATE",
				Detail: "Only ACTIVE and DRAINING container instances can change state."})
		case err != nil:
			return nil, err
		default:
			recs = append(recs, rec)
		}
	}
	views, err := a.instanceViews(ctx, c.ClusterName, recs, false)
	if err != nil {
		return nil, err
	}
	out.ContainerInstances = append(out.ContainerInstances, views...)
	return out, nil
}
