package agent

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/agent/runtime"
	"github.com/gantry-dev/gantry/ecs"
)

// Docker labels the agent puts on every container. The com.amazonaws.ecs.*
// ones are the ECS agent's own, so tools written for ECS hosts find tasks'
// containers the same way here; dockerLabels of the same name are overridden.
const (
	LabelTaskARN               = "com.amazonaws.ecs.task-arn"
	LabelContainerName         = "com.amazonaws.ecs.container-name"
	LabelCluster               = "com.amazonaws.ecs.cluster"
	LabelTaskDefinitionFamily  = "com.amazonaws.ecs.task-definition-family"
	LabelTaskDefinitionVersion = "com.amazonaws.ecs.task-definition-version"
	// LabelContainerInstance holds the ARN of the container instance whose
	// agent created the container (or task-scoped volume), so several agents
	// can share one engine and a restarted agent finds its own containers
	// (Runtime.List).
	LabelContainerInstance = "dev.gantry.container-instance-arn"
	// LabelVolumeScope is "task" on the Docker volumes the agent creates for
	// one task (removed with its containers); shared volumes do not carry it.
	LabelVolumeScope = "dev.gantry.volume-scope"
)

// DefaultStopTimeout is how long a container gets between SIGTERM and SIGKILL
// when its definition has no stopTimeout: the ECS agent's default
// (ECS_CONTAINER_STOP_TIMEOUT, 30 s).
const DefaultStopTimeout = 30 * time.Second

// minCPUShares is the kernel's minimum; the ECS agent sends it for a
// container cpu of 0 or 1.
const minCPUShares = 2

// Environment variables the agent gives every container, as the ECS agent
// does on EC2.
const (
	EnvMetadataURIV4 = "ECS_CONTAINER_METADATA_URI_V4"
	EnvExecutionEnv  = "AWS_EXECUTION_ENV"
	executionEnvEC2  = "AWS_ECS_EC2"
	// EnvNvidiaVisibleDevices lists a GPU container's gpuIds.
	EnvNvidiaVisibleDevices = "NVIDIA_VISIBLE_DEVICES"
)

// TranslateOptions are what Translate needs besides the task: facts about
// the host and agent-wide settings. They do not vary from task to task.
type TranslateOptions struct {
	Cluster              string            // cluster name, for the com.amazonaws.ecs.cluster label
	ContainerInstanceARN string            // for LabelContainerInstance
	Labels               map[string]string // added to every container and task volume (tests mark theirs)
	DefaultStopTimeout   time.Duration     // 0: DefaultStopTimeout
	// OS and Arch are the host's in Go's naming ("linux", "amd64"), checked
	// against the task definition's runtimePlatform; empty: not checked.
	OS, Arch string
	// AllowPrivileged lets containers run privileged (gantry agent
	// --allow-privileged, the opposite of ECS_DISABLE_PRIVILEGED).
	AllowPrivileged bool
	// LogDrivers are the engine's log drivers (runtime.Info); nil: any.
	LogDrivers []string
	// SecurityOptions are the engine's (runtime.Info): AppArmor profiles and
	// SELinux labels are refused unless it enforces them.
	SecurityOptions []string
	// MetadataEndpoint is the base URL of the task metadata endpoint as
	// containers reach it, e.g. "http://172.17.0.1:51679"; empty: containers
	// get no ECS_CONTAINER_METADATA_URI_V4. MetadataSecret keys the
	// unguessable per-container path in it (see MetadataToken).
	MetadataEndpoint string
	MetadataSecret   []byte
	// ResolveImage maps an image reference to the one to pull and run: the
	// control plane's built-in registry for ECR-style references to
	// Gantry's account (ecr.Registry.Resolve). nil: images are used as given.
	ResolveImage func(image string) string
}

func (o TranslateOptions) resolveImage(image string) string {
	if o.ResolveImage == nil {
		return image
	}
	return o.ResolveImage(image)
}

// TaskPlan is a task ready for the runtime: its named volumes and its
// containers.
type TaskPlan struct {
	Containers []ContainerPlan // in definition order
	Volumes    []VolumePlan    // Docker volumes to provision before any container is created
	// CreateOrder lists indices of Containers so that a container named by
	// another's links or volumesFrom is created first.
	CreateOrder []int
}

// ContainerPlan is one container of a task, ready for the runtime.
type ContainerPlan struct {
	Name        string // the container definition's name
	Essential   bool   // its exit stops the task
	Spec        runtime.ContainerSpec
	StopTimeout time.Duration // SIGTERM to SIGKILL when the agent stops it
	// StartTimeout is how long containers that depend on this one (with
	// COMPLETE, SUCCESS or HEALTHY) wait, from its start, before giving up
	// (ECS's startTimeout); 0: they wait as long as it takes.
	StartTimeout time.Duration
	// DependsOn are the conditions to meet before this container starts:
	// its dependsOn, plus START on the containers its links name and, with
	// pidMode or ipcMode task, on the container holding the namespaces.
	DependsOn   []Dependency
	HealthCheck bool // it has a health check: its health is reported
	// LogDriver and LogOptions are the logConfiguration as written (awslogs
	// stays awslogs here while the container logs to json-file).
	LogDriver     string
	LogOptions    map[string]string
	MetadataToken string // the path segment of its metadata URI; "" without an endpoint
}

