package ecs

import (
	"encoding/json"
	"strings"
)

// NewTaskDefinition checks a RegisterTaskDefinition request as ECS does and
// returns the task definition ECS would store for it, without the parts only
// the store can fill (ARN, revision, status, timestamps): every member of the
// request except tags, ECS's defaults filled in, task-level cpu and memory
// converted to units, and compatibilities and requiresAttributes derived.
//
// The model-level rules (required members, enum values) are the generated
// Validate's job and are assumed to have passed. Errors are *awsproto.Error,
// with ECS's code (ClientException, as ECS answers these) and ECS's message
// where it is known; docs/task-definitions.md lists every rule and its source.
func NewTaskDefinition(in *RegisterTaskDefinitionRequest) (*TaskDefinition, error) {
	td := taskDefinitionFromRequest(in)
	c, err := newTaskCheck(td)
	if err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	// The size limit applies to what the user sent, before ECS's additions.
	if b, _ := json.Marshal(td); len(b) > MaxTaskDefinitionBytes {
		return nil, ClientError("Task definition size (%d bytes) exceeds the limit of %d bytes.", len(b), MaxTaskDefinitionBytes)
	}
	c.applyDefaults()
	td.Compatibilities = c.compatibilities()
	td.RequiresAttributes = c.requiresAttributes()
	return td, nil
}

// taskDefinitionFromRequest copies every member the request and the task
// definition share. TestTaskDefinitionFromRequestKeepsEveryMember guards
// this against members added to the model later.
func taskDefinitionFromRequest(in *RegisterTaskDefinitionRequest) *TaskDefinition {
	return &TaskDefinition{
		Family:                  in.Family,
		TaskRoleARN:             in.TaskRoleARN,
		ExecutionRoleARN:        in.ExecutionRoleARN,
		NetworkMode:             in.NetworkMode,
		ContainerDefinitions:    in.ContainerDefinitions,
		Volumes:                 in.Volumes,
		PlacementConstraints:    in.PlacementConstraints,
		RequiresCompatibilities: in.RequiresCompatibilities,
		CPU:                     in.CPU,
		Memory:                  in.Memory,
		PidMode:                 in.PidMode,
		IpcMode:                 in.IpcMode,
		ProxyConfiguration:      in.ProxyConfiguration,
		InferenceAccelerators:   in.InferenceAccelerators,
		EphemeralStorage:        in.EphemeralStorage,
		RuntimePlatform:         in.RuntimePlatform,
		EnableFaultInjection:    in.EnableFaultInjection,
	}
}

// taskCheck is a task definition under validation with what the rules keep
// asking: the parsed task size, containers and volumes by name, the network
// mode in effect.
type taskCheck struct {
	td         *TaskDefinition
	cpu        int32 // task-level CPU units; 0 when not set
	memory     int32 // task-level MiB; 0 when not set
	containers map[string]*ContainerDefinition
	volumes    map[string]*Volume
}

func newTaskCheck(td *TaskDefinition) (*taskCheck, error) {
	c := &taskCheck{td: td, containers: map[string]*ContainerDefinition{}, volumes: map[string]*Volume{}}
	if td.CPU != "" {
		n, ok := TaskCPUUnits(td.CPU)
		if !ok {
			return nil, ClientError("Invalid 'cpu' setting for task.")
		}
		c.cpu = n
	}
	if td.Memory != "" {
		n, ok := TaskMemoryMiB(td.Memory)
		if !ok {
			return nil, ClientError("Invalid 'memory' setting for task.")
		}
		c.memory = n
	}
	return c, nil
}

// mode is the network mode in effect: ECS's default is bridge (on Linux;
// Windows's "default" mode behaves like bridge for these rules).
func (c *taskCheck) mode() NetworkMode {
	if c.td.NetworkMode == "" {
		return NetworkModeBridge
	}
	return c.td.NetworkMode
}

func (c *taskCheck) windows() bool {
	p := c.td.RuntimePlatform
	return p != nil && p.OperatingSystemFamily != "" && p.OperatingSystemFamily != OSFamilyLinux
}

