package ecs

import (
	"regexp"
)

// Launch type compatibility. ECS validates a task definition against every
// launch type listed in requiresCompatibilities ("A client exception is
// returned if the task definition doesn't validate against the
// compatibilities specified") and reports in compatibilities the launch
// types it is compatible with. Observed answers: a bridge-mode definition is
// ["EXTERNAL", "EC2"] (AWS CLI register-task-definition example output), an
// awsvpc definition with a valid Fargate size is ["EC2", "FARGATE"] (ECS
// Anywhere does not support awsvpc).

// fargateSizes is the Fargate task size table (API reference, memory; and
// "Troubleshoot Amazon ECS task definition invalid CPU or memory errors"):
// CPU units to the memory values (MiB) allowed with them.
var fargateSizes = map[int32]func(mem int32) bool{
	256:   func(m int32) bool { return m == 512 || m == 1024 || m == 2048 },
	512:   func(m int32) bool { return m >= 1024 && m <= 4096 && m%1024 == 0 },
	1024:  func(m int32) bool { return m >= 2048 && m <= 8192 && m%1024 == 0 },
	2048:  func(m int32) bool { return m >= 4096 && m <= 16384 && m%1024 == 0 },
	4096:  func(m int32) bool { return m >= 8192 && m <= 30720 && m%1024 == 0 },
	8192:  func(m int32) bool { return m >= 16384 && m <= 61440 && m%4096 == 0 },
	16384: func(m int32) bool { return m >= 32768 && m <= 122880 && m%8192 == 0 },
}

// FargateSizeValid reports whether cpu units and memory MiB are a Fargate
// task size; Windows on Fargate needs at least 1 vCPU.
func FargateSizeValid(cpu, memory int32, windows bool) bool {
	ok := fargateSizes[cpu]
	return ok != nil && ok(memory) && (!windows || cpu >= 1024)
}

// ecrImage matches an Amazon ECR image reference, which Fargate pulls with
// the task execution role.
var ecrImage = regexp.MustCompile(`^[0-9]{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/`)

// fargateProblem returns why the task definition cannot run on Fargate, or
// nil. Messages are ECS's where known (docs/task-definitions.md).
func (c *taskCheck) fargateProblem() error {
	td := c.td
	if td.NetworkMode != NetworkModeAwsvpc {
		return ClientError("Fargate only supports network mode ‘awsvpc’.")
	}
	if c.cpu == 0 {
		return ClientError("Fargate requires that 'cpu' be defined at the task level.")
	}
	if c.memory == 0 {
		return ClientError("Fargate requires that 'memory' be defined at the task level.")
	}
	if !FargateSizeValid(c.cpu, c.memory, c.windows()) {
		return ClientError("No Fargate configuration exists for given values: %d CPU, %d memory. See the Amazon ECS documentation for the valid values.", c.cpu, c.memory)
	}
	if td.PidMode == PidModeHost {
		return ClientError("Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'.")
	}
	if td.IpcMode != "" {
		return ClientError("Tasks using the Fargate launch type do not support ipcMode.")
	}
	for _, v := range td.Volumes {
		if v.Host != nil && v.Host.SourcePath != "" {
			return ClientError("Fargate compatible task definitions do not support sourcePath")
		}
		if v.DockerVolumeConfiguration != nil {
			return ClientError("Fargate compatible task definitions do not support dockerVolumeConfiguration")
		}
	}
	if len(td.InferenceAccelerators) > 0 {
		return ClientError("Fargate compatible task definitions do not support inferenceAccelerators")
	}
	for i := range td.ContainerDefinitions {
		if err := c.fargateContainerProblem(&td.ContainerDefinitions[i]); err != nil {
			return err
		}
	}
	return nil
}