// Dependency is a condition on another container of the task.
type Dependency struct {
	Container string                 // its name in the task definition
	Condition ecs.ContainerCondition // START, COMPLETE, SUCCESS or HEALTHY
}

// VolumePlan is a Docker volume the agent provisions for a task.
type VolumePlan struct {
	Name string             // the task definition's volume name
	Spec runtime.VolumeSpec // the engine's volume: name, driver, options, labels
	// Shared volumes (dockerVolumeConfiguration scope shared) outlive the
	// task and are looked up by name; Autoprovision creates a missing one.
	// Task-scoped volumes are created for the task and removed with its
	// containers.
	Shared        bool
	Autoprovision bool
}

// RefusedError says which member of a task definition (or of a task's
// overrides) this agent will not run, and why. The agent stops such a task
// before creating any container; the message is the task's stoppedReason.
type RefusedError struct {
	Container string // the container definition's name; empty for task-level members
	Field     string // the member as ECS spells it, e.g. "linuxParameters", "portMappings[1].hostPort"
	Reason    string // lowercase, e.g. "not supported by the Gantry agent yet"
}

func (e *RefusedError) Error() string {
	if e.Container == "" {
		return e.Field + ": " + e.Reason
	}
	return fmt.Sprintf("container %s: %s: %s", e.Container, e.Field, e.Reason)
}

const notYet = "not supported by the Gantry agent yet"

// Translate turns an assigned task (its task definition and overrides) into
// a TaskPlan: one ContainerPlan per container definition, in definition
// order, and the Docker volumes to provision. It is a pure function: the
// same task always yields the same plan, including the container and
// volume names, so a retried create can never make a second container.
//
// Members that this agent does not implement are refused with a
// *RefusedError rather than ignored whenever ignoring them would change what
// runs, its security or its data (see docs/agent.md for the list); a plan
// the runtime would reject is refused too, before any container exists.
func Translate(task *ecs.Task, td *ecs.TaskDefinition, opts TranslateOptions) (TaskPlan, error) {
	if err := checkTask(td, opts); err != nil {
		return TaskPlan{}, err
	}
	ovs, err := containerOverrides(task.Overrides, td)
	if err != nil {
		return TaskPlan{}, err
	}
	mode, err := networkMode(td.NetworkMode)
	if err != nil {
		return TaskPlan{}, err
	}
	taskMemMiB := int32(0)
	taskMem := td.Memory
	if task.Overrides != nil && task.Overrides.Memory != "" {
		taskMem = task.Overrides.Memory
	}
	if taskMem != "" {
		m, ok := ecs.TaskMemoryMiB(taskMem)
		if !ok {
			return TaskPlan{}, &RefusedError{Field: "memory", Reason: fmt.Sprintf("%q is not a memory size", taskMem)}
		}
		taskMemMiB = m
	}
	id := TaskID(task.TaskARN)
	if id == "" {
		return TaskPlan{}, &RefusedError{Field: "taskArn", Reason: fmt.Sprintf("%q is not a task ARN", task.TaskARN)}
	}
	tc := &taskContext{task: task, td: td, opts: opts, mode: mode, taskMemMiB: taskMemMiB, taskID: id}
	if tc.volumes, err = tc.translateVolumes(); err != nil {
		return TaskPlan{}, err
	}

	plan := TaskPlan{Containers: make([]ContainerPlan, 0, len(td.ContainerDefinitions))}
	for i := range td.ContainerDefinitions {
		cd := &td.ContainerDefinitions[i]
		p, err := tc.translateContainer(i, cd, ovs[cd.Name])
		if err != nil {
			return TaskPlan{}, err
		}
		plan.Containers = append(plan.Containers, p)
	}
	for _, v := range td.Volumes { // the task definition's order, not the map's
		if p := tc.volumes[v.Name].plan; p != nil {
			plan.Volumes = append(plan.Volumes, *p)
		}
	}
	if plan.CreateOrder, err = createOrder(td); err != nil {
		return TaskPlan{}, err
	}
	if err := checkDependencies(plan.Containers); err != nil {
		return TaskPlan{}, err
	}
	return plan, nil
}

// taskContext is what translating one container needs of its task.
type taskContext struct {
	task       *ecs.Task
	td         *ecs.TaskDefinition
	opts       TranslateOptions
	mode       runtime.NetworkMode
	taskMemMiB int32
	taskID     string
	volumes    map[string]taskVolume // by the task definition's volume name
}

// containerName is the Docker name of the task's container named name.
func (tc *taskContext) containerName(name string) string {
	return ContainerName(tc.td.Family, tc.td.Revision, name, tc.taskID)
}

