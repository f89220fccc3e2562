package ecsapi

import (
	"context"
	"errors"
	"time"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/awsproto"
	"github.com/gantry-dev/gantry/state"
)

// now is the clock task definition timestamps (registeredAt, deregisteredAt,
// deleteRequestedAt) are read from. API has no clock of its own yet; golden
// tests mask these members instead of fixing the time.
var now = time.Now

func (a *API) registerTaskDefinitions() {
	a.handle("RegisterTaskDefinition", op(a.registerTaskDefinition))
	a.handle("DescribeTaskDefinition", op(a.describeTaskDefinition))
	a.handle("ListTaskDefinitions", op(a.listTaskDefinitions))
	a.handle("ListTaskDefinitionFamilies", op(a.listTaskDefinitionFamilies))
	a.handle("DeregisterTaskDefinition", op(a.deregisterTaskDefinition))
	a.handle("DeleteTaskDefinitions", op(a.deleteTaskDefinitions))
}

// ECS's answers for task definitions that cannot be found.
func errDescribeTaskDefinition() error {
	return ecs.ClientError("Unable to describe task definition.")
}

func errNoTaskDefinition() error {
	return ecs.ClientError("The specified task definition does not exist.")
}

// registeredBy is the principal ECS reports as having registered a task
// definition. Gantry authenticates one access key per account, so it is
// the account's root principal.
func (a *API) registeredBy() string {
	return "arn:" + a.scope.Partition + ":iam::" + a.scope.AccountID + ":root"
}

func (a *API) registerTaskDefinition(ctx context.Context, in *ecs.RegisterTaskDefinitionRequest) (*ecs.RegisterTaskDefinitionResponse, error) {
	if err := ecs.ValidateTags(in.Tags); err != nil {
		return nil, err
	}
	td, err := ecs.NewTaskDefinition(in)
	if err != nil {
		return nil, err
	}
	td.RegisteredAt = awsproto.Timestamp{Time: now()}
	td.RegisteredBy = a.registeredBy()
	rec := &ecs.TaskDefinitionRecord{TaskDefinition: *td, Tags: in.Tags}
	rec, err = a.store.RegisterTaskDefinition(ctx, rec, func(rev int32) string {
		return a.scope.TaskDefinitionARN(td.Family, rev)
	})
	switch {
	case errors.Is(err, state.ErrConflict):
		return nil, ecs.ClientError("Too many concurrent attempts to create a new revision of the specified family.")
	case errors.Is(err, state.ErrRevisionLimit):
		return nil, ecs.ClientError("The task definition family %s has reached the limit of %d revisions.", td.Family, ecs.MaxFamilyRevisions)
	case err != nil:
		return nil, err
	}
	out := rec.TaskDefinition
	return &ecs.RegisterTaskDefinitionResponse{TaskDefinition: &out, Tags: rec.Tags}, nil
}

func (a *API) describeTaskDefinition(ctx context.Context, in *ecs.DescribeTaskDefinitionRequest) (*ecs.DescribeTaskDefinitionResponse, error) {
	ref, err := a.scope.ParseTaskDefinitionRef(in.TaskDefinition)
	if errors.Is(err, ecs.ErrNoSuchTaskDefinition) {
		return nil, errDescribeTaskDefinition()
	}
	if err != nil {
		return nil, err
	}
	var rec *ecs.TaskDefinitionRecord
	if ref.Revision == 0 {
		rec, err = a.store.LatestActiveTaskDefinition(ctx, ref.Family)
	} else {
		rec, err = a.store.GetTaskDefinition(ctx, ref.Family, ref.Revision)
	}
	if errors.Is(err, state.ErrNotFound) {
		return nil, errDescribeTaskDefinition()
	}
	if err != nil {
		return nil, err
	}
	out := &ecs.DescribeTaskDefinitionResponse{TaskDefinition: &rec.TaskDefinition}
	for _, f := range in.Include {
		if f == ecs.TaskDefinitionFieldTags {
			out.Tags = nonNil(rec.Tags)
		}
	}
	return out, nil
}

// revisionRef parses a reference that must name a revision, as
// DeregisterTaskDefinition and DeleteTaskDefinitions require ("You must
// specify a revision").
func (a *API) revisionRef(s string) (ecs.TaskDefinitionRef, error) {
	ref, err := a.scope.ParseTaskDefinitionRef(s)
	if errors.Is(err, ecs.ErrNoSuchTaskDefinition) {
		return ref, errNoTaskDefinition()
	}
	if err != nil {
		return ref, err
	}
	if ref.Revision == 0 {
		return ref, ecs.ClientError("A revision must be specified: use family:revision or the full task definition ARN.")
	}
	return ref, nil
}

func (a *API) deregisterTaskDefinition(ctx context.Context, in *ecs.DeregisterTaskDefinitionRequest) (*ecs.DeregisterTaskDefinitionResponse, error) {
	ref, err := a.revisionRef(in.TaskDefinition)
	if err != nil {
		return nil, err
	}
	rec, err := a.store.DeregisterTaskDefinition(ctx, ref.Family, ref.Revision, now())
	if errors.Is(err, state.ErrNotFound) {
		return nil, errNoTaskDefinition()
	}
	if err != nil {
		return nil, err
	}
	return &ecs.DeregisterTaskDefinitionResponse{TaskDefinition: &rec.TaskDefinition}, nil
}

