package ecs

import (
	"slices"
	"strconv"
	"strings"
)

// Health check defaults: "The default value is 30 seconds", "The default
// value is 5", "The default value is 3" (API reference, HealthCheck);
// DescribeTaskDefinition returns them even when they were not registered.
const (
	DefaultHealthCheckInterval = 30
	DefaultHealthCheckTimeout  = 5
	DefaultHealthCheckRetries  = 3
)

// applyDefaults fills in what ECS adds to a registered task definition:
//   - task-level cpu and memory as whole units ("1 vCPU" -> "1024");
//   - volumes and placementConstraints as [] when absent;
//   - per container: essential true when omitted ("If this parameter is
//     omitted, a container is assumed to be essential"); portMappings,
//     environment, mountPoints and volumesFrom as [] when absent (AWS CLI
//     register-task-definition example output);
//   - per port mapping: protocol tcp ("The default is tcp"), and in awsvpc
//     and host modes a missing or zero hostPort set to the containerPort
//     (the host port is the container port in those modes);
//   - health check interval, timeout and retries.
//
// cpu (a non-boxed integer in the model) is always present, 0 by default.
func (c *taskCheck) applyDefaults() {
	td := c.td
	if c.cpu != 0 {
		td.CPU = strconv.Itoa(int(c.cpu))
	}
	if c.memory != 0 {
		td.Memory = strconv.Itoa(int(c.memory))
	}
	td.Volumes = nonNilSlice(td.Volumes)
	td.PlacementConstraints = nonNilSlice(td.PlacementConstraints)
	staticHostPorts := td.NetworkMode == NetworkModeAwsvpc || td.NetworkMode == NetworkModeHost
	for i := range td.ContainerDefinitions {
		cd := &td.ContainerDefinitions[i]
		if cd.Essential == nil {
			t := true
			cd.Essential = &t
		}
		cd.PortMappings = nonNilSlice(cd.PortMappings)
		cd.Environment = nonNilSlice(cd.Environment)
		cd.MountPoints = nonNilSlice(cd.MountPoints)
		cd.VolumesFrom = nonNilSlice(cd.VolumesFrom)
		for j := range cd.PortMappings {
			pm := &cd.PortMappings[j]
			if pm.Protocol == "" {
				pm.Protocol = TransportProtocolTCP
			}
			if staticHostPorts && pm.ContainerPort != nil && (pm.HostPort == nil || *pm.HostPort == 0) {
				hp := *pm.ContainerPort
				pm.HostPort = &hp
			}
		}
		if h := cd.HealthCheck; h != nil {
			h.Interval = orDefault(h.Interval, DefaultHealthCheckInterval)
			h.Timeout = orDefault(h.Timeout, DefaultHealthCheckTimeout)
			h.Retries = orDefault(h.Retries, DefaultHealthCheckRetries)
		}
	}
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func orDefault(p *int32, v int32) *int32 {
	if p != nil {
		return p
	}
	return &v
}

// Attribute name prefixes of container instance capabilities, as the ECS
// agent advertises them (amazon-ecs-agent agent/app/agent_capability.go).
const (
	capabilityPrefix = "com.amazonaws.ecs.capability."
	attributePrefix  = "ecs.capability."
)

// requiresAttributes derives the container instance attributes a task
// needs from the features it uses. ECS's own derivation is not published;
// this table pairs each feature with the capability the ECS agent
// advertises for it, plus the Docker Remote API versions the API reference
// states a member needs ("This parameter requires version 1.18 of the
// Docker Remote API"). The scheduler places EC2 tasks only on instances that
// have every attribute; Gantry's agent must advertise the ones it supports.
func (c *taskCheck) requiresAttributes() []Attribute {
	td := c.td
	set := map[string]bool{}
	add := func(name string) { set[name] = true }
	hasExecRole := td.ExecutionRoleARN != ""
	if td.TaskRoleARN != "" {
		add(capabilityPrefix + "task-iam-role")
		if td.NetworkMode == NetworkModeHost {
			add(capabilityPrefix + "task-iam-role-network-host")
		}
	}
	if td.NetworkMode == NetworkModeAwsvpc {
		add(attributePrefix + "task-eni")
	}
	if td.PidMode != "" || td.IpcMode != "" {
		add(attributePrefix + "pid-ipc-namespace-sharing")
	}
	if td.ProxyConfiguration != nil {
		add(attributePrefix + "aws-appmesh")
	}
	if len(td.InferenceAccelerators) > 0 {
		add(attributePrefix + "task-eia")
	}
	if td.EnableFaultInjection != nil && *td.EnableFaultInjection {
		add(attributePrefix + "fault-injection")
	}
	if c.cpu != 0 || c.memory != 0 {
		add(attributePrefix + "task-cpu-mem-limit")
	}
	for _, v := range td.Volumes {
		switch {
		case v.EFSVolumeConfiguration != nil:
			add(attributePrefix + "efs")
			e := v.EFSVolumeConfiguration
			if e.TransitEncryption == EFSTransitEncryptionEnabled || e.AuthorizationConfig != nil {
				add(attributePrefix + "efsAuth")
			}
		case v.FsxWindowsFileServerVolumeConfiguration != nil:
			add(attributePrefix + "fsxWindowsFileServer")
		case v.DockerVolumeConfiguration != nil:
			driver := v.DockerVolumeConfiguration.Driver
			if driver == "" {
				driver = "local"
			}
			add(attributePrefix + "docker-plugin." + driver)
		}
	}
	for i := range td.ContainerDefinitions {
		cd := &td.ContainerDefinitions[i]
		if lc := cd.LogConfiguration; lc != nil {
			add(capabilityPrefix + "docker-remote-api.1.18")
			if len(lc.Options) > 0 {
				add(capabilityPrefix + "docker-remote-api.1.19")
			}
			add(capabilityPrefix + "logging-driver." + string(lc.LogDriver))
			if lc.LogDriver == LogDriverAwslogs && hasExecRole {
				add(attributePrefix + "execution-role-awslogs")
			}
			for _, s := range lc.SecretOptions {
				add(attributePrefix + "secrets." + secretStore(s.ValueFrom) + ".bootstrap.log-driver")
			}
		}
		if len(cd.DockerLabels) > 0 || len(cd.Ulimits) > 0 {
			add(capabilityPrefix + "docker-remote-api.1.18")
		}
		if lp := cd.LinuxParameters; lp != nil && lp.InitProcessEnabled != nil && *lp.InitProcessEnabled {
			add(capabilityPrefix + "docker-remote-api.1.25")
		}
		if ecrImage.MatchString(cd.Image) {
			add(capabilityPrefix + "ecr-auth")
			if hasExecRole {
				add(attributePrefix + "execution-role-ecr-pull")
			}
		}
		if cd.HealthCheck != nil {
			add(attributePrefix + "container-health-check")
		}
		if len(cd.DependsOn) > 0 || cd.StartTimeout != nil || cd.StopTimeout != nil {
			add(attributePrefix + "container-ordering")
		}
		for _, s := range cd.Secrets {
			add(attributePrefix + "secrets." + secretStore(s.ValueFrom) + ".environment-variables")
		}
		if cd.RepositoryCredentials != nil {
			add(attributePrefix + "private-registry-authentication.secretsmanager")
		}
		if cd.Privileged != nil && *cd.Privileged {
			add(capabilityPrefix + "privileged-container")
		}
		if f := cd.FirelensConfiguration; f != nil {
			add(attributePrefix + "firelens." + string(f.Type))
			if t := f.Options["config-file-type"]; t == "s3" || t == "file" {
				add(attributePrefix + "firelens.options.config." + t)
			}
		}
		if len(cd.EnvironmentFiles) > 0 {
			add(attributePrefix + "env-files.s3")
		}
		for _, pm := range cd.PortMappings {
			if pm.ContainerPortRange != "" {
				add(attributePrefix + "network.container-port-range")
			}
		}
		if p := cd.RestartPolicy; p != nil && p.Enabled != nil && *p.Enabled {
			add(attributePrefix + "container-restart-policy")
		}
	}
	if len(set) == 0 {
		return nil // omitted, as in ECS's answer for a definition that needs none
	}
	out := make([]Attribute, 0, len(set))
	for name := range set {
		out = append(out, Attribute{Name: name})
	}
	slices.SortFunc(out, func(a, b Attribute) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// secretStore says where a secret lives: Secrets Manager ARNs are "asm",
// everything else (SSM parameter names and ARNs) is "ssm".
func secretStore(valueFrom string) string {
	if strings.Contains(valueFrom, ":secretsmanager:") {
		return "asm"
	}
	return "ssm"
}
