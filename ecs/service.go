package ecs

import (
	"crypto/rand"
	"encoding/binary"
	"strconv"
	"strings"
)

// Service statuses ("ACTIVE, DRAINING, or INACTIVE"). DeleteService moves a
// service from ACTIVE to DRAINING; once its tasks are stopping or stopped
// it is INACTIVE.
const (
	ServiceStatusActive   = "ACTIVE"
	ServiceStatusDraining = "DRAINING"
	ServiceStatusInactive = "INACTIVE"
)

// Deployment statuses: the PRIMARY deployment is the newest one, ACTIVE
// ones are older deployments still running tasks, INACTIVE ones have been
// drained (and leave the service's list).
const (
	DeploymentStatusPrimary  = "PRIMARY"
	DeploymentStatusActive   = "ACTIVE"
	DeploymentStatusInactive = "INACTIVE"
)

// Rolling update defaults ("The default maximumPercent value for a service
// using the REPLICA service scheduler is 200%"; the DAEMON scheduler's are
// 0% and 100%).
const (
	DefaultReplicaMinimumHealthyPercent = 100
	DefaultReplicaMaximumPercent        = 200
	DefaultDaemonMinimumHealthyPercent  = 0
	DefaultDaemonMaximumPercent         = 100
)

// ServiceGroupPrefix starts the task group of a service's tasks,
// "service:<name>", as ECS sets it.
const ServiceGroupPrefix = "service:"

// ServiceGroup is the task group of the named service's tasks.
func ServiceGroup(name string) string { return ServiceGroupPrefix + name }

// ServiceARN is arn:aws:ecs:<region>:<account>:service/<cluster>/<name>,
// ECS's long ARN format.
func (s Scope) ServiceARN(cluster, name string) string { return s.ARN("service", cluster+"/"+name) }

// ParseServiceRef resolves a service reference in cluster: a name, or a
// service ARN of this scope in the long (service/<cluster>/<name>) or the
// old short (service/<name>) format. It reports false for anything else.
func (s Scope) ParseServiceRef(cluster, ref string) (string, bool) {
	if !strings.HasPrefix(ref, "arn:") {
		return ref, validName(ref, 255)
	}
	a, ok := ParseARN(ref)
	if !ok || a.Service != "ecs" || a.Kind != "service" || a.Partition != s.Partition || a.Region != s.Region || a.AccountID != s.AccountID {
		return "", false
	}
	name := a.Resource
	if c, n, long := strings.Cut(a.Resource, "/"); long {
		if c != cluster {
			return "", false
		}
		name = n
	}
	return name, validName(name, 255)
}

// ValidateServiceName applies ECS's rule: "Up to 255 letters (uppercase and
// lowercase), numbers, underscores, and hyphens are allowed."
func ValidateServiceName(name string) error {
	if !validName(name, 255) {
		return InvalidParameter("Invalid service name %q. Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed.", name)
	}
	return nil
}

// NewDeploymentID returns a deployment ID in ECS's form, "ecs-svc/" and 19
// decimal digits. Tasks a deployment starts carry it as startedBy.
func NewDeploymentID() string {
	var b [8]byte
	rand.Read(b[:])
	n := binary.BigEndian.Uint64(b[:]) % 9_000_000_000_000_000_000
	return "ecs-svc/" + strconv.FormatUint(n+1_000_000_000_000_000_000, 10)
}

// DeploymentSettings are a service's deployment configuration with ECS's
// defaults applied.
type DeploymentSettings struct {
	MinimumHealthyPercent int32
	MaximumPercent        int32
	CircuitBreaker        bool
	Rollback              bool
}

