package ecs

import (
	"strconv"
	"strings"
)

// validateContainerIdentity checks name and image, ECS's first questions.
func validateContainerIdentity(cd *ContainerDefinition) error {
	if cd.Name == "" {
		return ClientError("Container.name should not be null or empty.")
	}
	if len(cd.Name) > 255 {
		return ClientError("Container.name must be at most 255 characters long.")
	}
	if !validName(cd.Name, 255) {
		return ClientError("Container.name contains invalid characters.")
	}
	if cd.Image == "" {
		return ClientError("Container.image should not be null or empty.")
	}
	return validateImage(cd.Image)
}

// validateImage applies the API reference's image rule: "up to 255
// characters ... letters (uppercase and lowercase), numbers, hyphens,
// underscores, colons, periods, forward slashes, and number signs (#)";
// for repository@digest the limit applies before the @, and the digest must
// be sha256: and 64 hexadecimal characters. Spaces, $, {, }, <, > and the
// like are "Container.image contains invalid characters." (an unexpanded
// "$IMAGE" is the classic way to meet that message).
func validateImage(img string) error {
	name, digest, hasDigest := strings.Cut(img, "@")
	for i := 0; i < len(name); i++ {
		b := name[i]
		if !(isAlnum(b) || strings.IndexByte("-_:./#", b) >= 0) {
			return ClientError("Container.image contains invalid characters.")
		}
	}
	if name == "" || len(name) > 255 {
		return ClientError("Container.image must be 1 to 255 characters long (before any @digest).")
	}
	if hasDigest {
		hex, ok := strings.CutPrefix(digest, "sha256:")
		if !ok || len(hex) != 64 || strings.Trim(strings.ToLower(hex), "0123456789abcdef") != "" {
			return ClientError("Container.image has an invalid digest: only sha256: followed by 64 hexadecimal characters is supported.")
		}
	}
	return nil
}

// validateContainer applies the per-container rules.
func (c *taskCheck) validateContainer(cd *ContainerDefinition) error {
	for _, f := range []func(*ContainerDefinition) error{
		c.validateMemory,
		c.validatePorts,
		c.validateNetworkOptions,
		c.validateReferences,
		validateHealthCheck,
		validateTimeouts,
		validateLimits,
		c.validateLogging,
		c.validateSecrets,
		c.validateResources,
		validateRestartPolicy,
	} {
		if err := f(cd); err != nil {
			return err
		}
	}
	return nil
}

// dockerMinMemoryMiB is the smallest memory limit or reservation Docker
// 20.10+ accepts ("don't specify less than 6 MiB", API reference); a smaller
// value would register but never start, so Gantry refuses it up front.
const dockerMinMemoryMiB = 6

// validateMemory: "If using the EC2 launch type, you must specify either a
// task-level memory value or a container-level memory value" and "If you
// specify both ... memory must be greater than [or equal to] memoryReservation".
func (c *taskCheck) validateMemory(cd *ContainerDefinition) error {
	if cd.CPU < 0 {
		return ClientError("Invalid 'cpu' setting for container '%s'.", cd.Name)
	}
	if cd.Memory != nil && *cd.Memory < dockerMinMemoryMiB && !c.windows() {
		return ClientError("Invalid 'memory' setting for container '%s'. The minimum is %d MiB.", cd.Name, dockerMinMemoryMiB)
	}
	if cd.MemoryReservation != nil && *cd.MemoryReservation < dockerMinMemoryMiB && !c.windows() {
		return ClientError("Invalid 'memoryReservation' setting for container '%s'. The minimum is %d MiB.", cd.Name, dockerMinMemoryMiB)
	}
	if c.memory == 0 && cd.Memory == nil && cd.MemoryReservation == nil {
		return ClientError("Invalid setting for container '%s'. At least one of 'memory' or 'memoryReservation' must be specified.", cd.Name)
	}
	if cd.Memory != nil && cd.MemoryReservation != nil && *cd.Memory < *cd.MemoryReservation {
		return ClientError("Invalid setting for container '%s'. 'memory' must be greater than or equal to 'memoryReservation'.", cd.Name)
	}
	return nil
}

