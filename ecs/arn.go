package ecs

import (
	"fmt"
	"strings"
)

// Scope is where resources live: ARNs carry the partition, region and account
// the control plane was configured with.
type Scope struct {
	Partition string // "aws"
	Region    string
	AccountID string
}

// ARN returns the ARN of an ECS resource, e.g. ARN("cluster", "default").
// resource may contain slashes (task/<cluster>/<id>).
func (s Scope) ARN(kind, resource string) string {
	return fmt.Sprintf("arn:%s:ecs:%s:%s:%s/%s", s.Partition, s.Region, s.AccountID, kind, resource)
}

// ClusterARN is the ARN of the named cluster.
func (s Scope) ClusterARN(name string) string { return s.ARN("cluster", name) }

// ARN is a parsed Amazon Resource Name of an ECS resource.
type ARN struct {
	Partition, Service, Region, AccountID string
	Kind                                  string // the resource type: cluster, task, service, ...
	Resource                              string // what follows "<kind>/"
}

// ParseARN splits an ECS-style ARN "arn:partition:service:region:account:kind/resource".
func ParseARN(s string) (ARN, bool) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[2] == "" {
		return ARN{}, false
	}
	kind, res, ok := strings.Cut(parts[5], "/")
	if !ok || kind == "" || res == "" {
		return ARN{}, false
	}
	return ARN{Partition: parts[1], Service: parts[2], Region: parts[3], AccountID: parts[4], Kind: kind, Resource: res}, true
}

// ClusterName resolves a cluster reference as ECS accepts it: empty means
// "default", otherwise a name or a cluster ARN of this region and account.
// It reports false for an ARN that is not a cluster ARN of this scope.
func (s Scope) ClusterName(ref string) (string, bool) {
	if ref == "" {
		return "default", true
	}
	if !strings.HasPrefix(ref, "arn:") {
		return ref, true
	}
	a, ok := ParseARN(ref)
	if !ok || a.Service != "ecs" || a.Kind != "cluster" || a.Region != s.Region || a.AccountID != s.AccountID || a.Partition != s.Partition {
		return "", false
	}
	return a.Resource, true
}
