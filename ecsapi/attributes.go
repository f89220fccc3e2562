package ecsapi

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/state"
)

// Attributes live in their container instance's record (ECS attributes
// target only container instances), so PutAttributes and DeleteAttributes
// rewrite the instance records they name, all in one transaction.

func (a *API) registerAttributes() {
	a.handle("PutAttributes", op(a.putAttributes))
	a.handle("DeleteAttributes", op(a.deleteAttributes))
	a.handle("ListAttributes", op(a.listAttributes))
}

// attributeTargets resolves each attribute's target to an instance ID of
// cluster, checks the instances are registered, and returns the IDs in
// order of first mention.
func (a *API) attributeTargets(ctx context.Context, cluster string, attrs []ecs.Attribute) (targets []string, ids []string, err error) {
	targets = make([]string, len(attrs))
	for i, at := range attrs {
		if at.TargetType != "" && at.TargetType != ecs.TargetTypeContainerInstance {
			return nil, nil, ecs.InvalidParameter("targetType must be container-instance.")
		}
		if at.TargetID == "" {
			return nil, nil, ecs.InvalidParameter("Attribute %s has no targetId: name the container instance by ID (with targetType container-instance) or ARN.", at.Name)
		}
		if !strings.HasPrefix(at.TargetID, "arn:") && at.TargetType == "" {
			return nil, nil, ecs.InvalidParameter("targetType is required when targetId is an ID rather than an ARN.")
		}
		id, ok := a.scope.ParseContainerInstanceRef(cluster, at.TargetID)
		if ok {
			rec, _, err := a.store.GetInstance(ctx, cluster, id)
			ok = err == nil && rec.Status != ecs.InstanceStatusInactive
			if err != nil && !errors.Is(err, state.ErrNotFound) {
				return nil, nil, err
			}
		}
		if !ok {
			return nil, nil, ecs.Errorf(ecs.ErrCodeTargetNotFoundException, "Could not find the target %s in cluster %s.", at.TargetID, cluster)
		}
		targets[i] = id
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return targets, ids, nil
}

func (a *API) putAttributes(ctx context.Context, in *ecs.PutAttributesRequest) (*ecs.PutAttributesResponse, error) {
	if len(in.Attributes) == 0 || len(in.Attributes) > ecs.MaxCustomAttributes {
		return nil, ecs.InvalidParameter("attributes must contain between 1 and %d attributes.", ecs.MaxCustomAttributes)
	}
	for _, at := range in.Attributes {
		if err := ecs.ValidateAttribute(at); err != nil {
			return nil, err
		}
	}
	c, err := a.activeCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	targets, ids, err := a.attributeTargets(ctx, c.ClusterName, in.Attributes)
	if err != nil {
		return nil, err
	}
	errLimit := ecs.Errorf(ecs.ErrCodeAttributeLimitExceededException, "You can apply up to %d custom attributes to a resource.", ecs.MaxCustomAttributes)
	_, err = a.store.UpdateInstances(ctx, c.ClusterName, ids, func(r *state.InstanceRecord) error {
		for i, at := range in.Attributes {
			if targets[i] == r.ID() {
				r.Attributes = ecs.MergeAttributes(r.Attributes, []ecs.Attribute{at})
				// Set by the user now: a re-registering agent keeps it.
				r.AgentAttributes = slices.DeleteFunc(r.AgentAttributes, func(n string) bool { return n == at.Name })
			}
		}
		custom := 0
		for _, at := range r.Attributes {
			if !ecs.BuiltinAttribute(at.Name) {
				custom++
			}
		}
		if custom > ecs.MaxCustomAttributes {
			return errLimit
		}
		return nil
	})
	if errors.Is(err, state.ErrNotFound) {
		return nil, ecs.Errorf(ecs.ErrCodeTargetNotFoundException, "A target container instance was deregistered.")
	}
	if err != nil {
		return nil, err
	}
	return &ecs.PutAttributesResponse{Attributes: in.Attributes}, nil
}

func (a *API) deleteAttributes(ctx context.Context, in *ecs.DeleteAttributesRequest) (*ecs.DeleteAttributesResponse, error) {
	if len(in.Attributes) == 0 || len(in.Attributes) > ecs.MaxCustomAttributes {
		return nil, ecs.InvalidParameter("attributes must contain between 1 and %d attributes.", ecs.MaxCustomAttributes)
	}
	for _, at := range in.Attributes {
		if err := ecs.ValidateAttribute(ecs.Attribute{Name: at.Name}); err != nil {
			return nil, err
		}
	}
	c, err := a.activeCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	targets, ids, err := a.attributeTargets(ctx, c.ClusterName, in.Attributes)
	if err != nil {
		return nil, err
	}
	_, err = a.store.UpdateInstances(ctx, c.ClusterName, ids, func(r *state.InstanceRecord) error {
		r.Attributes = slices.DeleteFunc(r.Attributes, func(have ecs.Attribute) bool {
			for i, at := range in.Attributes {
				if targets[i] == r.ID() && at.Name == have.Name {
					return true
				}
			}
			return false
		})
		return nil
	})
	if errors.Is(err, state.ErrNotFound) {
		return nil, ecs.Errorf(ecs.ErrCodeTargetNotFoundException, "A target container instance was deregistered.")
	}
	if err != nil {
		return nil, err
	}
	return &ecs.DeleteAttributesResponse{Attributes: in.Attributes}, nil
}

// listAttributes lists the attributes of a cluster's registered instances,
// instance by instance (in ID order), then by name, optionally only those
// with a given name (and value).
func (a *API) listAttributes(ctx context.Context, in *ecs.ListAttributesRequest) (*ecs.ListAttributesResponse, error) {
	if in.TargetType != ecs.TargetTypeContainerInstance {
		return nil, ecs.InvalidParameter("targetType must be container-instance.")
	}
	if in.AttributeValue != "" && in.AttributeName == "" {
		return nil, ecs.InvalidParameter("attributeValue can only be given with attributeName.")
	}
	limit, err := pageSize(in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	after, err := decodeToken("ListAttributes", in.NextToken)
	if err != nil {
		return nil, err
	}
	c, err := a.activeCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	snap, err := a.store.SnapshotInstances(ctx, c.ClusterName)
	if err != nil {
		return nil, err
	}
	recs := slices.Clone(snap.Records)
	slices.SortFunc(recs, func(x, y *state.InstanceRecord) int { return strings.Compare(x.ID(), y.ID()) })
	out := &ecs.ListAttributesResponse{Attributes: []ecs.Attribute{}}
	for _, r := range recs {
		attrs := slices.Clone(r.Attributes)
		slices.SortFunc(attrs, func(x, y ecs.Attribute) int { return strings.Compare(x.Name, y.Name) })
		for _, at := range attrs {
			// Attribute names have no spaces: "<id> <name>" orders as (id, name).
			key := r.ID() + " " + at.Name
			if key <= after || (in.AttributeName != "" && at.Name != in.AttributeName) ||
				(in.AttributeValue != "" && at.Value != in.AttributeValue) {
				continue
			}
			if len(out.Attributes) == limit {
				out.NextToken = encodeToken("ListAttributes", after)
				return out, nil
			}
			at.TargetType = ecs.TargetTypeContainerInstance
			at.TargetID = r.ContainerInstanceARN
			out.Attributes = append(out.Attributes, at)
			after = key
		}
	}
	return out, nil
}
