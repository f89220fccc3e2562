package ecs

import (
	"errors"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/internal/awsproto"
)

func i32(v int32) *int32 { return &v }
func boolp(v bool) *bool { return &v }

// baseRequest is a minimal valid EC2 task definition; each case changes it.
func baseRequest() *RegisterTaskDefinitionRequest {
	return &RegisterTaskDefinitionRequest{
		Family: "web",
		ContainerDefinitions: []ContainerDefinition{
			{Name: "app", Image: "nginx:1.25", Memory: i32(128)},
		},
	}
}

// fargateRequest is a minimal valid Fargate task definition.
func fargateRequest() *RegisterTaskDefinitionRequest {
	return &RegisterTaskDefinitionRequest{
		Family:                  "api",
		NetworkMode:             NetworkModeAwsvpc,
		RequiresCompatibilities: []Compatibility{CompatibilityFargate},
		CPU:                     "256",
		Memory:                  "512",
		ExecutionRoleARN:        "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
		ContainerDefinitions: []ContainerDefinition{
			{Name: "api", Image: "public.ecr.aws/nginx/nginx:latest"},
		},
	}
}

func container(r *RegisterTaskDefinitionRequest, i int) *ContainerDefinition {
	return &r.ContainerDefinitions[i]
}

func TestNewTaskDefinitionRules(t *testing.T) {
	t.Parallel()
	second := ContainerDefinition{Name: "sidecar", Image: "busybox", Memory: i32(32), Essential: boolp(false)}
	cases := []struct {
		name string
		base func() *RegisterTaskDefinitionRequest
		edit func(r *RegisterTaskDefinitionRequest)
		want string // ECS's message; "" means accepted
	}{
		{"OK", baseRequest, func(r *RegisterTaskDefinitionRequest) {}, ""},
		{"OKFargate", fargateRequest, func(r *RegisterTaskDefinitionRequest) {}, ""},

		// Family.
		{"ErrFamilyChars", baseRequest, func(r *RegisterTaskDefinitionRequest) { r.Family = "my.family" }, "Family contains invalid characters."},
		{"ErrFamilySpace", baseRequest, func(r *RegisterTaskDefinitionRequest) { r.Family = "my family" }, "Family contains invalid characters."},
		{"ErrFamilyTooLong", baseRequest, func(r *RegisterTaskDefinitionRequest) { r.Family = strings.Repeat("f", 256) }, "Family must be at most 255 characters long."},
		{"OKFamily255", baseRequest, func(r *RegisterTaskDefinitionRequest) { r.Family = strings.Repeat("F_-9", 63) + "abc" }, ""},

		// Containers: count, names, images.
		{"ErrNoContainers", baseRequest, func(r *RegisterTaskDefinitionRequest) { r.ContainerDefinitions = []ContainerDefinition{} }, "Container list cannot be empty."},
		{"ErrElevenContainers", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			for i := range 10 {
				c := second
				c.Name = "c" + string(rune('a'+i))
				r.ContainerDefinitions = append(r.ContainerDefinitions, c)
			}
		}, "Too many containers: a task definition can have at most 10 containers; got 11."},
		{"ErrNoName", baseRequest, func(r *RegisterTaskDefinitionRequest) { container(r, 0).Name = "" }, "Container.name should not be null or empty."},
		{"ErrNameChars", baseRequest, func(r *RegisterTaskDefinitionRequest) { container(r, 0).Name = "my app" }, "Container.name contains invalid characters."},
		{"ErrDuplicateNames", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			c := second
			c.Name = "app"
			r.ContainerDefinitions = append(r.ContainerDefinitions, c)
		}, "Container names must be unique within a Task Definition."},
		{"ErrNoImage", baseRequest, func(r *RegisterTaskDefinitionRequest) { container(r, 0).Image = "" }, "Container.image should not be null or empty."},
		{"ErrImageDollar", baseRequest, func(r *RegisterTaskDefinitionRequest) { container(r, 0).Image = "$IMAGE_NAME" }, "Container.image contains invalid characters."},
		{"ErrImageBraces", baseRequest, func(r *RegisterTaskDefinitionRequest) { container(r, 0).Image = "repo/{{image}}:latest" }, "Container.image contains invalid characters."},
		{"ErrImageSpace", baseRequest, func(r *RegisterTaskDefinitionRequest) { container(r, 0).Image = "nginx latest" }, "Container.image contains invalid characters."},
		{"ErrImageAngle", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).Image = "<account>.dkr.ecr.us-east-1.amazonaws.com/app"
		}, "Container.image contains invalid characters."},
		{"OKImageECRDigest", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).Image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app@sha256:" + strings.Repeat("ab", 32)
		}, ""},
		{"ErrImageShortDigest", baseRequest, func(r *RegisterTaskDefinitionRequest) { container(r, 0).Image = "app@sha256:abc" },
			"Container.image has an invalid digest: only sha256: followed by 64 hexadecimal characters is supported."},
		{"OKImageRegistryPort", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).Image = "registry.example.com:5000/team/app:v1.2.3_rc-1"
		}, ""},
		{"ErrImageTooLong", baseRequest, func(r *RegisterTaskDefinitionRequest) { container(r, 0).Image = strings.Repeat("a", 256) },
			"Container.image must be 1 to 255 characters long (before any @digest)."},

		// Roles.
		{"OKRoleName", baseRequest, func(r *RegisterTaskDefinitionRequest) { r.TaskRoleARN = "myTaskRole" }, ""},
		{"OKRolePath", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			r.TaskRoleARN = "arn:aws:iam::123456789012:role/service-role/app-role"
		}, ""},
		{"OKRoleChina", baseRequest, func(r *RegisterTaskDefinitionRequest) { r.ExecutionRoleARN = "arn:aws-cn:iam::123456789012:role/exec" }, ""},
		{"ErrRoleNotRole", baseRequest, func(r *RegisterTaskDefinitionRequest) { r.TaskRoleARN = "arn:aws:iam::123456789012:user/alice" }, "Role is not valid"},
		{"ErrRoleAccount", baseRequest, func(r *RegisterTaskDefinitionRequest) { r.TaskRoleARN = "arn:aws:iam::1234:role/x" }, "Role is not valid"},
		{"ErrRoleSpace", baseRequest, func(r *RegisterTaskDefinitionRequest) { r.ExecutionRoleARN = "my role" }, "Role is not valid"},

		// Task size.
		{"ErrTaskCPUText", baseRequest, func(r *RegisterTaskDefinitionRequest) { r.CPU = "lots" }, "Invalid 'cpu' setting for task."},
		{"ErrTaskCPUTooSmall", baseRequest, func(r *RegisterTaskDefinitionRequest) { r.CPU = "64" }, "Invalid 'cpu' setting for task."},
		{"ErrTaskCPUTooBig", baseRequest, func(r *RegisterTaskDefinitionRequest) { r.CPU = "200 vCPU" }, "Invalid 'cpu' setting for task."},
		{"ErrTaskMemoryText", baseRequest, func(r *RegisterTaskDefinitionRequest) { r.Memory = "2 TB" }, "Invalid 'memory' setting for task."},
		{"OKTaskSizeStrings", baseRequest, func(r *RegisterTaskDefinitionRequest) { r.CPU, r.Memory = "0.5 vCPU", "1GB" }, ""},
		{"ErrCPUSum", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			r.CPU = "256"
			container(r, 0).CPU = 512
		}, "The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'."},
		{"ErrReservationSum", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			r.Memory = "512"
			c := second
			c.Memory, c.MemoryReservation = nil, i32(500)
			r.ContainerDefinitions = append(r.ContainerDefinitions, c)
		}, "The sum of all container 'memoryReservation' values cannot be greater than the value of the task 'memory'."},
		{"ErrMemorySum", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			r.Memory = "512"
			container(r, 0).Memory = i32(1024)
		}, "The sum of all container 'memory' values cannot be greater than the value of the task 'memory'."},

		// Container memory.
		{"ErrNoMemory", baseRequest, func(r *RegisterTaskDefinitionRequest) { container(r, 0).Memory = nil },
			"Invalid setting for container 'app'. At least one of 'memory' or 'memoryReservation' must be specified."},
		{"OKTaskMemoryOnly", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).Memory = nil
			r.Memory = "512"
		}, ""},
		{"OKReservationOnly", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).Memory = nil
			container(r, 0).MemoryReservation = i32(64)
		}, ""},
		{"ErrMemoryBelowReservation", baseRequest, func(r *RegisterTaskDefinitionRequest) { container(r, 0).MemoryReservation = i32(256) },
			"Invalid setting for container 'app'. 'memory' must be greater than or equal to 'memoryReservation'."},
		{"OKMemoryEqualsReservation", baseRequest, func(r *RegisterTaskDefinitionRequest) { container(r, 0).MemoryReservation = i32(128) }, ""},
		{"ErrMemoryTiny", baseRequest, func(r *RegisterTaskDefinitionRequest) { container(r, 0).Memory = i32(4) },
			"Invalid 'memory' setting for container 'app'. The minimum is 6 MiB."},
		{"ErrContainerCPUNegative", baseRequest, func(r *RegisterTaskDefinitionRequest) { container(r, 0).CPU = -1 }, "Invalid 'cpu' setting for container 'app'."},

		// Essential.
		{"ErrNoEssential", baseRequest, func(r *RegisterTaskDefinitionRequest) { container(r, 0).Essential = boolp(false) },
			"Task definition doesn't have any essential container."},
		{"OKOneEssentialByDefault", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			r.ContainerDefinitions = append(r.ContainerDefinitions, second)
		}, ""},

		// Ports and network modes.
		{"ErrAwsvpcHostPort", fargateRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).PortMappings = []PortMapping{{ContainerPort: i32(80), HostPort: i32(8080)}}
		}, "When networkMode=awsvpc, the host ports and container ports in port mappings must match."},
		{"OKAwsvpcHostPortZero", fargateRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).PortMappings = []PortMapping{{ContainerPort: i32(80), HostPort: i32(0)}}
		}, ""},
		{"ErrHostModeHostPort", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			r.NetworkMode = NetworkModeHost
			container(r, 0).PortMappings = []PortMapping{{ContainerPort: i32(80), HostPort: i32(81)}}
		}, "When networkMode=host, the host ports and container ports in port mappings must match."},
		{"OKBridgeStaticPort", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).PortMappings = []PortMapping{{ContainerPort: i32(80), HostPort: i32(8080)}}
		}, ""},
		{"ErrNoContainerPort", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).PortMappings = []PortMapping{{HostPort: i32(80)}}
		}, "Invalid 'containerPort' setting for container 'app'."},
		{"ErrContainerPortRange", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).PortMappings = []PortMapping{{ContainerPort: i32(70000)}}
		}, "Invalid 'containerPort' setting for container 'app'."},
		{"ErrHostPortRange", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).PortMappings = []PortMapping{{ContainerPort: i32(80), HostPort: i32(-1)}}
		}, "Invalid 'hostPort' setting for container 'app'."},
		{"ErrPortsInNoneMode", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			r.NetworkMode = NetworkModeNone
			container(r, 0).PortMappings = []PortMapping{{ContainerPort: i32(80)}}
		}, "Port mappings are not supported when networkMode=none."},
		{"OKPortRange", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).PortMappings = []PortMapping{{ContainerPortRange: "8000-8010"}}
		}, ""},
		{"ErrPortRangeBackwards", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).PortMappings = []PortMapping{{ContainerPortRange: "9000-8000"}}
		}, `Invalid 'containerPortRange' setting for container 'app'. Use "start-end" with 1 <= start < end <= 65535.`},
		{"ErrPortRangeHostMode", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			r.NetworkMode = NetworkModeHost
			container(r, 0).PortMappings = []PortMapping{{ContainerPortRange: "8000-8010"}}
		}, "containerPortRange is only supported when networkMode is bridge or awsvpc."},
		{"ErrPortName", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).PortMappings = []PortMapping{{ContainerPort: i32(80), Name: "-Web"}}
		}, "Invalid port mapping name '-Web' for container 'app'. Up to 64 lowercase letters, numbers, underscores and hyphens are allowed, not starting with a hyphen."},
		{"ErrLinksAwsvpc", fargateRequest, func(r *RegisterTaskDefinitionRequest) {
			r.ContainerDefinitions = append(r.ContainerDefinitions, ContainerDefinition{Name: "db", Image: "postgres:16", Essential: boolp(false)})
			container(r, 0).Links = []string{"db"}
		}, "Links are not supported when networkMode=awsvpc."},
		{"ErrHostnameAwsvpc", fargateRequest, func(r *RegisterTaskDefinitionRequest) { container(r, 0).Hostname = "api" },
			"hostname is not supported on container when networkMode=awsvpc."},
		{"OKLinkAlias", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			r.ContainerDefinitions = append(r.ContainerDefinitions, second)
			container(r, 0).Links = []string{"sidecar:side"}
		}, ""},
		{"ErrLinkUnknown", baseRequest, func(r *RegisterTaskDefinitionRequest) { container(r, 0).Links = []string{"db:database"} },
			"Invalid 'links' setting. Unknown container: 'db'."},

		// References.
		{"ErrVolumesFromUnknown", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).VolumesFrom = []VolumeFrom{{SourceContainer: "data"}}
		}, "Invalid 'volumesFrom' setting. Unknown container: 'data'."},
		{"ErrMountUnknownVolume", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).MountPoints = []MountPoint{{SourceVolume: "webdata", ContainerPath: "/data"}}
		}, "Unknown volume 'webdata'."},
		{"ErrMountNoVolume", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).MountPoints = []MountPoint{{ContainerPath: "/data"}}
		}, "Unknown volume 'null'."},
		{"OKMount", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			r.Volumes = []Volume{{Name: "webdata", Host: &HostVolumeProperties{SourcePath: "/ecs/webdata"}}}
			container(r, 0).MountPoints = []MountPoint{{SourceVolume: "webdata", ContainerPath: "/data", ReadOnly: boolp(true)}}
		}, ""},
		{"ErrDependsOnUnknown", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).DependsOn = []ContainerDependency{{ContainerName: "init", Condition: ContainerConditionSuccess}}
		}, "Cannot depend on container + 'init' because it does not exist"},
		{"ErrDependsOnEssentialSuccess", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			c := second
			c.Essential = nil
			r.ContainerDefinitions = append(r.ContainerDefinitions, c)
			container(r, 0).DependsOn = []ContainerDependency{{ContainerName: "sidecar", Condition: ContainerConditionComplete}}
		}, "A dependency container with SUCCESS or COMPLETE condition cannot be an essential container"},
		{"ErrDependsOnHealthyWithoutCheck", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			r.ContainerDefinitions = append(r.ContainerDefinitions, second)
			container(r, 0).DependsOn = []ContainerDependency{{ContainerName: "sidecar", Condition: ContainerConditionHealthy}}
		}, "Container 'app' depends on container 'sidecar' being HEALTHY, but 'sidecar' has no healthCheck."},
		{"ErrDependsOnCycle", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			r.ContainerDefinitions = append(r.ContainerDefinitions, second)
			container(r, 0).DependsOn = []ContainerDependency{{ContainerName: "sidecar", Condition: ContainerConditionStart}}
			container(r, 1).DependsOn = []ContainerDependency{{ContainerName: "app", Condition: ContainerConditionStart}}
		}, "Container dependencies (dependsOn) form a cycle through container 'app'."},
		{"ErrDependsOnSelf", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).DependsOn = []ContainerDependency{{ContainerName: "app", Condition: ContainerConditionStart}}
		}, "Container 'app' cannot depend on itself."},

		// Health checks.
		{"OKHealthCheckNoPrefix", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).HealthCheck = &HealthCheck{Command: []string{"curl -f http://localhost/ || exit 1"}}
		}, ""},
		{"ErrHealthCheckInterval", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).HealthCheck = &HealthCheck{Command: []string{"CMD", "true"}, Interval: i32(1)}
		}, "Invalid 'healthCheck' setting for container 'app'. interval must be between 5 and 300."},
		{"ErrHealthCheckRetries", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).HealthCheck = &HealthCheck{Command: []string{"CMD", "true"}, Retries: i32(11)}
		}, "Invalid 'healthCheck' setting for container 'app'. retries must be between 1 and 10."},
		{"ErrHealthCheckEmpty", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).HealthCheck = &HealthCheck{Command: []string{}}
		}, "Invalid 'healthCheck' setting for container 'app'. command should not be empty."},

		// Logging, secrets.
		{"ErrAwslogsOptions", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).LogConfiguration = &LogConfiguration{LogDriver: LogDriverAwslogs, Options: map[string]string{"awslogs-stream-prefix": "web"}}
		}, "Log driver awslogs requires options: awslogs-region, awslogs-group"},
		{"ErrAwslogsRegion", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).LogConfiguration = &LogConfiguration{LogDriver: LogDriverAwslogs, Options: map[string]string{"awslogs-group": "/ecs/web"}}
		}, "Log driver awslogs requires options: awslogs-region"},
		{"ErrFirelensWithoutRouter", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).LogConfiguration = &LogConfiguration{LogDriver: LogDriverAwsfirelens}
		}, "Log driver awsfirelens requires a container in the task definition with a firelensConfiguration."},
		{"ErrSecretsWithoutExecutionRole", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).Secrets = []Secret{{Name: "DB_PASSWORD", ValueFrom: "arn:aws:ssm:us-east-1:123456789012:parameter/db"}}
		}, "When you are specifying container secrets, you must also specify a value for 'executionRoleArn'."},
		{"ErrLogSecretsWithoutExecutionRole", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).LogConfiguration = &LogConfiguration{LogDriver: LogDriverSplunk, SecretOptions: []Secret{{Name: "splunk-token", ValueFrom: "token"}}}
		}, "When you are specifying container secrets, you must also specify a value for 'executionRoleArn'."},
		{"ErrRepositoryCredentialsWithoutExecutionRole", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).RepositoryCredentials = &RepositoryCredentials{CredentialsParameter: "arn:aws:secretsmanager:us-east-1:123456789012:secret:hub"}
		}, "When you are specifying repositoryCredentials, you must also specify a value for 'executionRoleArn'."},

		// Resources, limits, restart policy.
		{"ErrUlimitSoftAboveHard", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).Ulimits = []Ulimit{{Name: UlimitNameNofile, SoftLimit: 65536, HardLimit: 1024}}
		}, "Invalid 'ulimits' setting for container 'app'. The softLimit of nofile cannot be greater than its hardLimit."},
		{"ErrGPUValue", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).ResourceRequirements = []ResourceRequirement{{Type: ResourceTypeGPU, Value: "zero"}}
		}, "Invalid GPU resourceRequirements value 'zero' for container 'app'. Specify a positive number of GPUs."},
		{"OKGPU", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).ResourceRequirements = []ResourceRequirement{{Type: ResourceTypeGPU, Value: "1"}}
		}, ""},
		{"ErrRestartPeriod", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).RestartPolicy = &ContainerRestartPolicy{Enabled: boolp(true), RestartAttemptPeriod: i32(10)}
		}, "Invalid 'restartPolicy' setting for container 'app'. restartAttemptPeriod must be between 60 and 1800 seconds."},
		{"ErrEphemeralStorage", fargateRequest, func(r *RegisterTaskDefinitionRequest) { r.EphemeralStorage = &EphemeralStorage{SizeInGiB: 20} },
			"Invalid 'ephemeralStorage' setting for task. sizeInGiB must be between 21 and 200."},

		// Volumes.
		{"ErrVolumeDuplicate", baseRequest, func(r *RegisterTaskDefinitionRequest) { r.Volumes = []Volume{{Name: "v"}, {Name: "v"}} },
			"Volume names must be unique within a Task Definition."},
		{"ErrVolumeNoName", baseRequest, func(r *RegisterTaskDefinitionRequest) { r.Volumes = []Volume{{Host: &HostVolumeProperties{}}} },
			"Volume.name should not be null or empty."},
		{"ErrEFSAccessPointUnencrypted", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			r.Volumes = []Volume{{Name: "efs", EFSVolumeConfiguration: &EFSVolumeConfiguration{FileSystemID: "fs-1234", AuthorizationConfig: &EFSAuthorizationConfig{AccessPointID: "fsap-1"}}}}
		}, "Volume 'efs': transit encryption must be ENABLED when an EFS access point is used."},
		{"ErrEFSIAMUnencrypted", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			r.Volumes = []Volume{{Name: "efs", EFSVolumeConfiguration: &EFSVolumeConfiguration{FileSystemID: "fs-1234", AuthorizationConfig: &EFSAuthorizationConfig{IAM: EFSAuthorizationConfigIAMEnabled}}}}
		}, "Volume 'efs': transit encryption must be ENABLED when EFS IAM authorization is used."},
		{"ErrEFSAccessPointRoot", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			r.Volumes = []Volume{{Name: "efs", EFSVolumeConfiguration: &EFSVolumeConfiguration{FileSystemID: "fs-1234", RootDirectory: "/data",
				TransitEncryption: EFSTransitEncryptionEnabled, AuthorizationConfig: &EFSAuthorizationConfig{AccessPointID: "fsap-1"}}}}
		}, "Volume 'efs': rootDirectory must be omitted or set to / when an EFS access point is used."},

		// Task options.
		{"ErrProxyContainer", fargateRequest, func(r *RegisterTaskDefinitionRequest) {
			r.ProxyConfiguration = &ProxyConfiguration{Type: ProxyConfigurationTypeAppmesh, ContainerName: "envoy"}
		}, "The proxy configuration container 'envoy' does not exist in the task definition."},
		{"ErrPlacementExpression", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			r.PlacementConstraints = []TaskDefinitionPlacementConstraint{{Type: TaskDefinitionPlacementConstraintTypeMemberOf}}
		}, "A memberOf placement constraint requires an expression."},
		{"ErrPlacementExpressionSyntax", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			r.PlacementConstraints = []TaskDefinitionPlacementConstraint{
				{Type: TaskDefinitionPlacementConstraintTypeMemberOf, Expression: "attribute:ecs.instance-type =~ t2.*"},
				{Type: TaskDefinitionPlacementConstraintTypeMemberOf, Expression: "attribute:stack prod"}}
		}, `Invalid cluster query language expression in placementConstraints[1].expression "attribute:stack prod": expected an operator (==, !=, >, >=, <, <=, exists, !exists, in, !in, =~, !~) after attribute:stack at character 17, near "prod".`},
		{"OKPlacementExpression", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			r.PlacementConstraints = []TaskDefinitionPlacementConstraint{{Type: TaskDefinitionPlacementConstraintTypeMemberOf,
				Expression: "attribute:ecs.availability-zone in [us-east-1a, us-east-1b] and not(task:group == db)"}}
		}, ""},

		// Fargate.
		{"ErrFargateBridge", fargateRequest, func(r *RegisterTaskDefinitionRequest) { r.NetworkMode = "" }, "Fargate only supports network mode ‘awsvpc’."},
		{"ErrFargateNoCPU", fargateRequest, func(r *RegisterTaskDefinitionRequest) { r.CPU = "" }, "Fargate requires that 'cpu' be defined at the task level."},
		{"ErrFargateNoMemory", fargateRequest, func(r *RegisterTaskDefinitionRequest) {
			r.Memory = ""
			container(r, 0).Memory = i32(512)
		}, "Fargate requires that 'memory' be defined at the task level."},
		{"ErrFargateSize", fargateRequest, func(r *RegisterTaskDefinitionRequest) { r.CPU, r.Memory = "1024", "1024" },
			"No Fargate configuration exists for given values: 1024 CPU, 1024 memory. See the Amazon ECS documentation for the valid values."},
		{"OKFargateSizeStrings", fargateRequest, func(r *RegisterTaskDefinitionRequest) { r.CPU, r.Memory = "1 vCPU", "2 GB" }, ""},
		{"OKFargate16vCPU", fargateRequest, func(r *RegisterTaskDefinitionRequest) { r.CPU, r.Memory = "16 vCPU", "120GB" }, ""},
		{"ErrFargate16vCPUStep", fargateRequest, func(r *RegisterTaskDefinitionRequest) { r.CPU, r.Memory = "16384", "36864" },
			"No Fargate configuration exists for given values: 16384 CPU, 36864 memory. See the Amazon ECS documentation for the valid values."},
		{"ErrFargateWindowsSmall", fargateRequest, func(r *RegisterTaskDefinitionRequest) {
			r.RuntimePlatform = &RuntimePlatform{OperatingSystemFamily: OSFamilyWindowsServer2022Core}
			r.CPU, r.Memory = "512", "1024"
		}, "No Fargate configuration exists for given values: 512 CPU, 1024 memory. See the Amazon ECS documentation for the valid values."},
		{"ErrFargatePidHost", fargateRequest, func(r *RegisterTaskDefinitionRequest) { r.PidMode = PidModeHost },
			"Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'."},
		{"ErrFargateIpc", fargateRequest, func(r *RegisterTaskDefinitionRequest) { r.IpcMode = IpcModeTask },
			"Tasks using the Fargate launch type do not support ipcMode."},
		{"ErrFargateSourcePath", fargateRequest, func(r *RegisterTaskDefinitionRequest) {
			r.Volumes = []Volume{{Name: "logs", Host: &HostVolumeProperties{SourcePath: "/var/log"}}}
		}, "Fargate compatible task definitions do not support sourcePath"},
		{"OKFargateBindMount", fargateRequest, func(r *RegisterTaskDefinitionRequest) { r.Volumes = []Volume{{Name: "scratch"}} }, ""},
		{"ErrFargateAwslogsNoRole", fargateRequest, func(r *RegisterTaskDefinitionRequest) {
			r.ExecutionRoleARN = ""
			container(r, 0).LogConfiguration = &LogConfiguration{LogDriver: LogDriverAwslogs, Options: map[string]string{"awslogs-group": "g", "awslogs-region": "us-east-1"}}
		}, "Fargate requires task definition to have execution role ARN to support log driver awslogs."},
		{"ErrFargateECRNoRole", fargateRequest, func(r *RegisterTaskDefinitionRequest) {
			r.ExecutionRoleARN = ""
			container(r, 0).Image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:1"
		}, "Fargate requires task definition to have execution role ARN to support ECR images."},
		{"ErrFargatePrivileged", fargateRequest, func(r *RegisterTaskDefinitionRequest) { container(r, 0).Privileged = boolp(true) },
			"Fargate compatible task definitions do not support privileged containers"},
		{"ErrFargateStopTimeout", fargateRequest, func(r *RegisterTaskDefinitionRequest) { container(r, 0).StopTimeout = i32(300) },
			"Invalid timeout for container 'api'. On Fargate, startTimeout and stopTimeout must be between 2 and 120 seconds."},
		{"OKEC2StopTimeout", baseRequest, func(r *RegisterTaskDefinitionRequest) { container(r, 0).StopTimeout = i32(300) }, ""},

		// EXTERNAL.
		{"ErrExternalAwsvpc", fargateRequest, func(r *RegisterTaskDefinitionRequest) {
			r.RequiresCompatibilities = []Compatibility{CompatibilityExternal}
		}, "Tasks using the EXTERNAL launch type do not support network mode 'awsvpc'."},
		{"OKExternal", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			r.RequiresCompatibilities = []Compatibility{CompatibilityExternal}
		}, ""},

		// Size.
		{"ErrTooLarge", baseRequest, func(r *RegisterTaskDefinitionRequest) {
			container(r, 0).Command = []string{strings.Repeat("x", MaxTaskDefinitionBytes)}
		}, "Task definition size (65662 bytes) exceeds the limit of 65536 bytes."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := tc.base()
			tc.edit(r)
			_, err := NewTaskDefinition(r)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var ae *awsproto.Error
			if !errors.As(err, &ae) {
				t.Fatalf("error = %v, want ClientException %q", err, tc.want)
			}
			if ae.Code != ErrCodeClientException || ae.Message != tc.want {
				t.Errorf("error = %s: %q\nwant    ClientException: %q", ae.Code, ae.Message, tc.want)
			}
		})
	}
}