func (c *taskCheck) fargateContainerProblem(cd *ContainerDefinition) error {
	noRole := c.td.ExecutionRoleARN == ""
	if noRole && cd.LogConfiguration != nil && cd.LogConfiguration.LogDriver == LogDriverAwslogs {
		return ClientError("Fargate requires task definition to have execution role ARN to support log driver awslogs.")
	}
	if noRole && ecrImage.MatchString(cd.Image) {
		return ClientError("Fargate requires task definition to have execution role ARN to support ECR images.")
	}
	if cd.Privileged != nil && *cd.Privileged {
		return ClientError("Fargate compatible task definitions do not support privileged containers")
	}
	for _, r := range cd.ResourceRequirements {
		if r.Type == ResourceTypeGPU {
			return ClientError("Fargate compatible task definitions do not support GPU resourceRequirements")
		}
	}
	if lp := cd.LinuxParameters; lp != nil {
		switch {
		case len(lp.Devices) > 0:
			return ClientError("Fargate compatible task definitions do not support linuxParameters.devices")
		case lp.SharedMemorySize != nil:
			return ClientError("Fargate compatible task definitions do not support linuxParameters.sharedMemorySize")
		case len(lp.Tmpfs) > 0:
			return ClientError("Fargate compatible task definitions do not support linuxParameters.tmpfs")
		case lp.MaxSwap != nil || lp.Swappiness != nil:
			return ClientError("Fargate compatible task definitions do not support linuxParameters.maxSwap or swappiness")
		}
	}
	for _, t := range []*int32{cd.StartTimeout, cd.StopTimeout} {
		if t != nil && (*t < 2 || *t > 120) {
			return ClientError("Invalid timeout for container '%s'. On Fargate, startTimeout and stopTimeout must be between 2 and 120 seconds.", cd.Name)
		}
	}
	if f := cd.FirelensConfiguration; f != nil && f.Options["config-file-type"] == "s3" {
		return ClientError("Tasks hosted on Fargate only support the file FireLens configuration file type.")
	}
	return nil
}

// externalProblem returns why the task definition cannot run on ECS
// Anywhere (EXTERNAL) instances, or nil: no awsvpc networking, and none of
// the AWS-integrated features that need an EC2 instance or ENI.
func (c *taskCheck) externalProblem() error {
	td := c.td
	if td.NetworkMode == NetworkModeAwsvpc {
		return ClientError("Tasks using the EXTERNAL launch type do not support network mode 'awsvpc'.")
	}
	if td.ProxyConfiguration != nil || len(td.InferenceAccelerators) > 0 {
		return ClientError("Tasks using the EXTERNAL launch type do not support App Mesh proxy configuration or Elastic Inference accelerators.")
	}
	for _, v := range td.Volumes {
		if v.EFSVolumeConfiguration != nil || v.FsxWindowsFileServerVolumeConfiguration != nil || v.S3filesVolumeConfiguration != nil {
			return ClientError("Tasks using the EXTERNAL launch type do not support Amazon EFS, FSx or S3 Files volumes.")
		}
	}
	return nil
}

// validateCompatibilities validates against each requested launch type.
// EC2 and MANAGED_INSTANCES have no rules beyond the general ones.
func (c *taskCheck) validateCompatibilities() error {
	if c.requires(CompatibilityFargate) {
		if err := c.fargateProblem(); err != nil {
			return err
		}
	}
	if c.requires(CompatibilityExternal) {
		if err := c.externalProblem(); err != nil {
			return err
		}
	}
	return nil
}

// compatibilities lists the launch types the task definition validates
// against, in the order ECS reports them.
func (c *taskCheck) compatibilities() []Compatibility {
	var out []Compatibility
	if c.externalProblem() == nil {
		out = append(out, CompatibilityExternal)
	}
	out = append(out, CompatibilityEC2)
	if c.fargateProblem() == nil {
		out = append(out, CompatibilityFargate)
	}
	if c.requires(CompatibilityManagedInstances) {
		out = append(out, CompatibilityManagedInstances)
	}
	return out
}
