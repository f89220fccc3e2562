package agent

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/agent/runtime"
	"github.com/gantry-dev/gantry/ecs"
)

const testTaskARN = "arn:aws:ecs:us-east-1:123456789012:task/demo/0123456789abcdef0123456789abcdef"

func i32(v int32) *int32 { return &v }
func boolp(v bool) *bool { return &v }

func baseTaskDef() ecs.TaskDefinition {
	return ecs.TaskDefinition{
		Family:   "web",
		Revision: 3,
		ContainerDefinitions: []ecs.ContainerDefinition{{
			Name:      "app",
			Image:     "nginx:1.27",
			Memory:    i32(128),
			Essential: boolp(true),
		}},
	}
}

var testOpts = TranslateOptions{
	Cluster:              "demo",
	ContainerInstanceARN: "arn:aws:ecs:us-east-1:123456789012:container-instance/demo/abc",
	Labels:               map[string]string{"dev.gantry.test": "t1"},
	OS:                   "linux",
	Arch:                 "amd64",
	LogDrivers:           []string{"json-file", "local"},
}

func TestTranslate(t *testing.T) {
	t.Parallel()
	labels := func(extra map[string]string) map[string]string {
		m := map[string]string{
			LabelTaskARN:               testTaskARN,
			LabelContainerName:         "app",
			LabelCluster:               "demo",
			LabelTaskDefinitionFamily:  "web",
			LabelTaskDefinitionVersion: "3",
			LabelContainerInstance:     testOpts.ContainerInstanceARN,
			"dev.gantry.test":          "t1",
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	base := runtime.ContainerSpec{
		Name:        "ecs-web-3-app-0123456789abcdef0123456789abcdef",
		Image:       "nginx:1.27",
		NetworkMode: runtime.NetworkBridge,
		CPUShares:   2,
		MemoryLimit: 128 << 20,
		StopTimeout: 30 * time.Second,
		Labels:      labels(nil),
		Env:         map[string]string{EnvExecutionEnv: "AWS_ECS_EC2"},
	}
	tests := []struct {
		name string
		edit func(td *ecs.TaskDefinition, task *ecs.Task)
		want func(s *runtime.ContainerSpec)
	}{
		{"Minimal", nil, nil},
		{"CPUSharesAtLeastTwo", func(td *ecs.TaskDefinition, _ *ecs.Task) { td.ContainerDefinitions[0].CPU = 1 },
			nil},
		{"CPUShares", func(td *ecs.TaskDefinition, _ *ecs.Task) { td.ContainerDefinitions[0].CPU = 512 },
			func(s *runtime.ContainerSpec) { s.CPUShares = 512 }},
		{"MemoryReservationOnly", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.ContainerDefinitions[0].Memory = nil
			td.ContainerDefinitions[0].MemoryReservation = i32(64)
		}, func(s *runtime.ContainerSpec) { s.MemoryLimit, s.MemoryReservation = 0, 64<<20 }},
		{"HardAndSoftLimits", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.ContainerDefinitions[0].MemoryReservation = i32(64)
		}, func(s *runtime.ContainerSpec) { s.MemoryReservation = 64 << 20 }},
		{"TaskMemoryCapsContainer", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.Memory = "512"
			td.ContainerDefinitions[0].Memory = nil
			td.ContainerDefinitions[0].MemoryReservation = i32(64)
		}, func(s *runtime.ContainerSpec) { s.MemoryLimit, s.MemoryReservation = 512<<20, 64<<20 }},
		{"TaskMemoryOverride", func(td *ecs.TaskDefinition, task *ecs.Task) {
			td.Memory = "512"
			td.ContainerDefinitions[0].Memory = nil
			task.Overrides = &ecs.TaskOverride{Memory: "1 GB"}
		}, func(s *runtime.ContainerSpec) { s.MemoryLimit = 1024 << 20 }},
		{"BridgePorts", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.ContainerDefinitions[0].PortMappings = []ecs.PortMapping{
				{ContainerPort: i32(80)},                       // dynamic
				{ContainerPort: i32(443), HostPort: i32(8443)}, // static
				{ContainerPort: i32(53), Protocol: "udp"},      // udp, dynamic
				{ContainerPort: i32(9000), HostPort: i32(0), Name: "metrics", AppProtocol: "http"},
			}
		}, func(s *runtime.ContainerSpec) {
			s.Ports = []runtime.PortMapping{
				{ContainerPort: 80, Protocol: runtime.TCP},
				{ContainerPort: 443, HostPort: 8443, Protocol: runtime.TCP},
				{ContainerPort: 53, Protocol: runtime.UDP},
				{ContainerPort: 9000, Protocol: runtime.TCP},
			}
		}},
		{"HostModePorts", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.NetworkMode = ecs.NetworkModeHost
			td.ContainerDefinitions[0].PortMappings = []ecs.PortMapping{{ContainerPort: i32(8080)}}
		}, func(s *runtime.ContainerSpec) {
			s.NetworkMode = runtime.NetworkHost
			s.Ports = []runtime.PortMapping{{ContainerPort: 8080, HostPort: 8080, Protocol: runtime.TCP}}
		}},
		{"NoneMode", func(td *ecs.TaskDefinition, _ *ecs.Task) { td.NetworkMode = ecs.NetworkModeNone },
			func(s *runtime.ContainerSpec) { s.NetworkMode = runtime.NetworkNone }},
		{"ProcessSettings", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			cd := &td.ContainerDefinitions[0]
			cd.EntryPoint = []string{"/bin/sh", "-c"}
			cd.Command = []string{"echo hi"}
			cd.WorkingDirectory = "/srv"
			cd.User = "1000:1000"
			cd.Environment = []ecs.KeyValuePair{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}}
			cd.StopTimeout = i32(5)
		}, func(s *runtime.ContainerSpec) {
			s.Entrypoint = []string{"/bin/sh", "-c"}
			s.Command = []string{"echo hi"}
			s.WorkingDir = "/srv"
			s.User = "1000:1000"
			s.Env = map[string]string{"A": "1", "B": "2", EnvExecutionEnv: "AWS_ECS_EC2"}
			s.StopTimeout = 5 * time.Second
		}},
		{"Overrides", func(td *ecs.TaskDefinition, task *ecs.Task) {
			cd := &td.ContainerDefinitions[0]
			cd.Command = []string{"serve"}
			cd.Environment = []ecs.KeyValuePair{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}}
			task.Overrides = &ecs.TaskOverride{ContainerOverrides: []ecs.ContainerOverride{{
				Name:              "app",
				Command:           []string{"exit", "3"},
				Environment:       []ecs.KeyValuePair{{Name: "B", Value: "override"}, {Name: "C", Value: "3"}},
				CPU:               i32(256),
				Memory:            i32(256),
				MemoryReservation: i32(32),
			}}}
		}, func(s *runtime.ContainerSpec) {
			s.Command = []string{"exit", "3"}
			s.Env = map[string]string{"A": "1", "B": "override", "C": "3", EnvExecutionEnv: "AWS_ECS_EC2"}
			s.CPUShares = 256
			s.MemoryLimit = 256 << 20
			s.MemoryReservation = 32 << 20
		}},
		{"DockerLabelsCannotSpoofECSLabels", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.ContainerDefinitions[0].DockerLabels = map[string]string{"team": "web", LabelTaskARN: "forged"}
		}, func(s *runtime.ContainerSpec) { s.Labels = labels(map[string]string{"team": "web"}) }},
		{"JSONFileLogs", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.ContainerDefinitions[0].LogConfiguration = &ecs.LogConfiguration{LogDriver: ecs.LogDriverJSONFile, Options: map[string]string{"max-size": "10m"}}
		}, func(s *runtime.ContainerSpec) {
			s.LogConfig = runtime.LogConfig{Driver: "json-file", Options: map[string]string{"max-size": "10m"}}
		}},
		{"AwslogsKeptLocally", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.ContainerDefinitions[0].LogConfiguration = &ecs.LogConfiguration{LogDriver: ecs.LogDriverAwslogs,
				Options: map[string]string{"awslogs-group": "/ecs/web", "awslogs-region": "us-east-1"}}
		}, func(s *runtime.ContainerSpec) { s.LogConfig = runtime.LogConfig{Driver: "json-file"} }},
		{"HealthCheckWithECSDefaults", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.ContainerDefinitions[0].HealthCheck = &ecs.HealthCheck{Command: []string{"CMD-SHELL", "curl -f http://localhost/ || exit 1"}}
		}, func(s *runtime.ContainerSpec) {
			s.HealthCheck = &runtime.HealthCheck{Test: []string{"CMD-SHELL", "curl -f http://localhost/ || exit 1"},
				Interval: 30 * time.Second, Timeout: 5 * time.Second, Retries: 3}
		}},
		{"HealthCheckExplicit", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.ContainerDefinitions[0].HealthCheck = &ecs.HealthCheck{Command: []string{"CMD", "/bin/check", "-q"},
				Interval: i32(5), Timeout: i32(2), Retries: i32(1), StartPeriod: i32(10)}
		}, func(s *runtime.ContainerSpec) {
			s.HealthCheck = &runtime.HealthCheck{Test: []string{"CMD", "/bin/check", "-q"},
				Interval: 5 * time.Second, Timeout: 2 * time.Second, Retries: 1, StartPeriod: 10 * time.Second}
		}},
		{"LinuxParameters", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.ContainerDefinitions[0].LinuxParameters = &ecs.LinuxParameters{
				Capabilities:       &ecs.KernelCapabilities{Add: []string{"NET_ADMIN"}, Drop: []string{"ALL"}},
				Devices:            []ecs.Device{{HostPath: "/dev/fuse", Permissions: []ecs.DeviceCgroupPermission{"read", "write"}}},
				InitProcessEnabled: boolp(true),
				SharedMemorySize:   i32(256),
				Tmpfs:              []ecs.Tmpfs{{ContainerPath: "/run", Size: 64, MountOptions: []string{"noexec", "nosuid"}}},
			}
		}, func(s *runtime.ContainerSpec) {
			s.CapAdd, s.CapDrop = []string{"NET_ADMIN"}, []string{"ALL"}
			s.Devices = []runtime.Device{{HostPath: "/dev/fuse", Permissions: "rw"}}
			s.Init = true
			s.ShmSize = 256 << 20
			s.Tmpfs = []runtime.Tmpfs{{Path: "/run", Size: 64 << 20, Options: []string{"noexec", "nosuid"}}}
		}},
		{"SecurityAndLimits", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			cd := &td.ContainerDefinitions[0]
			cd.ReadonlyRootFilesystem = boolp(true)
			cd.DockerSecurityOptions = []string{"no-new-privileges"}
			cd.Ulimits = []ecs.Ulimit{{Name: "nofile", SoftLimit: 1024, HardLimit: 4096}}
			cd.SystemControls = []ecs.SystemControl{{Namespace: "net.core.somaxconn", Value: "1024"}}
		}, func(s *runtime.ContainerSpec) {
			s.ReadonlyRootfs = true
			s.SecurityOpt = []string{"no-new-privileges"}
			s.Ulimits = []runtime.Ulimit{{Name: "nofile", Soft: 1024, Hard: 4096}}
			s.Sysctls = map[string]string{"net.core.somaxconn": "1024"}
		}},
		{"Networking", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			cd := &td.ContainerDefinitions[0]
			cd.Hostname = "web1"
			cd.DNSServers = []string{"10.0.0.2"}
			cd.DNSSearchDomains = []string{"corp.example"}
			cd.ExtraHosts = []ecs.HostEntry{{Hostname: "db", IPAddress: "10.0.0.5"}}
		}, func(s *runtime.ContainerSpec) {
			s.Hostname = "web1"
			s.DNS, s.DNSSearch = []string{"10.0.0.2"}, []string{"corp.example"}
			s.ExtraHosts = []runtime.HostEntry{{Hostname: "db", IP: "10.0.0.5"}}
		}},
		{"DisableNetworking", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.ContainerDefinitions[0].DisableNetworking = boolp(true)
		}, func(s *runtime.ContainerSpec) { s.NetworkMode = runtime.NetworkNone }},
		{"HostPidAndIpc", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.PidMode, td.IpcMode = ecs.PidModeHost, ecs.IpcModeHost
		}, func(s *runtime.ContainerSpec) { s.PidMode, s.IpcMode = "host", "host" }},
		{"Volumes", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.Volumes = []ecs.Volume{
				{Name: "logs", Host: &ecs.HostVolumeProperties{SourcePath: "/var/log/web"}},
				{Name: "scratch"},
				{Name: "cache", DockerVolumeConfiguration: &ecs.DockerVolumeConfiguration{Scope: ecs.DockerVolumeScopeShared, Autoprovision: boolp(true)}},
			}
			td.ContainerDefinitions[0].MountPoints = []ecs.MountPoint{
				{SourceVolume: "logs", ContainerPath: "/logs"},
				{SourceVolume: "scratch", ContainerPath: "/tmp/scratch"},
				{SourceVolume: "cache", ContainerPath: "/cache", ReadOnly: boolp(true)},
			}
		}, func(s *runtime.ContainerSpec) {
			s.Mounts = []runtime.Mount{
				{Type: runtime.MountBind, Source: "/var/log/web", Target: "/logs"},
				{Type: runtime.MountVolume, Source: "ecs-web-3-scratch-0123456789abcdef0123456789abcdef", Target: "/tmp/scratch"},
				{Type: runtime.MountVolume, Source: "cache", Target: "/cache", ReadOnly: true},
			}
		}},
		{"HarmlessMembersAccepted", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.TaskRoleARN = "arn:aws:iam::123456789012:role/app"
			td.ExecutionRoleARN = "arn:aws:iam::123456789012:role/exec"
			td.CPU = "256"
			td.RequiresCompatibilities = []ecs.Compatibility{ecs.CompatibilityEC2}
			td.RuntimePlatform = &ecs.RuntimePlatform{OperatingSystemFamily: ecs.OSFamilyLinux, CPUArchitecture: ecs.CPUArchitectureX8664}
			td.ContainerDefinitions[0].StartTimeout = i32(60)
			td.ContainerDefinitions[0].Privileged = boolp(false)
			td.ContainerDefinitions[0].ReadonlyRootFilesystem = boolp(false)
			td.ContainerDefinitions[0].MountPoints = []ecs.MountPoint{}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			td := baseTaskDef()
			task := ecs.Task{TaskARN: testTaskARN}
			if tt.edit != nil {
				tt.edit(&td, &task)
			}
			plan, err := Translate(&task, &td, testOpts)
			if err != nil {
				t.Fatal(err)
			}
			plans := plan.Containers
			want := base
			want.Labels = labels(nil)
			if tt.want != nil {
				tt.want(&want)
			}
			if len(plans) != 1 {
				t.Fatalf("%d plans", len(plans))
			}
			if !reflect.DeepEqual(plans[0].Spec, want) {
				t.Errorf("spec:\n got %+v\nwant %+v", plans[0].Spec, want)
			}
			if plans[0].StopTimeout != want.StopTimeout || plans[0].Name != "app" || !plans[0].Essential {
				t.Errorf("plan: %+v", plans[0])
			}
			// Pure: the same input gives the same output.
			again, _ := Translate(&task, &td, testOpts)
			if !reflect.DeepEqual(plan, again) {
				t.Error("Translate is not deterministic")
			}
		})
	}
}

