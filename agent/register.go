package agent

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/agent/runtime"
	"github.com/gantry-dev/gantry/ecs"
)

// ReservedPorts are the TCP host ports registered as taken, as the ECS
// agent's defaults (ECS_RESERVED_PORTS): SSH, the Docker daemon (plain and
// TLS), and the ECS agent's introspection and credentials endpoints.
var ReservedPorts = []uint16{22, 2375, 2376, 51678, 51679}

// Attribute names of the built-in attributes (amazon-ecs-agent
// agent/api/ecsclient/client.go and agent/app/agent_capability.go).
const (
	AttrOSType           = "ecs.os-type"
	AttrOSFamily         = "ecs.os-family"
	AttrCPUArchitecture  = "ecs.cpu-architecture"
	AttrAvailabilityZone = "ecs.availability-zone"
	AttrInstanceType     = "ecs.instance-type"

	capabilityPrefix = "com.amazonaws.ecs.capability."
	attributePrefix  = "ecs.capability."
)

// Docker Remote API versions advertised as com.amazonaws.ecs.capability.
// docker-remote-api.1.X: from the oldest the ECS agent knows up to the
// engine's, capped at the newest the Docker runtime's translator uses.
const (
	minDockerAPIMinor = 17
	maxDockerAPIMinor = 41
)

// registration builds the RegisterRequest for this host: resources and
// attributes as the ECS agent reports them. It is pure; Run calls it with
// the runtime's Info.
func registration(cfg *Config, info runtime.Info, id identity) (protocol.RegisterRequest, error) {
	cpu := cfg.CPU
	if cpu == 0 {
		cpu = 1024 * info.CPUs
	}
	mem := cfg.Memory
	if mem == 0 {
		mem = int(info.MemoryBytes >> 20)
	}
	if cfg.ReservedMemory > 0 {
		if cfg.ReservedMemory >= mem {
			return protocol.RegisterRequest{}, fmt.Errorf("reserved memory %d MiB leaves nothing of %d MiB", cfg.ReservedMemory, mem)
		}
		mem -= cfg.ReservedMemory
	}
	if cpu <= 0 || mem <= 0 {
		return protocol.RegisterRequest{}, fmt.Errorf("no capacity to register: cpu %d, memory %d MiB", cpu, mem)
	}
	ports := make([]string, len(ReservedPorts))
	for i, p := range ReservedPorts {
		ports[i] = strconv.Itoa(int(p))
	}
	req := protocol.RegisterRequest{
		Cluster:              cfg.Cluster,
		ContainerInstanceARN: id.ContainerInstanceARN,
		InstanceToken:        id.InstanceToken,
		Hostname:             info.Hostname,
		Resources: []ecs.Resource{
			{Name: "CPU", Type: "INTEGER", IntegerValue: int32(cpu)},
			{Name: "MEMORY", Type: "INTEGER", IntegerValue: int32(mem)},
			{Name: "PORTS", Type: "STRINGSET", StringSetValue: ports},
			{Name: "PORTS_UDP", Type: "STRINGSET", StringSetValue: []string{}},
		},
		Attributes: attributes(cfg, info),
		VersionInfo: ecs.VersionInfo{
			AgentVersion:  cfg.Version,
			AgentHash:     agentHash(),
			DockerVersion: "DockerVersion: " + info.EngineVersion,
		},
	}
	if len(cfg.GPUs) > 0 {
		// As the ECS agent registers GPUs: a STRINGSET of their IDs, which
		// the scheduler pins to containers (their gpuIds).
		req.Resources = append(req.Resources, ecs.Resource{Name: ecs.ResourceGPU, Type: ecs.ResourceTypeStringSet, StringSetValue: slices.Clone(cfg.GPUs)})
	}
	return req, nil
}

// attributes are the built-in attributes, the capabilities this agent
// honours, and cfg.Attributes (which override built-ins of the same name),
// sorted by name.
func attributes(cfg *Config, info runtime.Info) []ecs.Attribute {
	m := map[string]string{
		AttrOSType:           info.OS,
		AttrOSFamily:         strings.ToUpper(info.OS),
		AttrCPUArchitecture:  cpuArchitecture(info.Arch),
		AttrAvailabilityZone: cfg.AvailabilityZone,
		AttrInstanceType:     cfg.InstanceType,
	}
	for _, c := range capabilities(cfg, info) {
		m[c] = ""
	}
	maps.Copy(m, cfg.Attributes)
	out := make([]ecs.Attribute, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if k == AttrAvailabilityZone && m[k] == "" || k == AttrInstanceType && m[k] == "" {
			continue
		}
		out = append(out, ecs.Attribute{Name: k, Value: m[k]})
	}
	return out
}

// capabilities are the capability attributes of what this agent
// implements, named as the ECS agent names them (agent/app/agent_capability.go)
// and as ecs/taskdef_defaults.go derives requiresAttributes. The scheduler
// places a task only where every attribute its definition requires is
// present, so advertising one the agent does not honour would place tasks
// that then fail; leaving one out makes RunTask answer with a
// MISSING_ATTRIBUTE failure instead.
//
// Not advertised (their tasks are refused by Translate with the reason):
// task-iam-role, secrets.*,
// private-registry-authentication.secretsmanager, efs, efsAuth,
// fsxWindowsFileServer, firelens.*, task-eni, aws-appmesh, task-eia,
// env-files.s3, container-restart-policy, network.container-port-range,
// fault-injection, docker-plugin.<anything but local>, selinux, apparmor.
func capabilities(cfg *Config, info runtime.Info) []string {
	var out []string
	hi := maxDockerAPIMinor
	if v, ok := strings.CutPrefix(info.APIVersion, "1."); ok {
		if n, err := strconv.Atoi(v); err == nil {
			hi = min(n, maxDockerAPIMinor)
		}
	}
	for v := minDockerAPIMinor; v <= hi; v++ {
		out = append(out, capabilityPrefix+"docker-remote-api.1."+strconv.Itoa(v))
	}
	// Log drivers: the engine's among those ECS knows, none, and awslogs,
	// which is kept on this host (json-file) and read with `gantry logs`.
	for _, d := range []string{"json-file", "syslog", "journald", "gelf", "fluentd", "splunk"} {
		if info.LogDrivers == nil && d == "json-file" || slices.Contains(info.LogDrivers, d) {
			out = append(out, capabilityPrefix+"logging-driver."+d)
		}
	}
	out = append(out, capabilityPrefix+"logging-driver.none", capabilityPrefix+"logging-driver.awslogs",
		// awslogs needs no credentials here: nothing is shipped to CloudWatch.
		attributePrefix+"execution-role-awslogs")
	if cfg.AllowPrivileged {
		out = append(out, capabilityPrefix+"privileged-container")
	}
	out = append(out,
		attributePrefix+"container-health-check",    // healthCheck, reported as healthStatus
		attributePrefix+"container-ordering",        // dependsOn, startTimeout, stopTimeout
		attributePrefix+"pid-ipc-namespace-sharing", // pidMode, ipcMode
		attributePrefix+"docker-plugin.local",       // dockerVolumeConfiguration with the local driver
		// Task-level cpu and memory: memory caps every container (see
		// Translate); cpu is accounted for by the scheduler only.
		attributePrefix+"task-cpu-mem-limit",
		// ECR-style images of Gantry's account come from the built-in
		// registry with the instance's own token (agent.useBuiltinRegistry);
		// other registries' are pulled anonymously.
		capabilityPrefix+"ecr-auth",
		attributePrefix+"execution-role-ecr-pull",
	)
	return out
}
