package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/agent/runtime"
	"github.com/gantry-dev/gantry/ecs"
)

var dockerInfo = runtime.Info{
	Runtime: "docker", EngineVersion: "20.10.24", APIVersion: "1.41", OS: "linux", Arch: "amd64",
	Hostname: "host1", CPUs: 4, MemoryBytes: 8<<30 + 123<<10, LogDrivers: []string{"awslogs", "json-file", "local", "syslog"},
}

func resource(t *testing.T, rs []ecs.Resource, name string) ecs.Resource {
	t.Helper()
	i := slices.IndexFunc(rs, func(r ecs.Resource) bool { return r.Name == name })
	if i < 0 {
		t.Fatalf("no %s resource in %s", name, jsonString(rs))
	}
	return rs[i]
}

func attrs(as []ecs.Attribute) map[string]string {
	m := map[string]string{}
	for _, a := range as {
		m[a.Name] = a.Value
	}
	return m
}

func TestRegistration(t *testing.T) {
	t.Parallel()
	cfg := &Config{Cluster: "demo", AvailabilityZone: "us-east-1a", InstanceType: "gantry.docker", Version: "1.2.3",
		Attributes: map[string]string{"stack": "prod", AttrInstanceType: "m5.large"}}
	req, err := registration(cfg, dockerInfo, identity{ContainerInstanceARN: "arn:x", InstanceToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	if cpu := resource(t, req.Resources, "CPU"); cpu.Type != "INTEGER" || cpu.IntegerValue != 4096 {
		t.Errorf("CPU %s", jsonString(cpu))
	}
	if mem := resource(t, req.Resources, "MEMORY"); mem.Type != "INTEGER" || mem.IntegerValue != 8192 {
		t.Errorf("MEMORY %s", jsonString(mem))
	}
	if p := resource(t, req.Resources, "PORTS"); p.Type != "STRINGSET" || strings.Join(p.StringSetValue, ",") != "22,2375,2376,51678,51679" {
		t.Errorf("PORTS %s", jsonString(p))
	}
	if p := resource(t, req.Resources, "PORTS_UDP"); p.Type != "STRINGSET" || len(p.StringSetValue) != 0 {
		t.Errorf("PORTS_UDP %s", jsonString(p))
	}
	a := attrs(req.Attributes)
	for name, want := range map[string]string{
		"ecs.os-type": "linux", "ecs.os-family": "LINUX", "ecs.cpu-architecture": "x86_64",
		"ecs.availability-zone": "us-east-1a", "ecs.instance-type": "m5.large", "stack": "prod",
		"com.amazonaws.ecs.capability.docker-remote-api.1.17":   "",
		"com.amazonaws.ecs.capability.docker-remote-api.1.41":   "",
		"com.amazonaws.ecs.capability.logging-driver.json-file": "",
		"com.amazonaws.ecs.capability.logging-driver.none":      "",
		"com.amazonaws.ecs.capability.logging-driver.awslogs":   "",
		"ecs.capability.execution-role-awslogs":                 "",
		"ecs.capability.container-ordering":                     "",
		"ecs.capability.container-health-check":                 "",
		"ecs.capability.pid-ipc-namespace-sharing":              "",
		"ecs.capability.docker-plugin.local":                    "",
		"ecs.capability.task-cpu-mem-limit":                     "",
		"com.amazonaws.ecs.capability.ecr-auth":                 "", // the built-in registry
		"ecs.capability.execution-role-ecr-pull":                "",
	} {
		if got, ok := a[name]; !ok || got != want {
			t.Errorf("attribute %s = %q (present %v), want %q", name, got, ok, want)
		}
	}
	for _, absent := range []string{
		"com.amazonaws.ecs.capability.docker-remote-api.1.42",
		"com.amazonaws.ecs.capability.privileged-container", // not without AllowPrivileged
		"com.amazonaws.ecs.capability.task-iam-role",
		"ecs.capability.secrets.ssm.environment-variables",
		"ecs.capability.efs",
		"ecs.capability.firelens.fluentbit",
		"ecs.capability.task-eni",
		"com.amazonaws.ecs.capability.logging-driver.splunk", // the engine has no splunk driver
	} {
		if _, ok := a[absent]; ok {
			t.Errorf("attribute %s advertised, but the agent does not honour it", absent)
		}
	}
	if !slices.IsSortedFunc(req.Attributes, func(x, y ecs.Attribute) int { return strings.Compare(x.Name, y.Name) }) {
		t.Error("attributes not sorted")
	}
	if req.VersionInfo.AgentVersion != "1.2.3" || req.VersionInfo.DockerVersion != "DockerVersion: 20.10.24" {
		t.Errorf("versionInfo %s", jsonString(req.VersionInfo))
	}
	if req.ContainerInstanceARN != "arn:x" || req.InstanceToken != "tok" || req.Cluster != "demo" || req.Hostname != "host1" {
		t.Errorf("identity: %s", jsonString(req))
	}
}

func TestRegistrationOverrides(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		cpu, mem, res    int
		wantCPU, wantMem int32
		wantErr          string
	}{
		{"Detected", 0, 0, 0, 4096, 8192, ""},
		{"Reserve", 0, 0, 512, 4096, 7680, ""},
		{"Overrides", 1024, 2048, 0, 1024, 2048, ""},
		{"OverrideAndReserve", 0, 2048, 256, 4096, 1792, ""},
		{"ReserveTooLarge", 0, 1024, 1024, 0, 0, "leaves nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := registration(&Config{CPU: tt.cpu, Memory: tt.mem, ReservedMemory: tt.res}, dockerInfo, identity{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c, m := resource(t, req.Resources, "CPU").IntegerValue, resource(t, req.Resources, "MEMORY").IntegerValue; c != tt.wantCPU || m != tt.wantMem {
				t.Errorf("CPU %d MEMORY %d, want %d %d", c, m, tt.wantCPU, tt.wantMem)
			}
		})
	}
}

