package ecs

import (
	"strings"
	"unicode"
)

// Cluster statuses as ECS reports them.
const (
	ClusterStatusActive   = "ACTIVE"
	ClusterStatusInactive = "INACTIVE"
)

// DefaultClusterName is the cluster ECS uses when a call names none.
const DefaultClusterName = "default"

// ValidateClusterName applies ECS's rule: up to 255 letters (uppercase and
// lowercase), numbers, underscores and hyphens.
func ValidateClusterName(name string) error {
	if !validName(name, 255) {
		return InvalidParameter("Invalid cluster name %q. Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed.", name)
	}
	return nil
}

// validName reports whether s is 1-max ASCII letters, digits, '-' or '_':
// the rule ECS applies to cluster, family, service and container names.
func validName(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ValidateClusterSettings checks settings as ECS does: known names and values.
func ValidateClusterSettings(settings []ClusterSetting) error {
	for _, s := range settings {
		switch s.Value {
		case "enabled", "disabled", "enhanced":
		default:
			return InvalidParameter("Invalid value %q for cluster setting %s. Valid values are enabled, disabled and enhanced.", s.Value, s.Name)
		}
	}
	return nil
}

// MergeClusterSettings returns settings with updates applied by name, in a
// stable order (existing names first).
func MergeClusterSettings(settings, updates []ClusterSetting) []ClusterSetting {
	out := append([]ClusterSetting{}, settings...)
next:
	for _, u := range updates {
		for i := range out {
			if out[i].Name == u.Name {
				out[i].Value = u.Value
				continue next
			}
		}
		out = append(out, u)
	}
	return out
}

// Tag limits from the ECS API reference ("Tagging your resources").
const (
	MaxTags           = 50
	maxTagKeyLength   = 128
	maxTagValueLength = 256
)

// ValidateTags checks tags against ECS's rules: at most 50, unique keys of
// 1-128 characters, values of at most 256, the aws: prefix reserved, and
// only letters, numbers, spaces and _ . : / = + - @.
func ValidateTags(tags []Tag) error {
	if len(tags) > MaxTags {
		return InvalidParameter("Too many tags: %d. A resource can have at most %d tags.", len(tags), MaxTags)
	}
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		if err := ValidateTagKey(t.Key); err != nil {
			return err
		}
		if len([]rune(t.Value)) > maxTagValueLength {
			return InvalidParameter("Tag value for key %q is longer than %d characters.", t.Key, maxTagValueLength)
		}
		if !validTagChars(t.Value) {
			return InvalidParameter("Tag value for key %q contains characters that are not allowed. Tags may contain letters, numbers, spaces and _ . : / = + - @.", t.Key)
		}
		if seen[t.Key] {
			return InvalidParameter("Duplicate tag key %q.", t.Key)
		}
		seen[t.Key] = true
	}
	return nil
}

// ValidateTagKey checks one tag key (also used by UntagResource).
func ValidateTagKey(k string) error {
	switch {
	case k == "" || len([]rune(k)) > maxTagKeyLength:
		return InvalidParameter("Tag keys must be 1-%d characters long; got %q.", maxTagKeyLength, k)
	case strings.HasPrefix(strings.ToLower(k), "aws:"):
		return InvalidParameter("Tag key %q uses the reserved prefix aws:.", k)
	case !validTagChars(k):
		return InvalidParameter("Tag key %q contains characters that are not allowed. Tags may contain letters, numbers, spaces and _ . : / = + - @.", k)
	}
	return nil
}

func validTagChars(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Zs, r) || strings.ContainsRune("_.:/=+-@", r) {
			continue
		}
		return false
	}
	return true
}

// MergeTags applies add to tags (overwriting values of existing keys).
func MergeTags(tags, add []Tag) []Tag {
	out := append([]Tag{}, tags...)
next:
	for _, a := range add {
		for i := range out {
			if out[i].Key == a.Key {
				out[i].Value = a.Value
				continue next
			}
		}
		out = append(out, a)
	}
	return out
}

// RemoveTags drops the given keys from tags.
func RemoveTags(tags []Tag, keys []string) []Tag {
	drop := make(map[string]bool, len(keys))
	for _, k := range keys {
		drop[k] = true
	}
	out := []Tag{}
	for _, t := range tags {
		if !drop[t.Key] {
			out = append(out, t)
		}
	}
	return out
}