func TestTranslateEssentialAndNames(t *testing.T) {
	t.Parallel()
	td := baseTaskDef()
	td.ContainerDefinitions = append(td.ContainerDefinitions, ecs.ContainerDefinition{Name: "sidecar", Image: "busybox", Memory: i32(16), Essential: boolp(false)})
	td.ContainerDefinitions[0].Essential = nil // omitted: essential
	plan, err := Translate(&ecs.Task{TaskARN: testTaskARN}, &td, TranslateOptions{Cluster: "demo", DefaultStopTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	plans := plan.Containers
	if !plans[0].Essential || plans[1].Essential {
		t.Errorf("essential: %v %v", plans[0].Essential, plans[1].Essential)
	}
	if plans[1].Spec.Name != "ecs-web-3-sidecar-0123456789abcdef0123456789abcdef" {
		t.Errorf("name %q", plans[1].Spec.Name)
	}
	if plans[1].StopTimeout != 10*time.Second {
		t.Errorf("default stop timeout %v", plans[1].StopTimeout)
	}
	if _, ok := plans[0].Spec.Labels[LabelContainerInstance]; ok {
		t.Error("instance label without an instance")
	}
}

func TestTranslateRefuses(t *testing.T) {
	t.Parallel()
	cd := func(f func(*ecs.ContainerDefinition)) func(*ecs.TaskDefinition, *ecs.Task) {
		return func(td *ecs.TaskDefinition, _ *ecs.Task) { f(&td.ContainerDefinitions[0]) }
	}
	tests := []struct {
		name string
		edit func(td *ecs.TaskDefinition, task *ecs.Task)
		want string // the error message
	}{
		{"Awsvpc", func(td *ecs.TaskDefinition, _ *ecs.Task) { td.NetworkMode = ecs.NetworkModeAwsvpc },
			`networkMode: "awsvpc" needs a network interface per task`},
		{"EFS", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.Volumes = []ecs.Volume{{Name: "data", EFSVolumeConfiguration: &ecs.EFSVolumeConfiguration{FileSystemID: "fs-1"}}}
		}, "volumes[0].efsVolumeConfiguration: Amazon EFS volumes are not available on this host"},
		{"VolumePlugin", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.Volumes = []ecs.Volume{{Name: "data", DockerVolumeConfiguration: &ecs.DockerVolumeConfiguration{Driver: "rexray/ebs"}}}
		}, `volumes[0].dockerVolumeConfiguration.driver: "rexray/ebs": only the local driver is supported`},
		{"RelativeSourcePath", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.Volumes = []ecs.Volume{{Name: "data", Host: &ecs.HostVolumeProperties{SourcePath: "data"}}}
		}, `volumes[0].host.sourcePath: "data" must be an absolute, clean host path`},
		{"UnknownSourceVolume", cd(func(c *ecs.ContainerDefinition) {
			c.MountPoints = []ecs.MountPoint{{SourceVolume: "data", ContainerPath: "/data"}}
		}), `container app: mountPoints[0].sourceVolume: "data" names no volume of the task definition`},
		{"PidTaskWithoutHolder", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.PidMode = ecs.PidModeTask
			td.ContainerDefinitions[0].Essential = boolp(false)
			td.ContainerDefinitions = append(td.ContainerDefinitions, ecs.ContainerDefinition{Name: "b", Image: "x", Memory: i32(16),
				DependsOn: []ecs.ContainerDependency{{ContainerName: "app", Condition: ecs.ContainerConditionComplete}}})
		}, "pidMode: with pidMode or ipcMode task, the Gantry agent shares the namespaces of an essential container that depends on no other"},
		{"PrivilegedNotAllowed", cd(func(c *ecs.ContainerDefinition) { c.Privileged = boolp(true) }),
			"container app: privileged: privileged containers are not allowed on this container instance (gantry agent --allow-privileged)"},
		{"Swap", cd(func(c *ecs.ContainerDefinition) { c.LinuxParameters = &ecs.LinuxParameters{MaxSwap: i32(100)} }),
			"container app: linuxParameters.maxSwap: swap settings are not supported by the Gantry agent yet"},
		{"AppArmorWithoutAppArmor", cd(func(c *ecs.ContainerDefinition) { c.DockerSecurityOptions = []string{"apparmor:docker-default"} }),
			`container app: dockerSecurityOptions[0]: "apparmor:docker-default": this host's engine does not enforce apparmor`},
		{"SELinuxWithoutSELinux", cd(func(c *ecs.ContainerDefinition) { c.DockerSecurityOptions = []string{"label:type:svirt_apache_t"} }),
			"this host's engine does not enforce selinux"},
		{"HealthCheckWithoutCMD", cd(func(c *ecs.ContainerDefinition) {
			c.HealthCheck = &ecs.HealthCheck{Command: []string{"curl", "localhost"}}
		}),
			`container app: healthCheck.command: ["curl" "localhost"] must start with CMD or CMD-SHELL`},
		{"DependsOnUnknown", cd(func(c *ecs.ContainerDefinition) {
			c.DependsOn = []ecs.ContainerDependency{{ContainerName: "x", Condition: ecs.ContainerConditionStart}}
		}), `container app: dependsOn[0].containerName: "x" names no other container of the task`},
		{"HealthyWithoutHealthCheck", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.ContainerDefinitions = append(td.ContainerDefinitions, ecs.ContainerDefinition{Name: "db", Image: "x", Memory: i32(16)})
			td.ContainerDefinitions[0].DependsOn = []ecs.ContainerDependency{{ContainerName: "db", Condition: ecs.ContainerConditionHealthy}}
		}, "container app: dependsOn[0]: container db has no healthCheck, so it can never be HEALTHY"},
		{"DependencyCycle", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.ContainerDefinitions = append(td.ContainerDefinitions, ecs.ContainerDefinition{Name: "db", Image: "x", Memory: i32(16),
				DependsOn: []ecs.ContainerDependency{{ContainerName: "app", Condition: ecs.ContainerConditionStart}}})
			td.ContainerDefinitions[0].DependsOn = []ecs.ContainerDependency{{ContainerName: "db", Condition: ecs.ContainerConditionStart}}
		}, "the containers' dependencies form a cycle: app -> db -> app"},
		{"LinksInHostMode", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.NetworkMode = ecs.NetworkModeHost
			td.ContainerDefinitions = append(td.ContainerDefinitions, ecs.ContainerDefinition{Name: "db", Image: "x", Memory: i32(16)})
			td.ContainerDefinitions[0].Links = []string{"db"}
		}, "container app: links: links need network mode bridge"},
		{"HostnameInHostMode", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.NetworkMode = ecs.NetworkModeHost
			td.ContainerDefinitions[0].Hostname = "x"
		}, "container app: hostname: a container in host network mode has the host's hostname"},
		{"FireLens", cd(func(c *ecs.ContainerDefinition) {
			c.LogConfiguration = &ecs.LogConfiguration{LogDriver: ecs.LogDriverAwsfirelens}
		}), "container app: logConfiguration.logDriver: awsfirelens (FireLens) is not supported by the Gantry agent yet"},
		{"LogDriverTheEngineLacks", cd(func(c *ecs.ContainerDefinition) {
			c.LogConfiguration = &ecs.LogConfiguration{LogDriver: ecs.LogDriverSplunk}
		}), `container app: logConfiguration.logDriver: "splunk": this host's engine has no such log driver (it has json-file, local)`},
		{"LogSecretOptions", cd(func(c *ecs.ContainerDefinition) {
			c.LogConfiguration = &ecs.LogConfiguration{LogDriver: ecs.LogDriverAwslogs, SecretOptions: []ecs.Secret{{Name: "x", ValueFrom: "y"}}}
		}), "container app: logConfiguration.secretOptions: secrets from SSM or Secrets Manager are not supported"},
		{"ProxyConfiguration", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.ProxyConfiguration = &ecs.ProxyConfiguration{ContainerName: "app"}
		}, "proxyConfiguration: App Mesh proxies need awsvpc"},
		{"WrongArch", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.RuntimePlatform = &ecs.RuntimePlatform{CPUArchitecture: ecs.CPUArchitectureArm64}
		}, "runtimePlatform.cpuArchitecture: ARM64 tasks cannot run on this x86_64 host"},
		{"Windows", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.RuntimePlatform = &ecs.RuntimePlatform{OperatingSystemFamily: ecs.OSFamilyWindowsServer2022Core}
		}, "runtimePlatform.operatingSystemFamily"},
		{"Secrets", cd(func(c *ecs.ContainerDefinition) {
			c.Secrets = []ecs.Secret{{Name: "A", ValueFrom: "arn:aws:ssm:us-east-1:123456789012:parameter/a"}}
		}), "container app: secrets: secrets from SSM Parameter Store or Secrets Manager are not supported by the Gantry agent yet"},
		{"RepositoryCredentials", cd(func(c *ecs.ContainerDefinition) {
			c.RepositoryCredentials = &ecs.RepositoryCredentials{CredentialsParameter: "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"}
		}), "container app: repositoryCredentials: private registry credentials from Secrets Manager are not supported"},
		{"EnvironmentFiles", cd(func(c *ecs.ContainerDefinition) {
			c.EnvironmentFiles = []ecs.EnvironmentFile{{Type: "s3", Value: "arn:aws:s3:::b/k.env"}}
		}), "container app: environmentFiles: environment files in S3 are not supported"},
		{"GPUNotAssigned", cd(func(c *ecs.ContainerDefinition) {
			c.ResourceRequirements = []ecs.ResourceRequirement{{Type: "GPU", Value: "1"}}
		}), "container app: resourceRequirements: the container requires 1 GPUs and the task assigns it 0"},
		{"GPUOverrideNotAssigned", func(td *ecs.TaskDefinition, task *ecs.Task) {
			td.ContainerDefinitions[0].ResourceRequirements = []ecs.ResourceRequirement{{Type: "GPU", Value: "1"}}
			task.Containers = []ecs.Container{{Name: "app", GPUIDs: []string{"g0"}}}
			task.Overrides = &ecs.TaskOverride{ContainerOverrides: []ecs.ContainerOverride{{Name: "app",
				ResourceRequirements: []ecs.ResourceRequirement{{Type: "GPU", Value: "2"}}}}}
		}, "container app: resourceRequirements: the container requires 2 GPUs and the task assigns it 1"},
		{"InferenceAccelerator", cd(func(c *ecs.ContainerDefinition) {
			c.ResourceRequirements = []ecs.ResourceRequirement{{Type: "InferenceAccelerator", Value: "dev"}}
		}), "container app: resourceRequirements: inference accelerators are not supported"},
		{"PortRange", cd(func(c *ecs.ContainerDefinition) {
			c.PortMappings = []ecs.PortMapping{{ContainerPortRange: "8000-8010"}}
		}), "portMappings[0].containerPortRange"},
		{"HostPortDiffersInHostMode", func(td *ecs.TaskDefinition, _ *ecs.Task) {
			td.NetworkMode = ecs.NetworkModeHost
			td.ContainerDefinitions[0].PortMappings = []ecs.PortMapping{{ContainerPort: i32(80), HostPort: i32(8080)}}
		}, "portMappings[0].hostPort: 8080 must equal containerPort 80"},
		{"ReservationAboveLimit", cd(func(c *ecs.ContainerDefinition) { c.MemoryReservation = i32(256) }),
			"container app: containerDefinition: MemoryReservation"},
		{"OverrideUnknownContainer", func(_ *ecs.TaskDefinition, task *ecs.Task) {
			task.Overrides = &ecs.TaskOverride{ContainerOverrides: []ecs.ContainerOverride{{Name: "nope", Command: []string{"x"}}}}
		}, `overrides.containerOverrides[0].name: the task definition has no container named "nope"`},
		{"OverrideNegativeCPU", func(_ *ecs.TaskDefinition, task *ecs.Task) {
			task.Overrides = &ecs.TaskOverride{ContainerOverrides: []ecs.ContainerOverride{{Name: "app", CPU: i32(-1)}}}
		}, "container app: cpu: -1 must not be negative"},
		{"OverrideZeroMemory", func(_ *ecs.TaskDefinition, task *ecs.Task) {
			task.Overrides = &ecs.TaskOverride{ContainerOverrides: []ecs.ContainerOverride{{Name: "app", Memory: i32(0)}}}
		}, "container app: memory: 0 must be positive"},
		{"OverrideEnvironmentFiles", func(_ *ecs.TaskDefinition, task *ecs.Task) {
			task.Overrides = &ecs.TaskOverride{ContainerOverrides: []ecs.ContainerOverride{{Name: "app",
				EnvironmentFiles: []ecs.EnvironmentFile{{Type: "s3", Value: "arn:aws:s3:::b/k"}}}}}
		}, "environmentFiles"},
		{"BadEnvName", cd(func(c *ecs.ContainerDefinition) { c.Environment = []ecs.KeyValuePair{{Name: "A=B", Value: "x"}} }),
			"container app: containerDefinition: Env"},
		{"NotATaskARN", func(_ *ecs.TaskDefinition, task *ecs.Task) { task.TaskARN = "nope" }, `taskArn: "nope" is not a task ARN`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			td := baseTaskDef()
			task := ecs.Task{TaskARN: testTaskARN}
			tt.edit(&td, &task)
			plan, err := Translate(&task, &td, testOpts)
			var re *RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("got %v, %+v; want a refusal", err, plan)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// Every member of ContainerDefinition is either translated or refused (or
// deliberately accepted without effect): a new member in the generated
// types must be classified here, never silently ignored.
func TestTranslateClassifiesEveryContainerMember(t *testing.T) {
	t.Parallel()
	handled := map[string]string{
		"Name": "translated", "Image": "translated", "CPU": "translated", "Memory": "translated",
		"MemoryReservation": "translated", "PortMappings": "translated", "Essential": "translated",
		"EntryPoint": "translated", "Command": "translated", "Environment": "translated",
		"WorkingDirectory": "translated", "User": "translated", "DockerLabels": "translated",
		"StopTimeout": "translated", "StartTimeout": "translated (dependents' deadline)",
		"LogConfiguration": "translated (awslogs kept locally; firelens and secretOptions refused)",
		"Links":            "translated", "MountPoints": "translated", "VolumesFrom": "translated",
		"LinuxParameters": "translated (swap refused)", "DependsOn": "translated", "Hostname": "translated",
		"DisableNetworking": "translated (network mode none)", "Privileged": "translated (if allowed)",
		"ReadonlyRootFilesystem": "translated", "DNSServers": "translated", "DNSSearchDomains": "translated",
		"ExtraHosts": "translated", "DockerSecurityOptions": "translated (what the engine enforces)",
		"Ulimits": "translated", "HealthCheck": "translated", "SystemControls": "translated",
		"VersionConsistency": "accepted: images are not pinned to digests yet",
		"RestartPolicy":      "refused when enabled",
	}
	for _, m := range unsupportedContainerMembers {
		handled[goFieldName(m.field)] = "refused"
	}
	typ := reflect.TypeFor[ecs.ContainerDefinition]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if _, ok := handled[f.Name]; !ok {
			t.Errorf("ContainerDefinition.%s is neither translated nor refused", f.Name)
		}
	}
}