// ResolveDeploymentConfiguration checks a deployment configuration given to
// CreateService or UpdateService and fills in what it leaves out: from
// current (the service's, nil on creation) or ECS's defaults for the
// scheduling strategy. Gantry does rolling updates only; what belongs to
// other strategies is refused, never ignored.
func ResolveDeploymentConfiguration(strategy SchedulingStrategy, in, current *DeploymentConfiguration) (*DeploymentConfiguration, error) {
	out := &DeploymentConfiguration{}
	if current != nil {
		c := *current
		out = &c
	}
	if out.MinimumHealthyPercent == nil || out.MaximumPercent == nil {
		lo, hi := int32(DefaultReplicaMinimumHealthyPercent), int32(DefaultReplicaMaximumPercent)
		if strategy == SchedulingStrategyDaemon {
			lo, hi = DefaultDaemonMinimumHealthyPercent, DefaultDaemonMaximumPercent
		}
		if out.MinimumHealthyPercent == nil {
			out.MinimumHealthyPercent = &lo
		}
		if out.MaximumPercent == nil {
			out.MaximumPercent = &hi
		}
	}
	if out.DeploymentCircuitBreaker == nil {
		out.DeploymentCircuitBreaker = &DeploymentCircuitBreaker{}
	}
	if in != nil {
		switch {
		case in.Strategy != "" && in.Strategy != DeploymentStrategyRolling:
			return nil, UnsupportedFeature("Gantry does rolling updates only; deploymentConfiguration.strategy %s is not supported.", in.Strategy)
		case in.Alarms != nil && in.Alarms.Enable:
			return nil, UnsupportedFeature("CloudWatch alarms (deploymentConfiguration.alarms) are not supported by Gantry.")
		case len(in.LifecycleHooks) > 0 || in.BakeTimeInMinutes != nil || in.LinearConfiguration != nil || in.CanaryConfiguration != nil:
			return nil, UnsupportedFeature("Lifecycle hooks, bake time and linear or canary deployments are not supported by Gantry.")
		}
		if in.MinimumHealthyPercent != nil {
			out.MinimumHealthyPercent = in.MinimumHealthyPercent
		}
		if in.MaximumPercent != nil {
			out.MaximumPercent = in.MaximumPercent
		}
		if in.DeploymentCircuitBreaker != nil {
			cb := *in.DeploymentCircuitBreaker
			out.DeploymentCircuitBreaker = &cb
		}
	}
	lo, hi := *out.MinimumHealthyPercent, *out.MaximumPercent
	switch {
	case lo < 0 || lo > 100:
		return nil, InvalidParameter("deploymentConfiguration.minimumHealthyPercent must be between 0 and 100.")
	case hi < 100 || hi > 1000:
		return nil, InvalidParameter("deploymentConfiguration.maximumPercent must be between 100 and 1000.")
	case strategy == SchedulingStrategyDaemon && hi != 100:
		return nil, InvalidParameter("The maximumPercent of a DAEMON service must be 100.")
	}
	return out, nil
}

// Settings returns the configuration's values; c must have been resolved.
func (c *DeploymentConfiguration) Settings() DeploymentSettings {
	s := DeploymentSettings{MinimumHealthyPercent: DefaultReplicaMinimumHealthyPercent, MaximumPercent: DefaultReplicaMaximumPercent}
	if c == nil {
		return s
	}
	if c.MinimumHealthyPercent != nil {
		s.MinimumHealthyPercent = *c.MinimumHealthyPercent
	}
	if c.MaximumPercent != nil {
		s.MaximumPercent = *c.MaximumPercent
	}
	if cb := c.DeploymentCircuitBreaker; cb != nil {
		s.CircuitBreaker, s.Rollback = cb.Enable, cb.Enable && cb.Rollback
	}
	return s
}

// MinimumHealthy is the least number of healthy tasks a deployment keeps
// of desired tasks: minimumHealthyPercent of it, rounded up.
func (s DeploymentSettings) MinimumHealthy(desired int) int {
	return (desired*int(s.MinimumHealthyPercent) + 99) / 100
}

// Maximum is the most tasks, RUNNING or PENDING, a service runs for
// desired tasks: maximumPercent of it, rounded down.
func (s DeploymentSettings) Maximum(desired int) int {
	return desired * int(s.MaximumPercent) / 100
}

// CircuitBreakerThreshold is how many tasks of a deployment may fail before
// the deployment circuit breaker fails it: "0.5 * desired task count",
// rounded up, with "a minimum threshold of 3 and a maximum threshold of
// 200".
func CircuitBreakerThreshold(desired int) int {
	return min(max((desired+1)/2, 3), 200)
}