// validatePorts applies the port mapping rules of the API reference
// (PortMapping): ports 1-65535; in awsvpc and host modes "the hostPort can
// be left blank or it must be the same value as the containerPort"; no
// port mappings in none mode; containerPortRange only in bridge and awsvpc
// modes, without containerPort or hostPort, as "start-end".
func (c *taskCheck) validatePorts(cd *ContainerDefinition) error {
	mode := c.mode()
	if mode == NetworkModeNone && len(cd.PortMappings) > 0 {
		return ClientError("Port mappings are not supported when networkMode=none.")
	}
	for _, pm := range cd.PortMappings {
		if pm.ContainerPortRange != "" {
			if err := validatePortRange(cd.Name, mode, pm); err != nil {
				return err
			}
		} else if pm.ContainerPort == nil || *pm.ContainerPort < 1 || *pm.ContainerPort > 65535 {
			return ClientError("Invalid 'containerPort' setting for container '%s'.", cd.Name)
		}
		if pm.HostPort != nil {
			hp := *pm.HostPort
			if hp < 0 || hp > 65535 {
				return ClientError("Invalid 'hostPort' setting for container '%s'.", cd.Name)
			}
			if hp != 0 && pm.ContainerPort != nil && hp != *pm.ContainerPort && (mode == NetworkModeAwsvpc || mode == NetworkModeHost) {
				return ClientError("When networkMode=%s, the host ports and container ports in port mappings must match.", mode)
			}
		}
		if pm.Name != "" && !validPortName(pm.Name) {
			return ClientError("Invalid port mapping name '%s' for container '%s'. Up to 64 lowercase letters, numbers, underscores and hyphens are allowed, not starting with a hyphen.", pm.Name, cd.Name)
		}
	}
	return nil
}

func validatePortRange(container string, mode NetworkMode, pm PortMapping) error {
	if pm.ContainerPort != nil || pm.HostPort != nil {
		return ClientError("Invalid port mapping for container '%s'. Specify either containerPort or containerPortRange; hostPort cannot be used with containerPortRange.", container)
	}
	if mode != NetworkModeBridge && mode != NetworkModeAwsvpc {
		return ClientError("containerPortRange is only supported when networkMode is bridge or awsvpc.")
	}
	lo, hi, ok := strings.Cut(pm.ContainerPortRange, "-")
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if !ok || err1 != nil || err2 != nil || a < 1 || b > 65535 || a >= b {
		return ClientError("Invalid 'containerPortRange' setting for container '%s'. Use \"start-end\" with 1 <= start < end <= 65535.", container)
	}
	return nil
}

// validPortName: "up to 64 characters ... lowercase letters, numbers,
// underscores (_), and hyphens (-). The name can't start with a hyphen."
func validPortName(s string) bool {
	if len(s) > 64 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}

// validateNetworkOptions: links only in bridge mode; hostname and
// extraHosts not in awsvpc mode (API reference for each member).
func (c *taskCheck) validateNetworkOptions(cd *ContainerDefinition) error {
	mode := c.mode()
	if len(cd.Links) > 0 && mode != NetworkModeBridge {
		return ClientError("Links are not supported when networkMode=%s.", mode)
	}
	if mode == NetworkModeAwsvpc {
		if cd.Hostname != "" {
			return ClientError("hostname is not supported on container when networkMode=awsvpc.")
		}
		if len(cd.ExtraHosts) > 0 {
			return ClientError("extraHosts is not supported on container when networkMode=awsvpc.")
		}
	}
	return nil
}

// validateReferences: links and volumesFrom name containers, mountPoints
// name volumes, of this task definition.
func (c *taskCheck) validateReferences(cd *ContainerDefinition) error {
	for _, l := range cd.Links {
		name, _, _ := strings.Cut(l, ":")
		if c.containers[name] == nil || name == cd.Name {
			return ClientError("Invalid 'links' setting. Unknown container: '%s'.", name)
		}
	}
	for _, v := range cd.VolumesFrom {
		if c.containers[v.SourceContainer] == nil {
			return ClientError("Invalid 'volumesFrom' setting. Unknown container: '%s'.", v.SourceContainer)
		}
	}
	for _, m := range cd.MountPoints {
		if m.SourceVolume == "" {
			return ClientError("Unknown volume 'null'.")
		}
		if c.volumes[m.SourceVolume] == nil {
			return ClientError("Unknown volume '%s'.", m.SourceVolume)
		}
		if m.ContainerPath == "" {
			return ClientError("Invalid 'mountPoints' setting for container '%s'. containerPath should not be null or empty.", cd.Name)
		}
	}
	return nil
}