// deleteTaskDefinitions deletes each named revision on its own: ECS answers
// with the revisions it moved to DELETE_IN_PROGRESS and a failure for each
// one it could not.
func (a *API) deleteTaskDefinitions(ctx context.Context, in *ecs.DeleteTaskDefinitionsRequest) (*ecs.DeleteTaskDefinitionsResponse, error) {
	if len(in.TaskDefinitions) == 0 || len(in.TaskDefinitions) > ecs.MaxDeleteTaskDefinitions {
		return nil, ecs.InvalidParameter("taskDefinitions must contain between 1 and %d task definitions.", ecs.MaxDeleteTaskDefinitions)
	}
	out := &ecs.DeleteTaskDefinitionsResponse{TaskDefinitions: []ecs.TaskDefinition{}, Failures: []ecs.Failure{}}
	at := now()
	for _, s := range in.TaskDefinitions {
		ref, err := a.revisionRef(s)
		// A failure names the revision by ARN when the reference is one.
		fail := func(reason string) {
			arn := s
			if err == nil {
				arn = a.scope.TaskDefinitionARN(ref.Family, ref.Revision)
			}
			out.Failures = append(out.Failures, ecs.Failure{ARN: arn, Reason: reason})
		}
		var ae *awsproto.Error
		if errors.As(err, &ae) {
			fail(ae.Message)
			continue
		}
		rec, err := a.store.DeleteTaskDefinition(ctx, ref.Family, ref.Revision, at)
		switch {
		case errors.Is(err, state.ErrNotFound):
			fail("The specified task definition does not exist.")
		case errors.Is(err, state.ErrTaskDefinitionActive):
			fail("The specified task definition is still in ACTIVE status. Please deregister the target and try again.")
		case err != nil:
			return nil, err
		default:
			out.TaskDefinitions = append(out.TaskDefinitions, rec.TaskDefinition)
		}
	}
	return out, nil
}

func (a *API) listTaskDefinitions(ctx context.Context, in *ecs.ListTaskDefinitionsRequest) (*ecs.ListTaskDefinitionsResponse, error) {
	limit, err := pageSize(in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	after, err := decodeToken("ListTaskDefinitions", in.NextToken)
	if err != nil {
		return nil, err
	}
	status := in.Status
	if status == "" {
		status = ecs.TaskDefinitionStatusActive
	}
	out := &ecs.ListTaskDefinitionsResponse{TaskDefinitionARNs: []string{}}
	// familyPrefix is "the full family name"; one that no family can have
	// matches nothing.
	if in.FamilyPrefix != "" {
		if ref, err := a.scope.ParseTaskDefinitionRef(in.FamilyPrefix); err != nil || ref.Family != in.FamilyPrefix {
			return out, nil
		}
	}
	ids, next, err := a.store.ListTaskDefinitions(ctx, status, in.FamilyPrefix, in.Sort == ecs.SortOrderDesc, after, limit)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		out.TaskDefinitionARNs = append(out.TaskDefinitionARNs, a.scope.TaskDefinitionARN(id.Family, id.Revision))
	}
	out.NextToken = encodeToken("ListTaskDefinitions", next)
	return out, nil
}

func (a *API) listTaskDefinitionFamilies(ctx context.Context, in *ecs.ListTaskDefinitionFamiliesRequest) (*ecs.ListTaskDefinitionFamiliesResponse, error) {
	limit, err := pageSize(in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	after, err := decodeToken("ListTaskDefinitionFamilies", in.NextToken)
	if err != nil {
		return nil, err
	}
	status := in.Status
	if status == "" {
		status = ecs.TaskDefinitionFamilyStatusAll // "By default, both ACTIVE and INACTIVE task definition families are listed."
	}
	families, next, err := a.store.ListTaskDefinitionFamilies(ctx, in.FamilyPrefix, status, after, limit)
	if err != nil {
		return nil, err
	}
	return &ecs.ListTaskDefinitionFamiliesResponse{
		Families:  nonNil(families),
		NextToken: encodeToken("ListTaskDefinitionFamilies", next),
	}, nil
}

// taskDefinitionTagger is the TaskResource/UntagResource/ListTagsForResource
// backend for task-definition/<family>:<revision> ARNs.
func (a *API) taskDefinitionTagger() tagger {
	parse := func(resource string) (ecs.TaskDefinitionRef, error) {
		ref, err := a.scope.ParseTaskDefinitionRef(resource)
		if err != nil || ref.Revision == 0 {
			return ref, ecs.InvalidParameter("The ARN provided is invalid: a task definition ARN must end in <family>:<revision>.")
		}
		return ref, nil
	}
	return tagger{
		get: func(ctx context.Context, resource string) ([]ecs.Tag, error) {
			ref, err := parse(resource)
			if err != nil {
				return nil, err
			}
			rec, err := a.store.GetTaskDefinition(ctx, ref.Family, ref.Revision)
			if err != nil {
				return nil, err
			}
			return rec.Tags, nil
		},
		update: func(ctx context.Context, resource string, fn func([]ecs.Tag) []ecs.Tag) error {
			ref, err := parse(resource)
			if err != nil {
				return err
			}
			return a.store.UpdateTaskDefinitionTags(ctx, ref.Family, ref.Revision, func(tags []ecs.Tag) ([]ecs.Tag, error) {
				tags = fn(tags)
				return tags, ecs.ValidateTags(tags)
			})
		},
	}
}