// TestRegistrationGPUs: GPUs are registered as ECS's agent registers them,
// a STRINGSET resource of their IDs, and only when there are some.
func TestRegistrationGPUs(t *testing.T) {
	t.Parallel()
	req, err := registration(&Config{GPUs: []string{"GPU-a", "GPU-b"}}, dockerInfo, identity{})
	if err != nil {
		t.Fatal(err)
	}
	if g := resource(t, req.Resources, "GPU"); g.Type != "STRINGSET" || !slices.Equal(g.StringSetValue, []string{"GPU-a", "GPU-b"}) {
		t.Errorf("GPU resource %+v", g)
	}
	req, _ = registration(&Config{}, dockerInfo, identity{})
	for _, r := range req.Resources {
		if r.Name == "GPU" {
			t.Errorf("GPU registered without GPUs: %+v", r)
		}
	}
}

func TestRegistrationOldEngineAndSim(t *testing.T) {
	t.Parallel()
	old := dockerInfo
	old.APIVersion = "1.24"
	req, _ := registration(&Config{}, old, identity{})
	a := attrs(req.Attributes)
	if _, ok := a["com.amazonaws.ecs.capability.docker-remote-api.1.24"]; !ok {
		t.Error("1.24 missing")
	}
	if _, ok := a["com.amazonaws.ecs.capability.docker-remote-api.1.25"]; ok {
		t.Error("1.25 advertised by a 1.24 engine")
	}
	simInfo := runtime.Info{Runtime: "sim", APIVersion: "sim", OS: "linux", Arch: "arm64", CPUs: 2, MemoryBytes: 1 << 30}
	req, _ = registration(&Config{}, simInfo, identity{})
	a = attrs(req.Attributes)
	if _, ok := a["com.amazonaws.ecs.capability.docker-remote-api.1.41"]; !ok || a["ecs.cpu-architecture"] != "arm64" {
		t.Errorf("sim attributes %v", a)
	}
}

func TestIdentityPersists(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "agent")
	if id, err := loadIdentity(dir); err != nil || id != (identity{}) {
		t.Fatalf("missing file: %+v %v", id, err)
	}
	want := identity{ContainerInstanceARN: "arn:x", InstanceToken: "secret", Cluster: "demo", Server: "http://s"}
	if err := want.save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := loadIdentity(dir)
	if err != nil || got != want {
		t.Fatalf("got %+v %v", got, err)
	}
	fi, err := os.Stat(filepath.Join(dir, identityFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v %v", fi.Mode(), err)
	}
	os.WriteFile(filepath.Join(dir, identityFile), []byte("{"), 0o600)
	if _, err := loadIdentity(dir); err == nil {
		t.Error("a corrupt identity file was accepted")
	}
}