// validateHealthCheck: the ranges of the API reference (HealthCheck).
// The command is passed to Docker as given; ECS accepts commands without a
// leading CMD or CMD-SHELL, so Gantry does too.
func validateHealthCheck(cd *ContainerDefinition) error {
	h := cd.HealthCheck
	if h == nil {
		return nil
	}
	if len(h.Command) == 0 {
		return ClientError("Invalid 'healthCheck' setting for container '%s'. command should not be empty.", cd.Name)
	}
	for _, r := range []struct {
		name     string
		v        *int32
		min, max int32
	}{
		{"interval", h.Interval, 5, 300},
		{"timeout", h.Timeout, 2, 60},
		{"retries", h.Retries, 1, 10},
		{"startPeriod", h.StartPeriod, 0, 300},
	} {
		if r.v != nil && (*r.v < r.min || *r.v > r.max) {
			return ClientError("Invalid 'healthCheck' setting for container '%s'. %s must be between %d and %d.", cd.Name, r.name, r.min, r.max)
		}
	}
	return nil
}

func validateTimeouts(cd *ContainerDefinition) error {
	if cd.StartTimeout != nil && *cd.StartTimeout < 0 {
		return ClientError("Invalid 'startTimeout' setting for container '%s'.", cd.Name)
	}
	if cd.StopTimeout != nil && *cd.StopTimeout < 0 {
		return ClientError("Invalid 'stopTimeout' setting for container '%s'.", cd.Name)
	}
	return nil
}

// validateLimits: ulimits whose soft limit exceeds the hard one, and
// negative tmpfs or shared memory sizes, are refused by Docker when the
// container is created; Gantry refuses them at registration.
func validateLimits(cd *ContainerDefinition) error {
	for _, u := range cd.Ulimits {
		if u.SoftLimit > u.HardLimit && u.HardLimit != -1 {
			return ClientError("Invalid 'ulimits' setting for container '%s'. The softLimit of %s cannot be greater than its hardLimit.", cd.Name, u.Name)
		}
	}
	if lp := cd.LinuxParameters; lp != nil {
		for _, t := range lp.Tmpfs {
			if t.ContainerPath == "" || t.Size <= 0 {
				return ClientError("Invalid 'tmpfs' setting for container '%s'. containerPath and a positive size are required.", cd.Name)
			}
		}
		if lp.SharedMemorySize != nil && *lp.SharedMemorySize < 0 {
			return ClientError("Invalid 'sharedMemorySize' setting for container '%s'.", cd.Name)
		}
		if lp.Swappiness != nil && (*lp.Swappiness < 0 || *lp.Swappiness > 100) {
			return ClientError("Invalid 'swappiness' setting for container '%s'. Accepted values are whole numbers between 0 and 100.", cd.Name)
		}
		if lp.MaxSwap != nil && *lp.MaxSwap < 0 {
			return ClientError("Invalid 'maxSwap' setting for container '%s'. Accepted values are 0 or any positive integer.", cd.Name)
		}
	}
	return nil
}

