package ecr

import (
	"path"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Scope is where repositories live: their ARNs carry the partition, region
// and account (the registry ID) the control plane was configured with.
type Scope struct {
	Partition string // "aws"
	Region    string
	AccountID string
}

// RepositoryARN is the ARN of the named repository.
func (s Scope) RepositoryARN(name string) string {
	return "arn:" + s.Partition + ":ecr:" + s.Region + ":" + s.AccountID + ":repository/" + name
}

// RepositoryName resolves a repository ARN of this scope to its name.
func (s Scope) RepositoryName(arn string) (string, bool) {
	name, ok := strings.CutPrefix(arn, "arn:"+s.Partition+":ecr:"+s.Region+":"+s.AccountID+":repository/")
	return name, ok && name != ""
}

// Repository names, as ECR's model constrains them: 2-256 characters of
// lowercase path components separated by '/', each of letters and digits
// joined by single '.', '_' or '-'. This is also the OCI distribution name
// grammar, so every valid name is a valid registry path.
var repositoryNameRE = regexp.MustCompile(`^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

const repositoryNamePattern = `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`

// ValidateRepositoryName checks a repository name with ECR's rule and words.
func ValidateRepositoryName(name string) error {
	if len(name) < 2 || len(name) > 256 {
		return InvalidParameter("Invalid parameter at 'repositoryName' failed to satisfy constraint: 'Member must have length between 2 and 256'")
	}
	if !repositoryNameRE.MatchString(name) {
		return InvalidParameter("Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '%s''", repositoryNamePattern)
	}
	return nil
}

// ValidateRegistryID checks an optional registryId: it must be the account
// Gantry answers as, the one registry it has.
func ValidateRegistryID(id, accountID string) error {
	if id == "" || id == accountID {
		return nil
	}
	if len(id) != 12 || strings.Trim(id, "0123456789") != "" {
		return InvalidParameter("Invalid parameter at 'registryId' failed to satisfy constraint: 'must satisfy regular expression '[0-9]{12}''")
	}
	return InvalidParameter("Invalid parameter at 'registryId': this Gantry registry has ID '%s', not '%s'", accountID, id)
}

// Tag rules, as ECR enforces them.
const (
	MaxTags           = 50
	maxTagKeyLength   = 128
	maxTagValueLength = 256
)

// ValidateTags checks a repository's tags with ECR's rules: at most 50,
// keys of 1-128 and values of at most 256 characters, no "aws:" prefix, no
// duplicate keys.
func ValidateTags(tags []Tag) error {
	if len(tags) > MaxTags {
		return awsErrorf(ErrCodeTooManyTagsException, "Too many tags: a repository can have at most %d tags", MaxTags)
	}
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		if err := ValidateTagKey(t.Key); err != nil {
			return err
		}
		if utf8.RuneCountInString(t.Value) > maxTagValueLength {
			return InvalidTagParameter("Tag value for key '%s' is longer than %d characters", t.Key, maxTagValueLength)
		}
		if seen[t.Key] {
			return InvalidTagParameter("Duplicate tag key '%s'", t.Key)
		}
		seen[t.Key] = true
	}
	return nil
}

// ValidateTagKey checks one tag key (also used by UntagResource).
func ValidateTagKey(k string) error {
	switch {
	case k == "" || utf8.RuneCountInString(k) > maxTagKeyLength:
		return InvalidTagParameter("Tag keys must be 1-%d characters long", maxTagKeyLength)
	case strings.HasPrefix(strings.ToLower(k), "aws:"):
		return InvalidTagParameter("Tag key '%s' uses the reserved prefix 'aws:'", k)
	}
	return nil
}

// MergeTags adds or replaces tags by key, keeping the order keys were
// first added in.
func MergeTags(have, add []Tag) []Tag {
	out := append([]Tag(nil), have...)
	for _, t := range add {
		replaced := false
		for i := range out {
			if out[i].Key == t.Key {
				out[i].Value, replaced = t.Value, true
				break
			}
		}
		if !replaced {
			out = append(out, t)
		}
	}
	return out
}

// ValidateMutability checks a tag mutability setting and its exclusion
// filters: filters go with the *_WITH_EXCLUSION settings only, at most 5,
// each a WILDCARD pattern of 1-128 letters, digits, '.', '_', '-' and '*'.
func ValidateMutability(m ImageTagMutability, filters []ImageTagMutabilityExclusionFilter) error {
	withExclusion := m == ImageTagMutabilityImmutableWithExclusion || m == ImageTagMutabilityMutableWithExclusion
	switch {
	case withExclusion && len(filters) == 0:
		return InvalidParameter("imageTagMutabilityExclusionFilters are required with imageTagMutability %s", m)
	case !withExclusion && len(filters) > 0:
		return InvalidParameter("imageTagMutabilityExclusionFilters can only be used with IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION")
	case len(filters) > 5:
		return InvalidParameter("at most 5 imageTagMutabilityExclusionFilters are allowed")
	}
	for _, f := range filters {
		if len(f.Filter) > 128 || strings.Trim(f.Filter, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-*") != "" {
			return InvalidParameter("Invalid parameter at 'filter' failed to satisfy constraint: 'must satisfy regular expression '^[0-9a-zA-Z._*-]{1,128}''")
		}
	}
	return nil
}

// TagImmutable reports whether tag, once it names an image, may not be moved
// to another one under the repository's setting.
func TagImmutable(m ImageTagMutability, filters []ImageTagMutabilityExclusionFilter, tag string) bool {
	matches := func() bool {
		for _, f := range filters {
			// path.Match's only special characters besides '*' are '?',
			// '[' and '\\', which a validated filter cannot contain.
			if ok, _ := path.Match(f.Filter, tag); ok {
				return true
			}
		}
		return false
	}
	switch m {
	case ImageTagMutabilityImmutable:
		return true
	case ImageTagMutabilityImmutableWithExclusion:
		return !matches()
	case ImageTagMutabilityMutableWithExclusion:
		return matches()
	}
	return false
}