// goFieldName maps an ECS member name to the generated Go field name.
func goFieldName(member string) string {
	typ := reflect.TypeFor[ecs.ContainerDefinition]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if strings.Split(f.Tag.Get("json"), ",")[0] == member {
			return f.Name
		}
	}
	return member
}

func TestTaskID(t *testing.T) {
	t.Parallel()
	for arn, want := range map[string]string{
		testTaskARN: "0123456789abcdef0123456789abcdef",
		"arn:aws:ecs:us-east-1:123456789012:task/0123abcd": "0123abcd", // old format, no cluster
		"arn:aws:ecs:us-east-1:123456789012:cluster/demo":  "",
		"task/demo/abc": "",
		"arn:aws:ecs:us-east-1:123456789012:task/demo/a b": "",
	} {
		if got := TaskID(arn); got != want {
			t.Errorf("TaskID(%q) = %q, want %q", arn, got, want)
		}
	}
}

// The same for the task definition's own members.
func TestTranslateClassifiesEveryTaskDefinitionMember(t *testing.T) {
	t.Parallel()
	handled := map[string]string{
		"ContainerDefinitions": "translated", "Family": "names and labels", "Revision": "names and labels",
		"NetworkMode": "translated", "Memory": "translated (caps containers)", "PidMode": "translated",
		"IpcMode": "translated", "Volumes": "translated (EFS, FSx, S3 Files refused)", "ProxyConfiguration": "refused",
		"InferenceAccelerators": "refused", "EphemeralStorage": "refused", "EnableFaultInjection": "refused",
		"RuntimePlatform": "checked against the host",
		"CPU":             "accepted: the scheduler's; not enforced",
		"TaskRoleARN":     "accepted: no credentials endpoint yet", "ExecutionRoleARN": "accepted: no ECR or awslogs yet",
		"TaskDefinitionARN": "metadata", "Status": "metadata", "RequiresAttributes": "the scheduler's",
		"PlacementConstraints": "the scheduler's", "Compatibilities": "metadata", "RequiresCompatibilities": "metadata",
		"RegisteredAt": "metadata", "DeregisteredAt": "metadata", "DeleteRequestedAt": "metadata", "RegisteredBy": "metadata",
	}
	typ := reflect.TypeFor[ecs.TaskDefinition]()
	for i := range typ.NumField() {
		if _, ok := handled[typ.Field(i).Name]; !ok {
			t.Errorf("TaskDefinition.%s is neither translated nor refused", typ.Field(i).Name)
		}
	}
}