// validateLogging: the awslogs driver needs a log group and region; the
// awsfirelens driver needs a FireLens container in the task; at most one
// container is the log router; secretOptions need an execution role.
func (c *taskCheck) validateLogging(cd *ContainerDefinition) error {
	if cd.FirelensConfiguration != nil {
		for _, o := range c.td.ContainerDefinitions {
			if o.FirelensConfiguration != nil && o.Name != cd.Name {
				return ClientError("Only one container in a task definition can have a firelensConfiguration.")
			}
		}
		if t := cd.FirelensConfiguration.Options["config-file-type"]; t != "" {
			if t != "s3" && t != "file" {
				return ClientError("Invalid firelensConfiguration option config-file-type '%s' for container '%s'. Valid values are s3 and file.", t, cd.Name)
			}
			if cd.FirelensConfiguration.Options["config-file-value"] == "" {
				return ClientError("The firelensConfiguration of container '%s' sets config-file-type but not config-file-value.", cd.Name)
			}
		}
	}
	lc := cd.LogConfiguration
	if lc == nil {
		return nil
	}
	switch lc.LogDriver {
	case LogDriverAwslogs:
		var missing []string
		for _, k := range []string{"awslogs-region", "awslogs-group"} {
			if lc.Options[k] == "" {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			return ClientError("Log driver awslogs requires options: %s", strings.Join(missing, ", "))
		}
	case LogDriverAwsfirelens:
		if c.firelensContainer() == nil {
			return ClientError("Log driver awsfirelens requires a container in the task definition with a firelensConfiguration.")
		}
	}
	if len(lc.SecretOptions) > 0 && c.td.ExecutionRoleARN == "" {
		return ClientError("When you are specifying container secrets, you must also specify a value for 'executionRoleArn'.")
	}
	return nil
}

func (c *taskCheck) firelensContainer() *ContainerDefinition {
	for i := range c.td.ContainerDefinitions {
		if c.td.ContainerDefinitions[i].FirelensConfiguration != nil {
			return &c.td.ContainerDefinitions[i]
		}
	}
	return nil
}

// validateSecrets: secrets and private registry credentials are fetched with
// the task execution role, so both need one.
func (c *taskCheck) validateSecrets(cd *ContainerDefinition) error {
	if c.td.ExecutionRoleARN != "" {
		return nil
	}
	if len(cd.Secrets) > 0 {
		return ClientError("When you are specifying container secrets, you must also specify a value for 'executionRoleArn'.")
	}
	if cd.RepositoryCredentials != nil {
		return ClientError("When you are specifying repositoryCredentials, you must also specify a value for 'executionRoleArn'.")
	}
	return nil
}

// GPUCount parses a GPU resourceRequirement's value: a positive number of
// GPUs (0 and ok false otherwise).
func GPUCount(value string) (n int, ok bool) {
	n, err := strconv.Atoi(value)
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}

// validateResources: a GPU requirement is a positive number of GPUs; an
// InferenceAccelerator requirement names a device of the task definition.
func (c *taskCheck) validateResources(cd *ContainerDefinition) error {
	seen := map[ResourceType]bool{}
	for _, r := range cd.ResourceRequirements {
		if seen[r.Type] {
			return ClientError("Container '%s' has more than one resourceRequirements entry of type %s.", cd.Name, r.Type)
		}
		seen[r.Type] = true
		switch r.Type {
		case ResourceTypeGPU:
			if _, ok := GPUCount(r.Value); !ok {
				return ClientError("Invalid GPU resourceRequirements value '%s' for container '%s'. Specify a positive number of GPUs.", r.Value, cd.Name)
			}
		case ResourceTypeInferenceAccelerator:
			found := false
			for _, a := range c.td.InferenceAccelerators {
				found = found || a.DeviceName == r.Value
			}
			if !found {
				return ClientError("The InferenceAccelerator resourceRequirements value '%s' of container '%s' does not match a deviceName in inferenceAccelerators.", r.Value, cd.Name)
			}
		}
	}
	return nil
}

// validateRestartPolicy: "a minimum restartAttemptPeriod of 60 seconds and
// a maximum ... of 1800 seconds"; "a maximum of 50 container exit codes".
func validateRestartPolicy(cd *ContainerDefinition) error {
	p := cd.RestartPolicy
	if p == nil {
		return nil
	}
	if p.RestartAttemptPeriod != nil && (*p.RestartAttemptPeriod < 60 || *p.RestartAttemptPeriod > 1800) {
		return ClientError("Invalid 'restartPolicy' setting for container '%s'. restartAttemptPeriod must be between 60 and 1800 seconds.", cd.Name)
	}
	if len(p.IgnoredExitCodes) > 50 {
		return ClientError("Invalid 'restartPolicy' setting for container '%s'. At most 50 ignoredExitCodes are allowed.", cd.Name)
	}
	return nil
}
