package ecrapi

import (
	"context"
	"errors"
	"slices"

	"github.com/gantry-dev/gantry/ecr"
	"github.com/gantry-dev/gantry/internal/awsproto"
	"github.com/gantry-dev/gantry/state"
)

func (a *API) registerRepositories() {
	a.handle("CreateRepository", op(a.createRepository))
	a.handle("DescribeRepositories", op(a.describeRepositories))
	a.handle("DeleteRepository", op(a.deleteRepository))
	a.handle("PutImageTagMutability", op(a.putImageTagMutability))
	a.handle("TagResource", op(a.tagResource))
	a.handle("UntagResource", op(a.untagResource))
	a.handle("ListTagsForResource", op(a.listTagsForResource))
}

func (a *API) createRepository(ctx context.Context, in *ecr.CreateRepositoryRequest) (*ecr.CreateRepositoryResponse, error) {
	if err := a.checkRepository(in.RegistryID, in.RepositoryName); err != nil {
		return nil, err
	}
	if err := ecr.ValidateTags(in.Tags); err != nil {
		return nil, err
	}
	mut := in.ImageTagMutability
	if mut == "" {
		mut = ecr.ImageTagMutabilityMutable
	}
	if err := ecr.ValidateMutability(mut, in.ImageTagMutabilityExclusionFilters); err != nil {
		return nil, err
	}
	if e := in.EncryptionConfiguration; e != nil && e.EncryptionType != ecr.EncryptionTypeAes256 {
		return nil, ecr.InvalidParameter("Gantry's registry supports encryptionType AES256 only, not %s", e.EncryptionType)
	}
	rec := &state.RepositoryRecord{
		Repository: ecr.Repository{
			RepositoryName:                     in.RepositoryName,
			CreatedAt:                          awsproto.Timestamp{Time: a.now().UTC()},
			ImageTagMutability:                 mut,
			ImageTagMutabilityExclusionFilters: in.ImageTagMutabilityExclusionFilters,
			ImageScanningConfiguration:         in.ImageScanningConfiguration,
			EncryptionConfiguration:            in.EncryptionConfiguration,
		},
		Tags: in.Tags,
	}
	exists := func() error {
		if _, err := a.store.GetRepository(ctx, in.RepositoryName); err == nil {
			return ecr.RepositoryAlreadyExists(in.RepositoryName, a.scope.AccountID)
		} else if !errors.Is(err, state.ErrNotFound) {
			return err
		}
		return nil
	}
	if err := exists(); err != nil { // the common refusal, without a lock
		return nil, err
	}
	unlock, err := a.store.LockRepository(ctx, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := exists(); err != nil {
		return nil, err
	}
	// What a push still in flight when the name was last deleted may have
	// left must not show up in the new repository.
	if err := a.reg.RemoveRepository(ctx, in.RepositoryName); err != nil {
		return nil, err
	}
	if err := a.store.CreateRepository(ctx, rec); errors.Is(err, state.ErrExists) {
		return nil, ecr.RepositoryAlreadyExists(in.RepositoryName, a.scope.AccountID)
	} else if err != nil {
		return nil, err
	}
	v := a.view(rec)
	return &ecr.CreateRepositoryResponse{Repository: &v}, nil
}

func (a *API) describeRepositories(ctx context.Context, in *ecr.DescribeRepositoriesRequest) (*ecr.DescribeRepositoriesResponse, error) {
	if err := ecr.ValidateRegistryID(in.RegistryID, a.scope.AccountID); err != nil {
		return nil, err
	}
	out := &ecr.DescribeRepositoriesResponse{Repositories: []ecr.Repository{}}
	if len(in.RepositoryNames) > 0 {
		if in.MaxResults != 0 || in.NextToken != "" {
			return nil, ecr.InvalidParameter("maxResults and nextToken cannot be used with repositoryNames")
		}
		if len(in.RepositoryNames) > 100 {
			return nil, ecr.InvalidParameter("Invalid parameter at 'repositoryNames' failed to satisfy constraint: 'Member must have length less than or equal to 100'")
		}
		for _, name := range in.RepositoryNames {
			rec, err := a.repository(ctx, name)
			if err != nil {
				return nil, err
			}
			out.Repositories = append(out.Repositories, a.view(rec))
		}
		return out, nil
	}
	n, err := pageSize(in.MaxResults)
	if err != nil {
		return nil, err
	}
	after, err := decodeToken("DescribeRepositories", in.NextToken)
	if err != nil {
		return nil, err
	}
	recs, next, err := a.store.ListRepositories(ctx, after, n)
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		out.Repositories = append(out.Repositories, a.view(rec))
	}
	out.NextToken = encodeToken("DescribeRepositories", next)
	return out, nil
}