func TestPrivilegedCapabilityOnlyWhenAllowed(t *testing.T) {
	t.Parallel()
	req, _ := registration(&Config{AllowPrivileged: true}, dockerInfo, identity{})
	if _, ok := attrs(req.Attributes)["com.amazonaws.ecs.capability.privileged-container"]; !ok {
		t.Error("privileged-container not advertised with AllowPrivileged")
	}
}

// The capabilities the agent advertises line up with the requiresAttributes
// ECS (ecs/taskdef_defaults.go) derives for every feature the agent
// implements: a task definition using them all is placeable here, and the
// translator accepts it.
func TestAdvertisedCapabilitiesCoverSupportedFeatures(t *testing.T) {
	t.Parallel()
	in := &ecs.RegisterTaskDefinitionRequest{
		Family: "everything", NetworkMode: ecs.NetworkModeBridge, CPU: "512", Memory: "1024",
		PidMode: ecs.PidModeTask, IpcMode: ecs.IpcModeTask,
		ExecutionRoleARN: "arn:aws:iam::123456789012:role/exec",
		Volumes: []ecs.Volume{
			{Name: "host", Host: &ecs.HostVolumeProperties{SourcePath: "/srv/data"}},
			{Name: "scratch", DockerVolumeConfiguration: &ecs.DockerVolumeConfiguration{Scope: ecs.DockerVolumeScopeTask}},
			{Name: "shared", DockerVolumeConfiguration: &ecs.DockerVolumeConfiguration{Scope: ecs.DockerVolumeScopeShared, Autoprovision: boolp(true)}},
		},
		ContainerDefinitions: []ecs.ContainerDefinition{
			{Name: "app", Image: "nginx", Memory: i32(128), Essential: boolp(true),
				DockerLabels: map[string]string{"a": "b"},
				Ulimits:      []ecs.Ulimit{{Name: "nofile", SoftLimit: 1024, HardLimit: 1024}},
				LinuxParameters: &ecs.LinuxParameters{InitProcessEnabled: boolp(true),
					Capabilities: &ecs.KernelCapabilities{Drop: []string{"NET_RAW"}}},
				HealthCheck:  &ecs.HealthCheck{Command: []string{"CMD-SHELL", "true"}},
				StopTimeout:  i32(10),
				StartTimeout: i32(60),
				Privileged:   boolp(true),
				MountPoints:  []ecs.MountPoint{{SourceVolume: "host", ContainerPath: "/data"}, {SourceVolume: "scratch", ContainerPath: "/scratch"}},
				LogConfiguration: &ecs.LogConfiguration{LogDriver: ecs.LogDriverAwslogs,
					Options: map[string]string{"awslogs-group": "g", "awslogs-region": "us-east-1"}}},
			{Name: "sidecar", Image: "busybox", Memory: i32(32), Essential: boolp(true),
				Links:            []string{"app"},
				DependsOn:        []ecs.ContainerDependency{{ContainerName: "app", Condition: ecs.ContainerConditionHealthy}},
				MountPoints:      []ecs.MountPoint{{SourceVolume: "shared", ContainerPath: "/shared"}},
				LogConfiguration: &ecs.LogConfiguration{LogDriver: ecs.LogDriverSyslog}},
			{Name: "plain", Image: "busybox", Memory: i32(32), Essential: boolp(false),
				LogConfiguration: &ecs.LogConfiguration{LogDriver: ecs.LogDriverJSONFile, Options: map[string]string{"max-size": "1m"}}},
		},
	}
	td, err := ecs.NewTaskDefinition(in)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{AllowPrivileged: true}
	req, err := registration(cfg, dockerInfo, identity{})
	if err != nil {
		t.Fatal(err)
	}
	have := attrs(req.Attributes)
	if len(td.RequiresAttributes) < 10 {
		t.Fatalf("only %d required attributes derived: %s", len(td.RequiresAttributes), jsonString(td.RequiresAttributes))
	}
	for _, a := range td.RequiresAttributes {
		if _, ok := have[a.Name]; !ok {
			t.Errorf("the task definition requires %s, which the agent does not advertise", a.Name)
		}
	}
	opts := testOpts
	opts.AllowPrivileged, opts.LogDrivers = true, dockerInfo.LogDrivers
	if _, err := Translate(&ecs.Task{TaskARN: testTaskARN}, td, opts); err != nil {
		t.Errorf("Translate refuses what the agent advertises: %v", err)
	}
}
