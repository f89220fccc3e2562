package ecrapi

import (
	"context"
	"slices"

	"github.com/opencontainers/go-digest"

	"github.com/gantry-dev/gantry/ecr"
	"github.com/gantry-dev/gantry/internal/awsproto"
	"github.com/gantry-dev/gantry/registry"
)

func (a *API) registerImages() {
	a.handle("ListImages", op(a.listImages))
	a.handle("DescribeImages", op(a.describeImages))
	a.handle("BatchGetImage", op(a.batchGetImage))
	a.handle("BatchDeleteImage", op(a.batchDeleteImage))
	a.handle("PutImage", op(a.putImage))
}

// maxImageIDs bounds imageIds in one call, as ECR does.
const maxImageIDs = 100

func (a *API) listImages(ctx context.Context, in *ecr.ListImagesRequest) (*ecr.ListImagesResponse, error) {
	if err := a.checkRepository(in.RegistryID, in.RepositoryName); err != nil {
		return nil, err
	}
	n, err := pageSize(in.MaxResults)
	if err != nil {
		return nil, err
	}
	after, err := decodeToken("ListImages", in.NextToken)
	if err != nil {
		return nil, err
	}
	var status ecr.TagStatus
	if in.Filter != nil {
		status = in.Filter.TagStatus
	}
	imgs, err := a.images(ctx, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	// One entry per tag, and one per untagged image, in (digest, tag)
	// order; the token is the last entry's "digest|tag".
	out := &ecr.ListImagesResponse{ImageIDs: []ecr.ImageIdentifier{}}
	for _, img := range filterImages(imgs, status) {
		tags := img.Tags
		if len(tags) == 0 {
			tags = []string{""}
		}
		for _, t := range tags {
			key := img.Digest + "|" + t
			if after != "" && key <= after {
				continue
			}
			if len(out.ImageIDs) == n {
				out.NextToken = encodeToken("ListImages", after)
				return out, nil
			}
			out.ImageIDs = append(out.ImageIDs, ecr.ImageIdentifier{ImageDigest: img.Digest, ImageTag: t})
			after = key
		}
	}
	return out, nil
}

func (a *API) describeImages(ctx context.Context, in *ecr.DescribeImagesRequest) (*ecr.DescribeImagesResponse, error) {
	if err := a.checkRepository(in.RegistryID, in.RepositoryName); err != nil {
		return nil, err
	}
	imgs, err := a.images(ctx, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	out := &ecr.DescribeImagesResponse{ImageDetails: []ecr.ImageDetail{}}
	var status ecr.TagStatus
	if in.Filter != nil {
		status = in.Filter.TagStatus
	}
	if len(in.ImageIDs) > 0 {
		if in.MaxResults != 0 || in.NextToken != "" {
			return nil, ecr.InvalidParameter("maxResults and nextToken cannot be used with imageIds")
		}
		if len(in.ImageIDs) > maxImageIDs {
			return nil, ecr.InvalidParameter("Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length less than or equal to %d'", maxImageIDs)
		}
		seen := map[string]bool{}
		for _, id := range in.ImageIDs {
			if code, reason := ecr.CheckImageID(id); code != "" {
				return nil, ecr.InvalidParameter("%s", reason)
			}
			img, ok := findImage(imgs, id)
			if !ok {
				return nil, ecr.ImageNotFound(id, in.RepositoryName, a.scope.AccountID)
			}
			if seen[img.Digest] || len(filterImages([]registry.Image{img}, status)) == 0 {
				continue
			}
			seen[img.Digest] = true
			d, err := a.detail(ctx, in.RepositoryName, img)
			if err != nil {
				return nil, err
			}
			out.ImageDetails = append(out.ImageDetails, d)
		}
		return out, nil
	}
	n, err := pageSize(in.MaxResults)
	if err != nil {
		return nil, err
	}
	after, err := decodeToken("DescribeImages", in.NextToken)
	if err != nil {
		return nil, err
	}
	for _, img := range filterImages(imgs, status) {
		if after != "" && img.Digest <= after {
			continue
		}
		if len(out.ImageDetails) == n {
			out.NextToken = encodeToken("DescribeImages", after)
			break
		}
		d, err := a.detail(ctx, in.RepositoryName, img)
		if registry.IsNotFound(err) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out.ImageDetails = append(out.ImageDetails, d)
		after = img.Digest
	}
	return out, nil
}

func (a *API) detail(ctx context.Context, repo string, img registry.Image) (ecr.ImageDetail, error) {
	m, err := a.reg.Manifest(ctx, repo, img.Digest)
	if err != nil {
		return ecr.ImageDetail{}, err
	}
	return ecr.ImageDetail{
		RegistryID:             a.scope.AccountID,
		RepositoryName:         repo,
		ImageDigest:            img.Digest,
		ImageTags:              img.Tags,
		ImageSizeInBytes:       m.Size,
		ImagePushedAt:          awsproto.Timestamp{Time: img.PushedAt.UTC()},
		ImageManifestMediaType: m.MediaType,
		ArtifactMediaType:      m.ArtifactMediaType,
	}, nil
}

func (a *API) batchGetImage(ctx context.Context, in *ecr.BatchGetImageRequest) (*ecr.BatchGetImageResponse, error) {
	if err := a.checkRepository(in.RegistryID, in.RepositoryName); err != nil {
		return nil, err
	}
	if err := checkImageIDCount(in.ImageIDs); err != nil {
		return nil, err
	}
	imgs, err := a.images(ctx, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	out := &ecr.BatchGetImageResponse{Images: []ecr.Image{}, Failures: []ecr.ImageFailure{}}
	for _, id := range in.ImageIDs {
		img, fail := resolveImageID(imgs, id)
		if fail != nil {
			out.Failures = append(out.Failures, *fail)
			continue
		}
		m, err := a.reg.Manifest(ctx, in.RepositoryName, img.Digest)
		if registry.IsNotFound(err) {
			out.Failures = append(out.Failures, notFound(id))
			continue
		}
		if err != nil {
			return nil, err
		}
		out.Images = append(out.Images, ecr.Image{
			RegistryID:             a.scope.AccountID,
			RepositoryName:         in.RepositoryName,
			ImageID:                &ecr.ImageIdentifier{ImageDigest: img.Digest, ImageTag: id.ImageTag},
			ImageManifest:          string(m.Payload),
			ImageManifestMediaType: m.MediaType,
		})
	}
	return out, nil
}

func (a *API) batchDeleteImage(ctx context.Context, in *ecr.BatchDeleteImageRequest) (*ecr.BatchDeleteImageResponse, error) {
	if err := a.checkRepository(in.RegistryID, in.RepositoryName); err != nil {
		return nil, err
	}
	if err := checkImageIDCount(in.ImageIDs); err != nil {
		return nil, err
	}
	repo := in.RepositoryName
	out := &ecr.BatchDeleteImageResponse{ImageIDs: []ecr.ImageIdentifier{}, Failures: []ecr.ImageFailure{}}
	var children map[string]bool // digests an index in the repository lists, read once
	for _, id := range in.ImageIDs {
		// Each ID sees what the ones before it deleted.
		imgs, err := a.images(ctx, repo)
		if err != nil {
			return nil, err
		}
		img, fail := resolveImageID(imgs, id)
		if fail != nil {
			out.Failures = append(out.Failures, *fail)
			continue
		}
		if children == nil {
			if children, err = a.indexChildren(ctx, repo, imgs); err != nil {
				return nil, err
			}
		}
		if id.ImageTag != "" {
			// A tag goes; the image goes with its last tag, as in ECR,
			// unless an index still lists it.
			if err := a.reg.Untag(ctx, repo, id.ImageTag); err != nil {
				return nil, err
			}
			out.ImageIDs = append(out.ImageIDs, ecr.ImageIdentifier{ImageDigest: img.Digest, ImageTag: id.ImageTag})
			if len(img.Tags) > 1 || children[img.Digest] {
				continue
			}
		} else if children[img.Digest] {
			out.Failures = append(out.Failures, ecr.ImageFailure{ImageID: &id, FailureCode: ecr.ImageFailureCodeImageReferencedByManifestList,
				FailureReason: "Requested image is referenced by an image index in the repository"})
			continue
		} else {
			for _, t := range img.Tags {
				out.ImageIDs = append(out.ImageIDs, ecr.ImageIdentifier{ImageDigest: img.Digest, ImageTag: t})
			}
			if len(img.Tags) == 0 {
				out.ImageIDs = append(out.ImageIDs, ecr.ImageIdentifier{ImageDigest: img.Digest})
			}
		}
		err = a.reg.DeleteManifest(ctx, repo, img.Digest)
		if err != nil && !registry.IsNotFound(err) {
			return nil, err
		}
		children = nil // an index may have gone
	}
	return out, nil
}

func (a *API) putImage(ctx context.Context, in *ecr.PutImageRequest) (*ecr.PutImageResponse, error) {
	if err := a.checkRepository(in.RegistryID, in.RepositoryName); err != nil {
		return nil, err
	}
	if in.ImageTag != "" && !ecr.ValidImageTag(in.ImageTag) {
		return nil, ecr.InvalidParameter("Invalid parameter at 'imageTag' failed to satisfy constraint: 'must satisfy regular expression '[A-Za-z0-9_][A-Za-z0-9._-]{0,127}''")
	}
	if in.ImageDigest != "" && !ecr.ValidImageDigest(in.ImageDigest) {
		return nil, ecr.InvalidParameter("Invalid parameter at 'imageDigest' failed to satisfy constraint: 'must satisfy regular expression 'sha256:[a-f0-9]{64}''")
	}
	if len(in.ImageManifest) > 4<<20 {
		return nil, ecr.InvalidParameter("Invalid parameter at 'imageManifest' failed to satisfy constraint: 'Member must have length less than or equal to 4194304'")
	}
	rec, err := a.repository(ctx, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if in.ImageDigest != "" && in.ImageDigest != digestOf(in.ImageManifest) {
		return nil, awsproto.Errorf(ecr.ErrCodeImageDigestDoesNotMatchException,
			"Invalid parameter at 'imageDigest': the digest of the manifest is %s", digestOf(in.ImageManifest))
	}
	d, err := a.reg.PutImage(ctx, in.RepositoryName, rec.ImageTagMutability, rec.ImageTagMutabilityExclusionFilters,
		in.ImageTag, in.ImageManifestMediaType, []byte(in.ImageManifest))
	if err != nil {
		return nil, err
	}
	return &ecr.PutImageResponse{Image: &ecr.Image{
		RegistryID:             a.scope.AccountID,
		RepositoryName:         in.RepositoryName,
		ImageID:                &ecr.ImageIdentifier{ImageDigest: d, ImageTag: in.ImageTag},
		ImageManifest:          in.ImageManifest,
		ImageManifestMediaType: in.ImageManifestMediaType,
	}}, nil
}

// images lists a repository's images after checking it exists.
func (a *API) images(ctx context.Context, repo string) ([]registry.Image, error) {
	if _, err := a.repository(ctx, repo); err != nil {
		return nil, err
	}
	return a.reg.Images(ctx, repo)
}

// indexChildren are the digests the repository's image indexes list.
func (a *API) indexChildren(ctx context.Context, repo string, imgs []registry.Image) (map[string]bool, error) {
	out := map[string]bool{}
	for _, img := range imgs {
		m, err := a.reg.Manifest(ctx, repo, img.Digest)
		if registry.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, c := range m.Children {
			out[c] = true
		}
	}
	return out, nil
}

func checkImageIDCount(ids []ecr.ImageIdentifier) error {
	if len(ids) < 1 || len(ids) > maxImageIDs {
		return ecr.InvalidParameter("Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length between 1 and %d'", maxImageIDs)
	}
	return nil
}

// resolveImageID finds the image an ID names, or the failure ECR reports.
func resolveImageID(imgs []registry.Image, id ecr.ImageIdentifier) (registry.Image, *ecr.ImageFailure) {
	if code, reason := ecr.CheckImageID(id); code != "" {
		return registry.Image{}, &ecr.ImageFailure{ImageID: &id, FailureCode: code, FailureReason: reason}
	}
	img, ok := findImage(imgs, id)
	if !ok {
		if id.ImageTag != "" && id.ImageDigest != "" {
			if _, tagged := findImage(imgs, ecr.ImageIdentifier{ImageTag: id.ImageTag}); tagged {
				return registry.Image{}, &ecr.ImageFailure{ImageID: &id, FailureCode: ecr.ImageFailureCodeImageTagDoesNotMatchDigest,
					FailureReason: "Invalid request parameters: given tag does not map to the given digest"}
			}
		}
		f := notFound(id)
		return registry.Image{}, &f
	}
	return img, nil
}

func notFound(id ecr.ImageIdentifier) ecr.ImageFailure {
	return ecr.ImageFailure{ImageID: &id, FailureCode: ecr.ImageFailureCodeImageNotFound, FailureReason: "Requested image not found"}
}

// findImage finds the image with id's digest and/or tag (both must match
// when both are given).
func findImage(imgs []registry.Image, id ecr.ImageIdentifier) (registry.Image, bool) {
	for _, img := range imgs {
		if id.ImageDigest != "" && img.Digest != id.ImageDigest {
			continue
		}
		if id.ImageTag != "" && !slices.Contains(img.Tags, id.ImageTag) {
			continue
		}
		return img, true
	}
	return registry.Image{}, false
}

// filterImages applies a tagStatus filter (empty and ANY keep all).
func filterImages(imgs []registry.Image, status ecr.TagStatus) []registry.Image {
	if status == "" || status == ecr.TagStatusAny {
		return imgs
	}
	return slices.DeleteFunc(slices.Clone(imgs), func(img registry.Image) bool {
		return (len(img.Tags) > 0) != (status == ecr.TagStatusTagged)
	})
}

// digestOf is the digest a manifest is stored under.
func digestOf(manifest string) string { return digest.FromString(manifest).String() }