func (c *taskCheck) requires(k Compatibility) bool {
	for _, r := range c.td.RequiresCompatibilities {
		if r == k {
			return true
		}
	}
	return false
}

// validate applies the rules in the order ECS reports them where known:
// names and images first, then sizes, then cross-references, then the
// launch types the caller asked to be validated against.
func (c *taskCheck) validate() error {
	td := c.td
	if err := validateFamily(td.Family); err != nil {
		return err
	}
	if err := c.validateRoles(); err != nil {
		return err
	}
	if err := c.validateTaskSize(); err != nil {
		return err
	}
	if len(td.ContainerDefinitions) == 0 {
		return ClientError("Container list cannot be empty.")
	}
	if len(td.ContainerDefinitions) > MaxContainerDefinitions {
		return ClientError("Too many containers: a task definition can have at most %d containers; got %d.", MaxContainerDefinitions, len(td.ContainerDefinitions))
	}
	for i := range td.ContainerDefinitions {
		cd := &td.ContainerDefinitions[i]
		if err := validateContainerIdentity(cd); err != nil {
			return err
		}
		if c.containers[cd.Name] != nil {
			return ClientError("Container names must be unique within a Task Definition.")
		}
		c.containers[cd.Name] = cd
	}
	if err := c.validateVolumes(); err != nil {
		return err
	}
	essential := false
	for i := range td.ContainerDefinitions {
		cd := &td.ContainerDefinitions[i]
		if err := c.validateContainer(cd); err != nil {
			return err
		}
		essential = essential || isEssential(cd)
	}
	if !essential {
		return ClientError("Task definition doesn't have any essential container.")
	}
	if err := c.validateTotals(); err != nil {
		return err
	}
	if err := c.validateDependencies(); err != nil {
		return err
	}
	if err := c.validateTaskOptions(); err != nil {
		return err
	}
	return c.validateCompatibilities()
}

func validateFamily(f string) error {
	if len(f) > 255 {
		return ClientError("Family must be at most 255 characters long.")
	}
	if !validName(f, 255) {
		return ClientError("Family contains invalid characters.")
	}
	return nil
}

// validateRoles: taskRoleArn is "the short name or full ARN of the IAM role"
// (API reference); ECS answers anything else with "Role is not valid".
// executionRoleArn is documented as an ARN; Gantry accepts the same two forms.
func (c *taskCheck) validateRoles() error {
	for _, r := range []string{c.td.TaskRoleARN, c.td.ExecutionRoleARN} {
		if r != "" && !validRole(r) {
			return ClientError("Role is not valid")
		}
	}
	return nil
}

// validRole accepts arn:<partition>:iam::<12 digits>:role/[<path>/]<name> or
// a bare role name, with IAM's name and path characters.
func validRole(s string) bool {
	if !strings.HasPrefix(s, "arn:") {
		return validIAMName(s, 64)
	}
	p := strings.SplitN(s, ":", 6)
	if len(p) != 6 || !validPartition(p[1]) || p[2] != "iam" || p[3] != "" || !allDigits(p[4], 12) {
		return false
	}
	res, ok := strings.CutPrefix(p[5], "role/")
	if !ok {
		return false
	}
	i := strings.LastIndexByte(res, '/')
	path, name := res[:i+1], res[i+1:]
	if len(path) > 512 {
		return false
	}
	for _, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		if path != "" && !validIAMName(seg, 512) {
			return false
		}
	}
	return validIAMName(name, 64)
}

func validIAMName(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(isAlnum(b) || strings.IndexByte("_+=,.@-", b) >= 0) {
			return false
		}
	}
	return true
}

func validPartition(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= 'a' && s[i] <= 'z' || s[i] == '-') {
			return false
		}
	}
	return true
}

func allDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// validateTaskSize: "Supported values are between 128 CPU units (0.125
// vCPUs) and 196608 CPU units (192 vCPUs)" (API reference, cpu).
func (c *taskCheck) validateTaskSize() error {
	if c.cpu != 0 && (c.cpu < 128 || c.cpu > 196608) {
		return ClientError("Invalid 'cpu' setting for task.")
	}
	return nil
}

