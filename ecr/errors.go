package ecr

import "github.com/gantry-dev/gantry/internal/awsproto"

// Constructors for the ECR errors the domain raises, worded as ECR words
// them, so an error a script matches on reads the same against Gantry.

// InvalidParameter is ECR's InvalidParameterException.
func InvalidParameter(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf(ErrCodeInvalidParameterException, format, args...)
}

// InvalidTagParameter is ECR's InvalidTagParameterException.
func InvalidTagParameter(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf(ErrCodeInvalidTagParameterException, format, args...)
}

// RepositoryNotFound is ECR's RepositoryNotFoundException.
func RepositoryNotFound(name, registryID string) *awsproto.Error {
	return awsproto.Errorf(ErrCodeRepositoryNotFoundException,
		"The repository with name '%s' does not exist in the registry with id '%s'", name, registryID)
}

// RepositoryAlreadyExists is ECR's RepositoryAlreadyExistsException.
func RepositoryAlreadyExists(name, registryID string) *awsproto.Error {
	return awsproto.Errorf(ErrCodeRepositoryAlreadyExistsException,
		"The repository with name '%s' already exists in the registry with id '%s'", name, registryID)
}

// RepositoryNotEmpty is ECR's RepositoryNotEmptyException.
func RepositoryNotEmpty(name, registryID string) *awsproto.Error {
	return awsproto.Errorf(ErrCodeRepositoryNotEmptyException,
		"The repository with name '%s' in registry with id '%s' cannot be deleted because it still contains images", name, registryID)
}

// ImageNotFound is ECR's ImageNotFoundException for one image ID.
func ImageNotFound(id ImageIdentifier, repo, registryID string) *awsproto.Error {
	return awsproto.Errorf(ErrCodeImageNotFoundException,
		"The image with imageId {%s} does not exist within the repository with name '%s' in the registry with id '%s'",
		FormatImageID(id), repo, registryID)
}

// ImageTagAlreadyExists is ECR's ImageTagAlreadyExistsException: a tag of an
// immutable repository would move to another image.
func ImageTagAlreadyExists(tag, repo string) *awsproto.Error {
	return awsproto.Errorf(ErrCodeImageTagAlreadyExistsException, "%s", TagImmutableMessage(tag, repo))
}

// TagImmutableMessage is ECR's explanation for a refused tag move, which the
// registry also sends with its TAG_INVALID error on a docker push.
func TagImmutableMessage(tag, repo string) string {
	return "The image tag '" + tag + "' already exists in the '" + repo +
		"' repository and cannot be overwritten because the repository is immutable."
}

// ImageAlreadyExists is ECR's ImageAlreadyExistsException: PutImage with a
// manifest and tag that are already there.
func ImageAlreadyExists(digest, tag, repo, registryID string) *awsproto.Error {
	return awsproto.Errorf(ErrCodeImageAlreadyExistsException,
		"Image with digest '%s' and tag '%s' already exists in the repository with name '%s' in registry with id '%s'",
		digest, tag, repo, registryID)
}

// UnsupportedFeature refuses an ECR feature Gantry does not implement. ECR
// has no such code; Gantry uses the one its ECS API uses, so a refusal is
// never mistaken for a validation error.
func UnsupportedFeature(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf("UnsupportedFeatureException", format, args...)
}

// FormatImageID renders an image ID as ECR's messages do:
// "imageDigest:'sha256:...', imageTag:'null'".
func FormatImageID(id ImageIdentifier) string {
	d, t := id.ImageDigest, id.ImageTag
	if d == "" {
		d = "null"
	}
	if t == "" {
		t = "null"
	}
	return "imageDigest:'" + d + "', imageTag:'" + t + "'"
}

func awsErrorf(code, format string, args ...any) *awsproto.Error {
	return awsproto.Errorf(code, format, args...)
}
