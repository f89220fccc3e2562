package ecs

import (
	"slices"
	"strconv"
	"strings"
)

// Container instance statuses. ACTIVE instances take new tasks; DRAINING
// ones keep theirs but get no new ones; DEREGISTERING is the moment a
// forced deregistration stops their tasks; INACTIVE ones are deregistered
// and stay describable for a while.
const (
	InstanceStatusActive        = "ACTIVE"
	InstanceStatusDraining      = "DRAINING"
	InstanceStatusDeregistering = "DEREGISTERING"
	InstanceStatusInactive      = "INACTIVE"
)

// Resource names and types as RegisterContainerInstance takes them.
const (
	ResourceCPU      = "CPU"
	ResourceMemory   = "MEMORY"
	ResourcePorts    = "PORTS"
	ResourcePortsUDP = "PORTS_UDP"
	// ResourceGPU is the instance's GPUs: a STRINGSET of their IDs, as the
	// ECS agent registers them when GPU support is enabled.
	ResourceGPU = "GPU"

	ResourceTypeInteger   = "INTEGER"
	ResourceTypeStringSet = "STRINGSET"
)

// ReservedPorts are the host ports the ECS agent registers as taken on
// every instance: SSH, the Docker daemon, and the agent's introspection and
// credentials endpoints.
var ReservedPorts = []int32{22, 2375, 2376, 51678, 51679}

// IntegerResource is a CPU or MEMORY resource as ECS sends it.
func IntegerResource(name string, v int64) Resource {
	return Resource{Name: name, Type: ResourceTypeInteger, IntegerValue: int32(v)}
}

// PortsResource is a PORTS or PORTS_UDP resource: the ports, as strings,
// in ascending order.
func PortsResource(name string, ports []int32) Resource {
	sorted := slices.Clone(ports)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	set := make([]string, len(sorted))
	for i, p := range sorted {
		set[i] = strconv.Itoa(int(p))
	}
	return Resource{Name: name, Type: ResourceTypeStringSet, StringSetValue: set}
}

// ValidateResources checks registered resources: CPU and MEMORY present as
// non-negative integers, PORTS and PORTS_UDP sets of port numbers, GPU a set
// of distinct IDs, no name twice. Other (custom) resources are kept as they
// are.
func ValidateResources(rs []Resource) error {
	seen := map[string]bool{}
	for _, r := range rs {
		if r.Name == "" {
			return InvalidParameter("Resource names must not be empty.")
		}
		if seen[r.Name] {
			return InvalidParameter("Resource %s is listed more than once.", r.Name)
		}
		seen[r.Name] = true
		switch r.Name {
		case ResourceCPU, ResourceMemory:
			if r.Type != ResourceTypeInteger || r.IntegerValue < 0 {
				return InvalidParameter("Resource %s must be of type INTEGER with a non-negative integerValue.", r.Name)
			}
		case ResourcePorts, ResourcePortsUDP:
			if r.Type != ResourceTypeStringSet {
				return InvalidParameter("Resource %s must be of type STRINGSET.", r.Name)
			}
			if _, err := ParsePorts(r.StringSetValue); err != nil {
				return InvalidParameter("Resource %s: %v", r.Name, err)
			}
		case ResourceGPU:
			if r.Type != ResourceTypeStringSet {
				return InvalidParameter("Resource %s must be of type STRINGSET.", r.Name)
			}
			ids := map[string]bool{}
			for _, id := range r.StringSetValue {
				if id == "" || ids[id] {
					return InvalidParameter("Resource GPU: GPU IDs must be non-empty and distinct.")
				}
				ids[id] = true
			}
		}
	}
	for _, n := range []string{ResourceCPU, ResourceMemory} {
		if !seen[n] {
			return InvalidParameter("totalResources must include %s.", n)
		}
	}
	return nil
}

// ParsePorts reads a PORTS stringSetValue.
func ParsePorts(set []string) ([]int32, error) {
	out := make([]int32, 0, len(set))
	for _, s := range set {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 65535 {
			return nil, InvalidParameter("%q is not a port number", s)
		}
		out = append(out, int32(n))
	}
	return out, nil
}

// Attribute rules from the API reference (Attribute): names of 1-128
// letters, digits, - _ / \ .; values of 1-128 letters, digits,
// - _ . @ / \ : and spaces, not starting or ending with a space; at most 10
// custom attributes per resource and per PutAttributes call.
const MaxCustomAttributes = 10

// ValidateAttribute checks one attribute's name and (optional) value.
func ValidateAttribute(a Attribute) error {
	if !validChars(a.Name, 128, "-_/\\.") {
		return InvalidParameter("Attribute name %q is invalid: use 1-128 letters, numbers, hyphens, underscores, forward slashes, back slashes or periods.", a.Name)
	}
	if a.Value != "" && (!validChars(a.Value, 128, "-_.@/\\: ") || strings.HasPrefix(a.Value, " ") || strings.HasSuffix(a.Value, " ")) {
		return InvalidParameter("Attribute value %q for %s is invalid: use 1-128 letters, numbers, hyphens, underscores, periods, at signs, slashes, colons or spaces, not starting or ending with a space.", a.Value, a.Name)
	}
	return nil
}

func validChars(s string, max int, extra string) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && strings.IndexByte(extra, c) < 0 {
			return false
		}
	}
	return true
}

// BuiltinAttribute reports whether an attribute is one the agent sets at
// registration (ecs.* and com.amazonaws.ecs.*), as opposed to a custom one.
func BuiltinAttribute(name string) bool {
	return strings.HasPrefix(name, "ecs.") || strings.HasPrefix(name, "com.amazonaws.ecs.")
}

// MergeAttributes returns attrs with each of add set by name (replacing the
// value of one already there), in a stable order.
func MergeAttributes(attrs, add []Attribute) []Attribute {
	out := slices.Clone(attrs)
next:
	for _, a := range add {
		a.TargetID, a.TargetType = "", ""
		for i := range out {
			if out[i].Name == a.Name {
				out[i].Value = a.Value
				continue next
			}
		}
		out = append(out, a)
	}
	return out
}

// AttributeValue returns the value of the named attribute and whether it is set.
func AttributeValue(attrs []Attribute, name string) (string, bool) {
	for _, a := range attrs {
		if a.Name == name {
			return a.Value, true
		}
	}
	return "", false
}

// AttributeAvailabilityZone is the built-in attribute that places an
// instance, and its tasks, in an Availability Zone.
const AttributeAvailabilityZone = "ecs.availability-zone"