func TestTranslateMultiContainer(t *testing.T) {
	t.Parallel()
	td := ecs.TaskDefinition{
		Family: "shop", Revision: 1, PidMode: ecs.PidModeTask,
		Volumes: []ecs.Volume{{Name: "shared"}},
		ContainerDefinitions: []ecs.ContainerDefinition{
			{Name: "app", Image: "app", Memory: i32(64),
				Links:       []string{"db:database"},
				VolumesFrom: []ecs.VolumeFrom{{SourceContainer: "data", ReadOnly: boolp(true)}},
				DependsOn: []ecs.ContainerDependency{{ContainerName: "init", Condition: ecs.ContainerConditionSuccess},
					{ContainerName: "db", Condition: ecs.ContainerConditionHealthy}}},
			{Name: "db", Image: "db", Memory: i32(64), StartTimeout: i32(90),
				HealthCheck: &ecs.HealthCheck{Command: []string{"CMD", "true"}}},
			{Name: "init", Image: "init", Memory: i32(16), Essential: boolp(false),
				MountPoints: []ecs.MountPoint{{SourceVolume: "shared", ContainerPath: "/shared"}}},
			{Name: "data", Image: "data", Memory: i32(16), Essential: boolp(false)},
		},
	}
	plan, err := Translate(&ecs.Task{TaskARN: testTaskARN}, &td, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	name := func(c string) string { return ContainerName("shop", 1, c, "0123456789abcdef0123456789abcdef") }
	app, db := plan.Containers[0], plan.Containers[1]
	if want := []runtime.Link{{Container: name("db"), Alias: "database"}}; !reflect.DeepEqual(app.Spec.Links, want) {
		t.Errorf("links %+v", app.Spec.Links)
	}
	if want := []runtime.VolumesFrom{{Container: name("data"), ReadOnly: true}}; !reflect.DeepEqual(app.Spec.VolumesFrom, want) {
		t.Errorf("volumesFrom %+v", app.Spec.VolumesFrom)
	}
	wantDeps := []Dependency{{"init", ecs.ContainerConditionSuccess}, {"db", ecs.ContainerConditionHealthy},
		{"db", ecs.ContainerConditionStart}, {"db", ecs.ContainerConditionStart}} // the link, the namespace
	if !reflect.DeepEqual(app.DependsOn, wantDeps) {
		t.Errorf("app depends on %+v, want %+v", app.DependsOn, wantDeps)
	}
	// pidMode task: db (the first essential container that depends on
	// nothing) holds the namespace, the others join it and wait for it to
	// start.
	init := plan.Containers[2]
	if db.Spec.PidMode != "" || app.Spec.PidMode != "container:"+name("db") || init.Spec.PidMode != "container:"+name("db") ||
		!reflect.DeepEqual(init.DependsOn, []Dependency{{"db", ecs.ContainerConditionStart}}) {
		t.Errorf("pid modes %q %q %q, init depends on %+v", app.Spec.PidMode, db.Spec.PidMode, init.Spec.PidMode, init.DependsOn)
	}
	if db.StartTimeout != 90*time.Second || !db.HealthCheck || app.HealthCheck {
		t.Errorf("db: start timeout %v, health check %v", db.StartTimeout, db.HealthCheck)
	}
	// Created after what they link to or take volumes from.
	if want := []int{1, 2, 3, 0}; !reflect.DeepEqual(plan.CreateOrder, want) {
		t.Errorf("create order %v, want %v", plan.CreateOrder, want)
	}
	if len(plan.Volumes) != 1 || plan.Volumes[0].Spec.Name != "ecs-shop-1-shared-0123456789abcdef0123456789abcdef" ||
		plan.Volumes[0].Shared || plan.Volumes[0].Spec.Labels[LabelVolumeScope] != "task" ||
		plan.Volumes[0].Spec.Labels[LabelTaskARN] != testTaskARN || plan.Volumes[0].Spec.Labels["dev.gantry.test"] != "t1" {
		t.Errorf("volumes %+v", plan.Volumes)
	}
}

func TestTranslateSharedVolume(t *testing.T) {
	t.Parallel()
	td := baseTaskDef()
	td.Volumes = []ecs.Volume{{Name: "pgdata", DockerVolumeConfiguration: &ecs.DockerVolumeConfiguration{
		Scope: ecs.DockerVolumeScopeShared, Autoprovision: boolp(true), DriverOpts: map[string]string{"type": "tmpfs"},
		Labels: map[string]string{"team": "db"}}}}
	plan, err := Translate(&ecs.Task{TaskARN: testTaskARN}, &td, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	want := []VolumePlan{{Name: "pgdata", Shared: true, Autoprovision: true, Spec: runtime.VolumeSpec{Name: "pgdata", Driver: "local",
		Options: map[string]string{"type": "tmpfs"}, Labels: map[string]string{"team": "db"}}}}
	if !reflect.DeepEqual(plan.Volumes, want) {
		t.Errorf("volumes %+v", plan.Volumes)
	}
}

func TestTranslatePrivilegedWhenAllowed(t *testing.T) {
	t.Parallel()
	td := baseTaskDef()
	td.ContainerDefinitions[0].Privileged = boolp(true)
	opts := testOpts
	opts.AllowPrivileged = true
	plan, err := Translate(&ecs.Task{TaskARN: testTaskARN}, &td, opts)
	if err != nil || !plan.Containers[0].Spec.Privileged {
		t.Fatalf("%v %+v", err, plan)
	}
}

// TestTranslateGPUs: a container gets the GPUs the scheduler pinned to it
// (its gpuIds in the task), and only it.
func TestTranslateGPUs(t *testing.T) {
	td := baseTaskDef()
	td.ContainerDefinitions[0].ResourceRequirements = []ecs.ResourceRequirement{{Type: ecs.ResourceTypeGPU, Value: "2"}}
	td.ContainerDefinitions = append(td.ContainerDefinitions, ecs.ContainerDefinition{Name: "side", Image: "busybox", Memory: i32(16)})
	task := ecs.Task{TaskARN: testTaskARN, Containers: []ecs.Container{{Name: "app", GPUIDs: []string{"g1", "g3"}}, {Name: "side"}}}
	plan, err := Translate(&task, &td, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Containers[0].Spec.GPUs; !slices.Equal(got, []string{"g1", "g3"}) || plan.Containers[0].Spec.Env[EnvNvidiaVisibleDevices] != "g1,g3" {
		t.Errorf("app GPUs = %q, env %v", got, plan.Containers[0].Spec.Env)
	}
	if got, env := plan.Containers[1].Spec.GPUs, plan.Containers[1].Spec.Env; got != nil || env[EnvNvidiaVisibleDevices] != "" {
		t.Errorf("side GPUs = %q, env %v", got, env)
	}
}

func TestTranslateSecurityOptionsTheEngineEnforces(t *testing.T) {
	t.Parallel()
	td := baseTaskDef()
	td.ContainerDefinitions[0].DockerSecurityOptions = []string{"apparmor:docker-default", "no-new-privileges:true"}
	opts := testOpts
	opts.SecurityOptions = []string{"name=apparmor", "name=seccomp,profile=default"}
	plan, err := Translate(&ecs.Task{TaskARN: testTaskARN}, &td, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Containers[0].Spec.SecurityOpt; !reflect.DeepEqual(got, []string{"apparmor=docker-default", "no-new-privileges"}) {
		t.Errorf("security options %q", got)
	}
}

func TestTranslateMetadataURI(t *testing.T) {
	t.Parallel()
	td := baseTaskDef()
	td.ContainerDefinitions[0].Environment = []ecs.KeyValuePair{{Name: EnvExecutionEnv, Value: "mine"}}
	opts := testOpts
	opts.MetadataEndpoint, opts.MetadataSecret = "http://172.17.0.1:51679", []byte("0123456789abcdef")
	plan, err := Translate(&ecs.Task{TaskARN: testTaskARN}, &td, opts)
	if err != nil {
		t.Fatal(err)
	}
	c := plan.Containers[0]
	if len(c.MetadataToken) != 32 || c.MetadataToken != MetadataToken(opts.MetadataSecret, testTaskARN, "app") {
		t.Errorf("token %q", c.MetadataToken)
	}
	if got := c.Spec.Env[EnvMetadataURIV4]; got != "http://172.17.0.1:51679/v4/"+c.MetadataToken {
		t.Errorf("%s = %q", EnvMetadataURIV4, got)
	}
	if c.Spec.Env[EnvExecutionEnv] != "mine" {
		t.Errorf("the definition's environment does not win: %q", c.Spec.Env[EnvExecutionEnv])
	}
	if MetadataToken([]byte("another secret"), testTaskARN, "app") == c.MetadataToken {
		t.Error("the token does not depend on the secret")
	}
}