// validateTotals: container reservations must fit the task size ("the
// total amount of CPU reserved for all containers within a task be lower
// than the task-level cpu value"; likewise memory).
func (c *taskCheck) validateTotals() error {
	var cpu, reserved int64
	usesReservation := false
	for _, cd := range c.td.ContainerDefinitions {
		cpu += int64(cd.CPU)
		switch {
		case cd.MemoryReservation != nil:
			reserved += int64(*cd.MemoryReservation)
			usesReservation = true
		case cd.Memory != nil:
			reserved += int64(*cd.Memory)
		}
	}
	if c.cpu != 0 && cpu > int64(c.cpu) {
		return ClientError("The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'.")
	}
	if c.memory != 0 && reserved > int64(c.memory) {
		if usesReservation {
			return ClientError("The sum of all container 'memoryReservation' values cannot be greater than the value of the task 'memory'.")
		}
		return ClientError("The sum of all container 'memory' values cannot be greater than the value of the task 'memory'.")
	}
	return nil
}

// validateDependencies checks dependsOn: the named containers exist, a
// SUCCESS/COMPLETE dependency is not essential, a HEALTHY one has a health
// check, and the graph has no cycle (a task with one could never start).
func (c *taskCheck) validateDependencies() error {
	for _, cd := range c.td.ContainerDefinitions {
		for _, d := range cd.DependsOn {
			dep := c.containers[d.ContainerName]
			if dep == nil {
				// ECS's message, stray "+" included.
				return ClientError("Cannot depend on container + '%s' because it does not exist", d.ContainerName)
			}
			if d.ContainerName == cd.Name {
				return ClientError("Container '%s' cannot depend on itself.", cd.Name)
			}
			switch d.Condition {
			case ContainerConditionSuccess, ContainerConditionComplete:
				if isEssential(dep) {
					return ClientError("A dependency container with SUCCESS or COMPLETE condition cannot be an essential container")
				}
			case ContainerConditionHealthy:
				if dep.HealthCheck == nil {
					return ClientError("Container '%s' depends on container '%s' being HEALTHY, but '%s' has no healthCheck.", cd.Name, dep.Name, dep.Name)
				}
			}
		}
	}
	// Depth-first search for a cycle.
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var visit func(name string) string
	visit = func(name string) string {
		state[name] = active
		for _, d := range c.containers[name].DependsOn {
			switch state[d.ContainerName] {
			case active:
				return d.ContainerName
			case unseen:
				if n := visit(d.ContainerName); n != "" {
					return n
				}
			}
		}
		state[name] = done
		return ""
	}
	for _, cd := range c.td.ContainerDefinitions {
		if state[cd.Name] == unseen {
			if n := visit(cd.Name); n != "" {
				return ClientError("Container dependencies (dependsOn) form a cycle through container '%s'.", n)
			}
		}
	}
	return nil
}

// validateTaskOptions checks the task-level members that reference
// containers or have documented ranges.
func (c *taskCheck) validateTaskOptions() error {
	td := c.td
	if err := c.validatePlacementConstraints(); err != nil {
		return err
	}
	if p := td.ProxyConfiguration; p != nil {
		if p.ContainerName == "" || c.containers[p.ContainerName] == nil {
			return ClientError("The proxy configuration container '%s' does not exist in the task definition.", p.ContainerName)
		}
		if c.mode() != NetworkModeAwsvpc {
			return ClientError("Proxy configuration is only supported when networkMode=awsvpc.")
		}
	}
	if s := td.EphemeralStorage; s != nil && (s.SizeInGiB < 21 || s.SizeInGiB > 200) {
		return ClientError("Invalid 'ephemeralStorage' setting for task. sizeInGiB must be between 21 and 200.")
	}
	names := map[string]bool{}
	for _, a := range td.InferenceAccelerators {
		if names[a.DeviceName] {
			return ClientError("Inference accelerator device names must be unique within a Task Definition.")
		}
		names[a.DeviceName] = true
	}
	return nil
}

func isEssential(cd *ContainerDefinition) bool {
	return cd.Essential == nil || *cd.Essential
}
