package ecsapi

import (
	"context"
	"errors"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/state"
)

// tagger reads and rewrites the tags of one kind of taggable resource,
// addressed by the part of its ARN after "<kind>/".
type tagger struct {
	get    func(ctx context.Context, resource string) ([]ecs.Tag, error)
	update func(ctx context.Context, resource string, fn func([]ecs.Tag) []ecs.Tag) error
}

func (a *API) registerTags() {
	a.taggers = map[string]tagger{
		"cluster": {
			get: func(ctx context.Context, name string) ([]ecs.Tag, error) {
				c, err := a.store.ActiveCluster(ctx, name)
				if err != nil {
					return nil, err
				}
				return c.Tags, nil
			},
			update: func(ctx context.Context, name string, fn func([]ecs.Tag) []ecs.Tag) error {
				_, err := a.store.UpdateCluster(ctx, name, func(c *ecs.Cluster) error {
					c.Tags = fn(c.Tags)
					return ecs.ValidateTags(c.Tags)
				})
				return err
			},
		},
		"task-definition":    a.taskDefinitionTagger(),
		"task":               a.taskTagger(),
		"container-instance": a.instanceTagger(),
		"service":            a.serviceTagger(),
	}
	a.handle("TagResource", op(a.tagResource))
	a.handle("UntagResource", op(a.untagResource))
	a.handle("ListTagsForResource", op(a.listTagsForResource))
}

// resolveTagged finds the tagger for an ARN of this region and account.
func (a *API) resolveTagged(arn string) (tagger, ecs.ARN, error) {
	p, ok := ecs.ParseARN(arn)
	if !ok || p.Service != "ecs" || p.Partition != a.scope.Partition {
		return tagger{}, p, ecs.InvalidParameter("The ARN provided is invalid: %q.", arn)
	}
	if p.Region != a.scope.Region || p.AccountID != a.scope.AccountID {
		return tagger{}, p, ecs.InvalidParameter("The ARN %q is not in this region (%s) and account (%s).", arn, a.scope.Region, a.scope.AccountID)
	}
	t, ok := a.taggers[p.Kind]
	if !ok {
		return tagger{}, p, ecs.InvalidParameter("Gantry does not support tags on %s resources yet.", p.Kind)
	}
	return t, p, nil
}

// notFound maps the store's ErrNotFound to the resource kind's ECS error.
func notFound(kind string, err error) error {
	if !errors.Is(err, state.ErrNotFound) {
		return err
	}
	if kind == "cluster" {
		return ecs.ClusterNotFound()
	}
	return ecs.Errorf(ecs.ErrCodeResourceNotFoundException, "The specified resource could not be found.")
}

func (a *API) tagResource(ctx context.Context, in *ecs.TagResourceRequest) (*ecs.TagResourceResponse, error) {
	if err := ecs.ValidateTags(in.Tags); err != nil {
		return nil, err
	}
	t, p, err := a.resolveTagged(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	err = t.update(ctx, p.Resource, func(tags []ecs.Tag) []ecs.Tag { return ecs.MergeTags(tags, in.Tags) })
	if err != nil {
		return nil, notFound(p.Kind, err)
	}
	return &ecs.TagResourceResponse{}, nil
}

func (a *API) untagResource(ctx context.Context, in *ecs.UntagResourceRequest) (*ecs.UntagResourceResponse, error) {
	for _, k := range in.TagKeys {
		if err := ecs.ValidateTagKey(k); err != nil {
			return nil, err
		}
	}
	t, p, err := a.resolveTagged(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	err = t.update(ctx, p.Resource, func(tags []ecs.Tag) []ecs.Tag { return ecs.RemoveTags(tags, in.TagKeys) })
	if err != nil {
		return nil, notFound(p.Kind, err)
	}
	return &ecs.UntagResourceResponse{}, nil
}

func (a *API) listTagsForResource(ctx context.Context, in *ecs.ListTagsForResourceRequest) (*ecs.ListTagsForResourceResponse, error) {
	t, p, err := a.resolveTagged(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	tags, err := t.get(ctx, p.Resource)
	if err != nil {
		return nil, notFound(p.Kind, err)
	}
	return &ecs.ListTagsForResourceResponse{Tags: nonNil(tags)}, nil
}