// baseLabels are the labels of everything the agent creates for the task.
func (tc *taskContext) baseLabels(extra map[string]string) map[string]string {
	labels := maps.Clone(extra)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelTaskARN] = tc.task.TaskARN
	labels[LabelCluster] = tc.opts.Cluster
	labels[LabelTaskDefinitionFamily] = tc.td.Family
	labels[LabelTaskDefinitionVersion] = strconv.Itoa(int(tc.td.Revision))
	if tc.opts.ContainerInstanceARN != "" {
		labels[LabelContainerInstance] = tc.opts.ContainerInstanceARN
	}
	maps.Copy(labels, tc.opts.Labels)
	return labels
}

func (tc *taskContext) translateContainer(index int, cd *ecs.ContainerDefinition, ov *ecs.ContainerOverride) (ContainerPlan, error) {
	refuse := func(field, format string, args ...any) error {
		return &RefusedError{Container: cd.Name, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	err := checkContainer(cd, tc.opts)
	if err != nil {
		return ContainerPlan{}, err
	}
	spec := runtime.ContainerSpec{
		Name:        tc.containerName(cd.Name),
		Image:       tc.opts.resolveImage(cd.Image),
		Entrypoint:  cd.EntryPoint,
		Command:     cd.Command,
		WorkingDir:  cd.WorkingDirectory,
		User:        cd.User,
		NetworkMode: tc.mode,
	}
	p := ContainerPlan{Name: cd.Name, Essential: cd.Essential == nil || *cd.Essential}

	// Resources: container values, then overrides; ECS memory is MiB.
	cpu, mem, res := cd.CPU, cd.Memory, cd.MemoryReservation
	if ov != nil {
		if ov.CPU != nil {
			cpu = *ov.CPU
		}
		if ov.Memory != nil {
			mem = ov.Memory
		}
		if ov.MemoryReservation != nil {
			res = ov.MemoryReservation
		}
		if len(ov.Command) > 0 {
			spec.Command = ov.Command
		}
	}
	if cpu < 0 {
		return p, refuse("cpu", "%d must not be negative", cpu)
	}
	if spec.GPUs, err = tc.gpus(cd, ov); err != nil {
		return p, err
	}
	spec.CPUShares = int64(max(cpu, minCPUShares))
	if mem != nil {
		if *mem <= 0 {
			return p, refuse("memory", "%d must be positive", *mem)
		}
		spec.MemoryLimit = int64(*mem) << 20
	}
	if res != nil {
		if *res <= 0 {
			return p, refuse("memoryReservation", "%d must be positive", *res)
		}
		spec.MemoryReservation = int64(*res) << 20
	}
	// The ECS agent puts a task's containers in one cgroup limited to the
	// task's memory; runtime.ContainerSpec has no cgroup parent, so no
	// container may exceed the task's memory on its own.
	if tc.taskMemMiB > 0 {
		limit := int64(tc.taskMemMiB) << 20
		if spec.MemoryLimit == 0 || spec.MemoryLimit > limit {
			spec.MemoryLimit = limit
		}
	}

	// Environment: what the ECS agent injects, the definition's, then the
	// overrides' (same name wins).
	spec.Env = map[string]string{EnvExecutionEnv: executionEnvEC2}
	if tc.opts.MetadataEndpoint != "" && len(tc.opts.MetadataSecret) > 0 {
		p.MetadataToken = MetadataToken(tc.opts.MetadataSecret, tc.task.TaskARN, cd.Name)
		spec.Env[EnvMetadataURIV4] = strings.TrimRight(tc.opts.MetadataEndpoint, "/") + "/v4/" + p.MetadataToken
	}
	for _, kv := range cd.Environment {
		spec.Env[kv.Name] = kv.Value
	}
	if ov != nil {
		for _, kv := range ov.Environment {
			spec.Env[kv.Name] = kv.Value
		}
	}
	if len(spec.GPUs) > 0 {
		// As the ECS agent merges it into a GPU container's environment.
		spec.Env[EnvNvidiaVisibleDevices] = strings.Join(spec.GPUs, ",")
	}

	if isTrue(cd.DisableNetworking) {
		if len(cd.PortMappings) > 0 {
			return p, refuse("disableNetworking", "a container without networking publishes no ports")
		}
		spec.NetworkMode = runtime.NetworkNone
	}
	ports, err := portMappings(cd, spec.NetworkMode)
	if err != nil {
		return p, err
	}
	spec.Ports = ports
	if err := tc.networkSettings(cd, &spec); err != nil {
		return p, err
	}
	if err := tc.logConfig(cd, &spec, &p); err != nil {
		return p, err
	}

	stop := cmp.Or(tc.opts.DefaultStopTimeout, DefaultStopTimeout)
	if cd.StopTimeout != nil {
		if *cd.StopTimeout < 0 {
			return p, refuse("stopTimeout", "%d must not be negative", *cd.StopTimeout)
		}
		stop = time.Duration(*cd.StopTimeout) * time.Second
	}
	spec.StopTimeout = stop
	p.StopTimeout = stop
	if cd.StartTimeout != nil {
		if *cd.StartTimeout < 0 {
			return p, refuse("startTimeout", "%d must not be negative", *cd.StartTimeout)
		}
		p.StartTimeout = time.Duration(*cd.StartTimeout) * time.Second
	}

	spec.Labels = tc.baseLabels(cd.DockerLabels)
	spec.Labels[LabelContainerName] = cd.Name

	if err := tc.storage(cd, &spec); err != nil {
		return p, err
	}
	if err := tc.linuxParameters(cd, &spec); err != nil {
		return p, err
	}
	if err := tc.security(cd, &spec); err != nil {
		return p, err
	}
	if err := tc.namespaces(index, cd, &spec, &p); err != nil {
		return p, err
	}
	for _, u := range cd.Ulimits {
		spec.Ulimits = append(spec.Ulimits, runtime.Ulimit{Name: string(u.Name), Soft: int64(u.SoftLimit), Hard: int64(u.HardLimit)})
	}
	for _, sc := range cd.SystemControls {
		if sc.Namespace == "" {
			return p, refuse("systemControls.namespace", "required")
		}
		if spec.Sysctls == nil {
			spec.Sysctls = map[string]string{}
		}
		spec.Sysctls[sc.Namespace] = sc.Value
	}
	if hc := cd.HealthCheck; hc != nil {
		h, err := healthCheck(cd.Name, hc)
		if err != nil {
			return p, err
		}
		spec.HealthCheck = h
		p.HealthCheck = true
	}
	deps, err := dependencies(cd, tc.td)
	if err != nil {
		return p, err
	}
	p.DependsOn = append(deps, p.DependsOn...)

	if err := spec.Validate(); err != nil {
		return p, refuse("containerDefinition", "%v", err)
	}
	p.Spec = spec
	return p, nil
}

// gpus are the IDs of the GPUs the scheduler pinned to the container (its
// gpuIds in the task), as many as its GPU resourceRequirement (or its
// override's) asks for: fewer would run it without the GPUs it needs.
func (tc *taskContext) gpus(cd *ecs.ContainerDefinition, ov *ecs.ContainerOverride) ([]string, error) {
	reqs := cd.ResourceRequirements
	if ov != nil && len(ov.ResourceRequirements) > 0 {
		reqs = ov.ResourceRequirements
	}
	want := 0
	for _, r := range reqs {
		if r.Type == ecs.ResourceTypeGPU {
			n, ok := ecs.GPUCount(r.Value)
			if !ok {
				return nil, &RefusedError{Container: cd.Name, Field: "resourceRequirements", Reason: fmt.Sprintf("GPU value %q is not a positive number", r.Value)}
			}
			want = n
		}
	}
	var ids []string
	for _, c := range tc.task.Containers {
		if c.Name == cd.Name {
			ids = c.GPUIDs
		}
	}
	if len(ids) != want {
		return nil, &RefusedError{Container: cd.Name, Field: "resourceRequirements",
			Reason: fmt.Sprintf("the container requires %d GPUs and the task assigns it %d", want, len(ids))}
	}
	return slices.Clone(ids), nil
}

// networkSettings maps hostname, DNS, extra hosts and links.
func (tc *taskContext) networkSettings(cd *ecs.ContainerDefinition, spec *runtime.ContainerSpec) error {
	refuse := func(field, format string, args ...any) error {
		return &RefusedError{Container: cd.Name, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if cd.Hostname != "" {
		if spec.NetworkMode == runtime.NetworkHost {
			return refuse("hostname", "a container in host network mode has the host's hostname")
		}
		spec.Hostname = cd.Hostname
	}
	spec.DNS = slices.Clone(cd.DNSServers)
	spec.DNSSearch = slices.Clone(cd.DNSSearchDomains)
	for _, h := range cd.ExtraHosts {
		spec.ExtraHosts = append(spec.ExtraHosts, runtime.HostEntry{Hostname: h.Hostname, IP: h.IPAddress})
	}
	for i, l := range cd.Links {
		name, alias, _ := strings.Cut(l, ":")
		if spec.NetworkMode != runtime.NetworkBridge {
			return refuse("links", "links need network mode bridge")
		}
		if findContainer(tc.td, name) == nil || name == cd.Name {
			return refuse("links["+strconv.Itoa(i)+"]", "%q names no other container of the task", name)
		}
		spec.Links = append(spec.Links, runtime.Link{Container: tc.containerName(name), Alias: cmp.Or(alias, name)})
	}
	return nil
}

// logConfig maps logConfiguration. awslogs is accepted and kept on this
// host (json-file): Gantry ships no logs to CloudWatch, and `gantry logs`
// reads them. Other drivers are passed to the engine if it has them.
func (tc *taskContext) logConfig(cd *ecs.ContainerDefinition, spec *runtime.ContainerSpec, p *ContainerPlan) error {
	lc := cd.LogConfiguration
	if lc == nil {
		return nil
	}
	refuse := func(field, format string, args ...any) error {
		return &RefusedError{Container: cd.Name, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if len(lc.SecretOptions) > 0 {
		return refuse("logConfiguration.secretOptions", "secrets from SSM or Secrets Manager are %s", notYet)
	}
	p.LogDriver, p.LogOptions = string(lc.LogDriver), maps.Clone(lc.Options)
	switch lc.LogDriver {
	case ecs.LogDriverAwslogs:
		spec.LogConfig = runtime.LogConfig{Driver: string(ecs.LogDriverJSONFile)}
		return nil
	case ecs.LogDriverAwsfirelens:
		return refuse("logConfiguration.logDriver", "awsfirelens (FireLens) is %s", notYet)
	case "none", ecs.LogDriverJSONFile:
	default:
		if tc.opts.LogDrivers != nil && !slices.Contains(tc.opts.LogDrivers, string(lc.LogDriver)) {
			return refuse("logConfiguration.logDriver", "%q: this host's engine has no such log driver (it has %s)",
				lc.LogDriver, strings.Join(tc.opts.LogDrivers, ", "))
		}
	}
	spec.LogConfig = runtime.LogConfig{Driver: string(lc.LogDriver), Options: maps.Clone(lc.Options)}
	return nil
}

// linuxParameters maps capabilities, devices, init, shared memory and tmpfs.
func (tc *taskContext) linuxParameters(cd *ecs.ContainerDefinition, spec *runtime.ContainerSpec) error {
	lp := cd.LinuxParameters
	if lp == nil {
		return nil
	}
	refuse := func(field, format string, args ...any) error {
		return &RefusedError{Container: cd.Name, Field: "linuxParameters." + field, Reason: fmt.Sprintf(format, args...)}
	}
	if lp.MaxSwap != nil || lp.Swappiness != nil {
		field := "maxSwap"
		if lp.MaxSwap == nil {
			field = "swappiness"
		}
		return refuse(field, "swap settings are %s", notYet)
	}
	if c := lp.Capabilities; c != nil {
		spec.CapAdd, spec.CapDrop = slices.Clone(c.Add), slices.Clone(c.Drop)
	}
	for i, d := range lp.Devices {
		perms := ""
		for _, p := range d.Permissions {
			switch p {
			case ecs.DeviceCgroupPermissionRead:
				perms += "r"
			case ecs.DeviceCgroupPermissionWrite:
				perms += "w"
			case ecs.DeviceCgroupPermissionMknod:
				perms += "m"
			default:
				return refuse("devices["+strconv.Itoa(i)+"].permissions", "%q (read, write or mknod)", p)
			}
		}
		spec.Devices = append(spec.Devices, runtime.Device{HostPath: d.HostPath, ContainerPath: d.ContainerPath, Permissions: perms})
	}
	spec.Init = isTrue(lp.InitProcessEnabled)
	if lp.SharedMemorySize != nil {
		if *lp.SharedMemorySize <= 0 {
			return refuse("sharedMemorySize", "%d must be positive", *lp.SharedMemorySize)
		}
		spec.ShmSize = int64(*lp.SharedMemorySize) << 20
	}
	for i, t := range lp.Tmpfs {
		if t.Size <= 0 {
			return refuse("tmpfs["+strconv.Itoa(i)+"].size", "%d must be positive", t.Size)
		}
		spec.Tmpfs = append(spec.Tmpfs, runtime.Tmpfs{Path: t.ContainerPath, Size: int64(t.Size) << 20, Options: slices.Clone(t.MountOptions)})
	}
	return nil
}

// security maps privileged, the read-only root and dockerSecurityOptions.
func (tc *taskContext) security(cd *ecs.ContainerDefinition, spec *runtime.ContainerSpec) error {
	refuse := func(field, format string, args ...any) error {
		return &RefusedError{Container: cd.Name, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if isTrue(cd.Privileged) {
		if !tc.opts.AllowPrivileged {
			return refuse("privileged", "privileged containers are not allowed on this container instance (gantry agent --allow-privileged)")
		}
		spec.Privileged = true
	}
	spec.ReadonlyRootfs = isTrue(cd.ReadonlyRootFilesystem)
	for i, o := range cd.DockerSecurityOptions {
		field := "dockerSecurityOptions[" + strconv.Itoa(i) + "]"
		name, value, _ := strings.Cut(o, ":")
		switch name {
		case "no-new-privileges":
			if value != "" && value != "true" {
				return refuse(field, "%q (no-new-privileges or no-new-privileges:true)", o)
			}
			spec.SecurityOpt = append(spec.SecurityOpt, "no-new-privileges")
		case "apparmor", "label":
			feature := map[string]string{"apparmor": "apparmor", "label": "selinux"}[name]
			if !hasSecurityFeature(tc.opts.SecurityOptions, feature) {
				return refuse(field, "%q: this host's engine does not enforce %s", o, feature)
			}
			if value == "" {
				return refuse(field, "%q needs a value", o)
			}
			spec.SecurityOpt = append(spec.SecurityOpt, name+"="+value)
		case "credentialspec":
			return refuse(field, "credential specs are for Windows containers")
		default:
			return refuse(field, "%q (no-new-privileges, apparmor:PROFILE or label:VALUE)", o)
		}
	}
	return nil
}

func hasSecurityFeature(opts []string, feature string) bool {
	for _, o := range opts {
		for _, kv := range strings.Split(o, ",") {
			if kv == "name="+feature || o == feature {
				return true
			}
		}
	}
	return false
}

// namespaces maps the task's pidMode and ipcMode. host is the host's
// namespace; task shares one namespace among the task's containers. The ECS
// agent holds it in a pause container; Gantry has no pause image, so the
// namespace is the holder's (namespaceHolder), which the others join once it
// has started (an implicit START dependency).
func (tc *taskContext) namespaces(index int, cd *ecs.ContainerDefinition, spec *runtime.ContainerSpec, p *ContainerPlan) error {
	td := tc.td
	shared := false
	join := func() (string, error) {
		shared = true
		h, err := namespaceHolder(td)
		if err != nil {
			return "", err
		}
		if h == index {
			return "", nil
		}
		return "container:" + tc.containerName(td.ContainerDefinitions[h].Name), nil
	}
	var err error
	switch td.PidMode {
	case "":
	case ecs.PidModeHost:
		spec.PidMode = "host"
	case ecs.PidModeTask:
		if spec.PidMode, err = join(); err != nil {
			return err
		}
	default:
		return &RefusedError{Field: "pidMode", Reason: fmt.Sprintf("%q (host or task)", td.PidMode)}
	}
	switch td.IpcMode {
	case "":
	case ecs.IpcModeHost:
		spec.IpcMode = "host"
	case ecs.IpcModeNone:
		spec.IpcMode = "none"
	case ecs.IpcModeTask:
		if spec.IpcMode, err = join(); err != nil {
			return err
		}
		if spec.IpcMode == "" {
			spec.IpcMode = "shareable"
		}
	default:
		return &RefusedError{Field: "ipcMode", Reason: fmt.Sprintf("%q (host, none or task)", td.IpcMode)}
	}
	if h, _ := namespaceHolder(td); shared && h != index {
		p.DependsOn = append(p.DependsOn, Dependency{Container: td.ContainerDefinitions[h].Name, Condition: ecs.ContainerConditionStart})
	}
	return nil
}

// namespaceHolder is the container whose namespaces the task's containers
// share with pidMode or ipcMode task: the first essential one that depends
// on no other (it must start first, and its exit, which ends a PID
// namespace, must stop the task).
func namespaceHolder(td *ecs.TaskDefinition) (int, error) {
	for i := range td.ContainerDefinitions {
		cd := &td.ContainerDefinitions[i]
		if (cd.Essential == nil || *cd.Essential) && len(cd.DependsOn) == 0 && len(cd.Links) == 0 {
			return i, nil
		}
	}
	return 0, &RefusedError{Field: "pidMode", Reason: "with pidMode or ipcMode task, the Gantry agent shares the namespaces of an essential " +
		"container that depends on no other (it has no pause container); this task definition has none"}
}

// healthCheck maps ECS's health check, passing its defaults explicitly
// (interval 30 s, timeout 5 s, retries 3, no start period), since Docker's
// differ (timeout 30 s).
func healthCheck(container string, hc *ecs.HealthCheck) (*runtime.HealthCheck, error) {
	refuse := func(format string, args ...any) error {
		return &RefusedError{Container: container, Field: "healthCheck.command", Reason: fmt.Sprintf(format, args...)}
	}
	cmd := hc.Command
	if len(cmd) < 2 || cmd[1] == "" {
		return nil, refuse("%q: want [\"CMD\", executable, args...] or [\"CMD-SHELL\", command]", cmd)
	}
	var test []string
	switch cmd[0] {
	case "CMD":
		test = slices.Clone(cmd)
	case "CMD-SHELL":
		test = []string{"CMD-SHELL", strings.Join(cmd[1:], " ")}
	default:
		return nil, refuse("%q must start with CMD or CMD-SHELL", cmd)
	}
	sec := func(p *int32, def int32) time.Duration {
		if p == nil {
			return time.Duration(def) * time.Second
		}
		return time.Duration(*p) * time.Second
	}
	h := &runtime.HealthCheck{
		Test:        test,
		Interval:    sec(hc.Interval, ecs.DefaultHealthCheckInterval),
		Timeout:     sec(hc.Timeout, ecs.DefaultHealthCheckTimeout),
		StartPeriod: sec(hc.StartPeriod, 0),
		Retries:     int(ecs.DefaultHealthCheckRetries),
	}
	if hc.Retries != nil {
		h.Retries = int(*hc.Retries)
	}
	if h.Interval <= 0 || h.Timeout <= 0 || h.Retries <= 0 || h.StartPeriod < 0 {
		return nil, &RefusedError{Container: container, Field: "healthCheck",
			Reason: "interval, timeout and retries must be positive, startPeriod not negative"}
	}
	return h, nil
}

func portMappings(cd *ecs.ContainerDefinition, mode runtime.NetworkMode) ([]runtime.PortMapping, error) {
	var out []runtime.PortMapping
	for j, pm := range cd.PortMappings {
		field := func(name string) string { return "portMappings[" + strconv.Itoa(j) + "]." + name }
		refuse := func(name, format string, args ...any) error {
			return &RefusedError{Container: cd.Name, Field: field(name), Reason: fmt.Sprintf(format, args...)}
		}
		if pm.ContainerPortRange != "" {
			return nil, refuse("containerPortRange", notYet)
		}
		if pm.ContainerPort == nil || *pm.ContainerPort < 1 || *pm.ContainerPort > 65535 {
			return nil, refuse("containerPort", "required, 1 to 65535")
		}
		cp := uint16(*pm.ContainerPort)
		var hp uint16
		if pm.HostPort != nil {
			if *pm.HostPort < 0 || *pm.HostPort > 65535 {
				return nil, refuse("hostPort", "%d is not a port (0 to 65535)", *pm.HostPort)
			}
			hp = uint16(*pm.HostPort)
		}
		var proto runtime.Protocol
		switch pm.Protocol {
		case "", ecs.TransportProtocolTCP:
			proto = runtime.TCP
		case ecs.TransportProtocolUDP:
			proto = runtime.UDP
		default:
			return nil, refuse("protocol", "%q (tcp or udp)", pm.Protocol)
		}
		switch mode {
		case runtime.NetworkNone:
			return nil, refuse("containerPort", "a container in network mode none publishes no ports")
		case runtime.NetworkHost:
			if hp != 0 && hp != cp {
				return nil, refuse("hostPort", "%d must equal containerPort %d in host network mode", hp, cp)
			}
			hp = cp
		}
		out = append(out, runtime.PortMapping{ContainerPort: cp, HostPort: hp, Protocol: proto})
	}
	return out, nil
}

func networkMode(m ecs.NetworkMode) (runtime.NetworkMode, error) {
	switch m {
	case "", ecs.NetworkModeBridge:
		return runtime.NetworkBridge, nil // ECS's default on Linux EC2 instances
	case ecs.NetworkModeHost:
		return runtime.NetworkHost, nil
	case ecs.NetworkModeNone:
		return runtime.NetworkNone, nil
	case ecs.NetworkModeAwsvpc:
		return "", &RefusedError{Field: "networkMode", Reason: `"awsvpc" needs a network interface per task, which the Gantry agent does not provide (bridge, host or none)`}
	}
	return "", &RefusedError{Field: "networkMode", Reason: fmt.Sprintf("%q (bridge, host or none)", m)}
}

// containerOverrides indexes a task's container overrides by name, refusing
// those that name no container or ask for what this agent cannot do.
func containerOverrides(o *ecs.TaskOverride, td *ecs.TaskDefinition) (map[string]*ecs.ContainerOverride, error) {
	out := map[string]*ecs.ContainerOverride{}
	if o == nil {
		return out, nil
	}
	if o.EphemeralStorage != nil {
		return nil, &RefusedError{Field: "overrides.ephemeralStorage", Reason: "only Fargate tasks have ephemeral storage settings"}
	}
	if len(o.InferenceAcceleratorOverrides) > 0 {
		return nil, &RefusedError{Field: "overrides.inferenceAcceleratorOverrides", Reason: notYet}
	}
	names := map[string]bool{}
	for i := range td.ContainerDefinitions {
		names[td.ContainerDefinitions[i].Name] = true
	}
	for i := range o.ContainerOverrides {
		co := &o.ContainerOverrides[i]
		field := "overrides.containerOverrides[" + strconv.Itoa(i) + "]"
		switch {
		case !names[co.Name]:
			return nil, &RefusedError{Field: field + ".name", Reason: fmt.Sprintf("the task definition has no container named %q", co.Name)}
		case out[co.Name] != nil:
			return nil, &RefusedError{Field: field + ".name", Reason: fmt.Sprintf("container %q is overridden twice", co.Name)}
		case len(co.EnvironmentFiles) > 0:
			return nil, &RefusedError{Container: co.Name, Field: field + ".environmentFiles", Reason: "environment files in S3 are " + notYet}
		case slices.ContainsFunc(co.ResourceRequirements, func(r ecs.ResourceRequirement) bool { return r.Type != ecs.ResourceTypeGPU }):
			return nil, &RefusedError{Container: co.Name, Field: field + ".resourceRequirements", Reason: "inference accelerators are " + notYet}
		}
		out[co.Name] = co
	}
	return out, nil
}

// checkTask refuses task-level members this agent does not implement.
func checkTask(td *ecs.TaskDefinition, opts TranslateOptions) error {
	refuse := func(field, reason string) error { return &RefusedError{Field: field, Reason: reason} }
	switch {
	case len(td.ContainerDefinitions) == 0:
		return refuse("containerDefinitions", "the task definition has no containers")
	case td.ProxyConfiguration != nil:
		return refuse("proxyConfiguration", "App Mesh proxies need awsvpc, which the Gantry agent does not provide")
	case len(td.InferenceAccelerators) > 0:
		return refuse("inferenceAccelerators", notYet)
	case td.EphemeralStorage != nil:
		return refuse("ephemeralStorage", "only Fargate tasks have ephemeral storage settings")
	case td.EnableFaultInjection != nil && *td.EnableFaultInjection:
		return refuse("enableFaultInjection", notYet)
	}
	if rp := td.RuntimePlatform; rp != nil {
		if f := rp.OperatingSystemFamily; f != "" && opts.OS != "" && (f == ecs.OSFamilyLinux) != (opts.OS == "linux") {
			return refuse("runtimePlatform.operatingSystemFamily", fmt.Sprintf("%s tasks cannot run on this %s host", f, opts.OS))
		}
		if a := rp.CPUArchitecture; a != "" && opts.Arch != "" && !strings.EqualFold(string(a), cpuArchitecture(opts.Arch)) {
			return refuse("runtimePlatform.cpuArchitecture", fmt.Sprintf("%s tasks cannot run on this %s host", a, cpuArchitecture(opts.Arch)))
		}
	}
	return nil
}

// unsupportedContainerMembers are container definition members this agent
// does not implement. Each would change what runs, its security or its data
// if ignored, so a task using one is refused, with why.
var unsupportedContainerMembers = []struct {
	field  string
	reason string
	set    func(cd *ecs.ContainerDefinition) bool
}{
	{"repositoryCredentials", "private registry credentials from Secrets Manager are " + notYet,
		func(cd *ecs.ContainerDefinition) bool { return cd.RepositoryCredentials != nil }},
	{"restartPolicy", "container restart policies are " + notYet, func(cd *ecs.ContainerDefinition) bool {
		return cd.RestartPolicy != nil && cd.RestartPolicy.Enabled != nil && *cd.RestartPolicy.Enabled
	}},
	{"environmentFiles", "environment files in S3 are " + notYet,
		func(cd *ecs.ContainerDefinition) bool { return len(cd.EnvironmentFiles) > 0 }},
	{"secrets", "secrets from SSM Parameter Store or Secrets Manager are " + notYet,
		func(cd *ecs.ContainerDefinition) bool { return len(cd.Secrets) > 0 }},
	{"interactive", "stdin is " + notYet, func(cd *ecs.ContainerDefinition) bool { return isTrue(cd.Interactive) }},
	{"pseudoTerminal", "TTYs are " + notYet, func(cd *ecs.ContainerDefinition) bool { return isTrue(cd.PseudoTerminal) }},
	{"resourceRequirements", "inference accelerators are " + notYet, func(cd *ecs.ContainerDefinition) bool {
		return slices.ContainsFunc(cd.ResourceRequirements, func(r ecs.ResourceRequirement) bool { return r.Type != ecs.ResourceTypeGPU })
	}},
	{"firelensConfiguration", "FireLens is " + notYet,
		func(cd *ecs.ContainerDefinition) bool { return cd.FirelensConfiguration != nil }},
	{"credentialSpecs", "credential specs are for Windows containers",
		func(cd *ecs.ContainerDefinition) bool { return len(cd.CredentialSpecs) > 0 }},
}

func checkContainer(cd *ecs.ContainerDefinition, opts TranslateOptions) error {
	if cd.Name == "" {
		return &RefusedError{Field: "containerDefinitions.name", Reason: "required"}
	}
	if cd.Image == "" {
		return &RefusedError{Container: cd.Name, Field: "image", Reason: "required"}
	}
	for _, m := range unsupportedContainerMembers {
		if m.set(cd) {
			return &RefusedError{Container: cd.Name, Field: m.field, Reason: m.reason}
		}
	}
	return nil
}

func isTrue(b *bool) bool { return b != nil && *b }

func findContainer(td *ecs.TaskDefinition, name string) *ecs.ContainerDefinition {
	for i := range td.ContainerDefinitions {
		if td.ContainerDefinitions[i].Name == name {
			return &td.ContainerDefinitions[i]
		}
	}
	return nil
}

// ContainerName is the Docker name of a task's container, deterministic as
// the runtime's restart safety needs: the ECS agent's
// ecs-<family>-<revision>-<container>-<suffix>, with the task ID as suffix
// instead of a random one.
func ContainerName(family string, revision int32, container, taskID string) string {
	return "ecs-" + family + "-" + strconv.Itoa(int(revision)) + "-" + container + "-" + taskID
}

// TaskID is the last segment of a task ARN
// (arn:aws:ecs:<region>:<account>:task/<cluster>/<id>), or "" if arn is
// not one.
func TaskID(arn string) string {
	a, ok := ecs.ParseARN(arn)
	if !ok || a.Kind != "task" {
		return ""
	}
	id := a.Resource[strings.LastIndexByte(a.Resource, '/')+1:]
	if id == "" || !validNameChars(id) {
		return ""
	}
	return id
}

func validNameChars(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// cpuArchitecture is ECS's name for a GOARCH (ecs.cpu-architecture,
// runtimePlatform.cpuArchitecture).
func cpuArchitecture(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "arm64"
	}
	return goarch
}
