package ecr

import (
	"regexp"
)

// Image references inside a repository, as the OCI distribution spec and
// ECR accept them.
var (
	tagRE    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
	digestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
)

// ValidImageTag reports whether tag is a valid image tag: up to 128
// letters, digits, '_', '.' and '-', not starting with '.' or '-'.
func ValidImageTag(tag string) bool { return tagRE.MatchString(tag) }

// ValidImageDigest reports whether d is a sha256 digest in canonical form,
// the only algorithm ECR (and the registry) uses for image manifests.
func ValidImageDigest(d string) bool { return digestRE.MatchString(d) }

// CheckImageID says why an image ID cannot name an image, as the failure
// code and reason ECR's batch operations report, or returns "" if it can.
func CheckImageID(id ImageIdentifier) (ImageFailureCode, string) {
	switch {
	case id.ImageDigest == "" && id.ImageTag == "":
		return ImageFailureCodeMissingDigestAndTag, "Invalid request parameters: both tag and digest cannot be null"
	case id.ImageDigest != "" && !ValidImageDigest(id.ImageDigest):
		return ImageFailureCodeInvalidImageDigest, "Invalid request parameters: image digest should satisfy the regex 'sha256:[a-f0-9]{64}'"
	case id.ImageTag != "" && !ValidImageTag(id.ImageTag):
		return ImageFailureCodeInvalidImageTag, "Invalid request parameters: image tag should satisfy the regex '[A-Za-z0-9_][A-Za-z0-9._-]{0,127}'"
	}
	return "", ""
}