func (a *API) deleteRepository(ctx context.Context, in *ecr.DeleteRepositoryRequest) (*ecr.DeleteRepositoryResponse, error) {
	if err := a.checkRepository(in.RegistryID, in.RepositoryName); err != nil {
		return nil, err
	}
	check := func() error {
		if _, err := a.repository(ctx, in.RepositoryName); err != nil {
			return err
		}
		if !in.Force {
			if has, err := a.reg.HasImages(ctx, in.RepositoryName); err != nil {
				return err
			} else if has {
				return ecr.RepositoryNotEmpty(in.RepositoryName, a.scope.AccountID)
			}
		}
		return nil
	}
	if err := check(); err != nil { // the common refusals, without a lock
		return nil, err
	}
	unlock, err := a.store.LockRepository(ctx, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := check(); err != nil {
		return nil, err
	}
	// The record first: from here on pushes and pulls are refused, then
	// the images go.
	rec, err := a.store.DeleteRepository(ctx, in.RepositoryName)
	if errors.Is(err, state.ErrNotFound) {
		return nil, ecr.RepositoryNotFound(in.RepositoryName, a.scope.AccountID)
	} else if err != nil {
		return nil, err
	}
	if err := a.reg.RemoveRepository(ctx, in.RepositoryName); err != nil {
		// The repository is gone; CreateRepository clears what is left.
		a.log.Warn("could not remove a deleted repository's images", "repository", in.RepositoryName, "err", err)
	}
	v := a.view(rec)
	return &ecr.DeleteRepositoryResponse{Repository: &v}, nil
}

func (a *API) putImageTagMutability(ctx context.Context, in *ecr.PutImageTagMutabilityRequest) (*ecr.PutImageTagMutabilityResponse, error) {
	if err := a.checkRepository(in.RegistryID, in.RepositoryName); err != nil {
		return nil, err
	}
	if err := ecr.ValidateMutability(in.ImageTagMutability, in.ImageTagMutabilityExclusionFilters); err != nil {
		return nil, err
	}
	rec, err := a.updateRepository(ctx, in.RepositoryName, func(r *state.RepositoryRecord) error {
		r.ImageTagMutability = in.ImageTagMutability
		r.ImageTagMutabilityExclusionFilters = in.ImageTagMutabilityExclusionFilters
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecr.PutImageTagMutabilityResponse{
		RegistryID:                         a.scope.AccountID,
		RepositoryName:                     rec.RepositoryName,
		ImageTagMutability:                 rec.ImageTagMutability,
		ImageTagMutabilityExclusionFilters: rec.ImageTagMutabilityExclusionFilters,
	}, nil
}

func (a *API) tagResource(ctx context.Context, in *ecr.TagResourceRequest) (*ecr.TagResourceResponse, error) {
	name, err := a.resourceName(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	if err := ecr.ValidateTags(in.Tags); err != nil {
		return nil, err
	}
	_, err = a.updateRepository(ctx, name, func(r *state.RepositoryRecord) error {
		r.Tags = ecr.MergeTags(r.Tags, in.Tags)
		return ecr.ValidateTags(r.Tags)
	})
	if err != nil {
		return nil, err
	}
	return &ecr.TagResourceResponse{}, nil
}

func (a *API) untagResource(ctx context.Context, in *ecr.UntagResourceRequest) (*ecr.UntagResourceResponse, error) {
	name, err := a.resourceName(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	for _, k := range in.TagKeys {
		if err := ecr.ValidateTagKey(k); err != nil {
			return nil, err
		}
	}
	_, err = a.updateRepository(ctx, name, func(r *state.RepositoryRecord) error {
		r.Tags = slices.DeleteFunc(r.Tags, func(t ecr.Tag) bool { return slices.Contains(in.TagKeys, t.Key) })
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecr.UntagResourceResponse{}, nil
}

func (a *API) listTagsForResource(ctx context.Context, in *ecr.ListTagsForResourceRequest) (*ecr.ListTagsForResourceResponse, error) {
	name, err := a.resourceName(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	rec, err := a.repository(ctx, name)
	if err != nil {
		return nil, err
	}
	return &ecr.ListTagsForResourceResponse{Tags: append([]ecr.Tag{}, rec.Tags...)}, nil
}

// resourceName resolves the ARN of a repository of this registry.
func (a *API) resourceName(arn string) (string, error) {
	name, ok := a.scope.RepositoryName(arn)
	if !ok || ecr.ValidateRepositoryName(name) != nil {
		return "", ecr.InvalidParameter("Invalid parameter at 'resourceArn': '%s' is not the ARN of a repository in this registry", arn)
	}
	return name, nil
}

// checkRepository validates the registry ID and repository name every
// repository operation carries.
func (a *API) checkRepository(registryID, name string) error {
	if err := ecr.ValidateRegistryID(registryID, a.scope.AccountID); err != nil {
		return err
	}
	return ecr.ValidateRepositoryName(name)
}

// repository reads a repository by name: RepositoryNotFoundException if it
// is not there (or the name could never be).
func (a *API) repository(ctx context.Context, name string) (*state.RepositoryRecord, error) {
	if ecr.ValidateRepositoryName(name) != nil {
		return nil, ecr.RepositoryNotFound(name, a.scope.AccountID)
	}
	rec, err := a.store.GetRepository(ctx, name)
	if errors.Is(err, state.ErrNotFound) {
		return nil, ecr.RepositoryNotFound(name, a.scope.AccountID)
	}
	return rec, err
}

func (a *API) updateRepository(ctx context.Context, name string, fn func(*state.RepositoryRecord) error) (*state.RepositoryRecord, error) {
	rec, err := a.store.UpdateRepository(ctx, name, fn)
	if errors.Is(err, state.ErrNotFound) {
		return nil, ecr.RepositoryNotFound(name, a.scope.AccountID)
	}
	return rec, err
}

// view is a repository as ECR shows it: the stored fields plus the
// derived ARN, registry ID and URI, and ECR's defaults for the settings
// Gantry records but does not act on (scanning, encryption).
func (a *API) view(rec *state.RepositoryRecord) ecr.Repository {
	r := rec.Repository
	r.RepositoryARN = a.scope.RepositoryARN(r.RepositoryName)
	r.RegistryID = a.scope.AccountID
	r.RepositoryURI = a.host + "/" + r.RepositoryName
	if r.ImageScanningConfiguration == nil {
		r.ImageScanningConfiguration = &ecr.ImageScanningConfiguration{}
	}
	if r.EncryptionConfiguration == nil {
		r.EncryptionConfiguration = &ecr.EncryptionConfiguration{EncryptionType: ecr.EncryptionTypeAes256}
	}
	return r
}
