package awsproto

import (
	"fmt"
	"strconv"
	"strings"
)

// RuleRequired is the Rule of a ValidationError for a missing required member.
const RuleRequired = "required member is missing"

// ValidationError is the first model-level violation found in a request by the
// generated Validate methods: a missing required member or an enum value that
// is not in the model. Length and pattern rules are left to the domain layer,
// because ECS enforces them differently from what the model says.
type ValidationError struct {
	Field string // path of the member, e.g. "containerDefinitions[0].name"
	Rule  string // RuleRequired, or "expected one of A, B, C" for enums
	Value string // the offending value; empty for a missing member
}

func (e *ValidationError) Error() string {
	if e.Rule == RuleRequired {
		return e.Field + ": " + e.Rule
	}
	return fmt.Sprintf("%s: %q is not a valid value; %s", e.Field, e.Value, e.Rule)
}

// Missing reports that the required member at path is absent.
func Missing(path string) *ValidationError {
	return &ValidationError{Field: path, Rule: RuleRequired}
}

// InvalidEnum reports that v, at path, is not one of allowed.
func InvalidEnum[T ~string](path string, v T, allowed []T) *ValidationError {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return &ValidationError{Field: path, Rule: "expected one of " + strings.Join(names, ", "), Value: string(v)}
}

// JoinPath appends a member name to a path ("" is the request itself).
func JoinPath(path, member string) string {
	if path == "" {
		return member
	}
	return path + "." + member
}

// IndexPath appends a list index to a path: "portMappings[0]".
func IndexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// KeyPath appends a map key to a path: "dockerLabels[key]".
func KeyPath[K ~string](path string, k K) string {
	return path + "[" + string(k) + "]"
}
