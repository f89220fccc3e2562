package docker

import (
	"errors"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
	"github.com/google/go-cmp/cmp"

	"github.com/gantry-dev/gantry/agent/runtime"
)

func ptr[T any](v T) *T { return &v }

// base is the HostConfig every translation starts from.
func base(mode string) *container.HostConfig {
	return &container.HostConfig{
		NetworkMode:   container.NetworkMode(mode),
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		Init:          ptr(false),
	}
}

func TestTranslate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		spec   runtime.ContainerSpec
		policy Policy
		want   EngineConfig
	}{
		{
			name: "Minimal",
			spec: runtime.ContainerSpec{Image: "app:1"},
			want: EngineConfig{Config: &container.Config{Image: "app:1"}, Host: base("bridge"), Network: &network.NetworkingConfig{}},
		},
		{
			name: "ProcessAndEnvironment",
			spec: runtime.ContainerSpec{
				Name: "ecs-web-1-app-abc", Image: "app:1",
				Entrypoint: []string{"/testapp"}, Command: []string{"serve", "--port", "80"},
				Env:        map[string]string{"B": "2", "A": "1=one"},
				Labels:     map[string]string{"com.amazonaws.ecs.task-arn": "arn:aws:ecs:us-east-1:1:task/c/t"},
				WorkingDir: "/srv", User: "1000:1000", Hostname: "web", StopTimeout: 1500 * time.Millisecond,
			},
			want: EngineConfig{
				Name: "ecs-web-1-app-abc",
				Config: &container.Config{
					Image: "app:1", Entrypoint: []string{"/testapp"}, Cmd: []string{"serve", "--port", "80"},
					Env:        []string{"A=1=one", "B=2"},
					Labels:     map[string]string{"com.amazonaws.ecs.task-arn": "arn:aws:ecs:us-east-1:1:task/c/t"},
					WorkingDir: "/srv", User: "1000:1000", Hostname: "web", StopTimeout: ptr(2),
				},
				Host: base("bridge"), Network: &network.NetworkingConfig{},
			},
		},
		{
			name: "BridgePortsDynamicAndStatic",
			spec: runtime.ContainerSpec{Image: "app:1", Ports: []runtime.PortMapping{
				{ContainerPort: 8080},
				{ContainerPort: 53, HostPort: 5353, Protocol: runtime.UDP, HostIP: "127.0.0.1"},
			}},
			want: EngineConfig{
				Config: &container.Config{Image: "app:1", ExposedPorts: nat.PortSet{"8080/tcp": {}, "53/udp": {}}},
				Host: func() *container.HostConfig {
					h := base("bridge")
					h.PortBindings = nat.PortMap{
						"8080/tcp": {{HostPort: ""}},
						"53/udp":   {{HostIP: "127.0.0.1", HostPort: "5353"}},
					}
					return h
				}(),
				Network: &network.NetworkingConfig{},
			},
		},
		{
			name: "HostModePortsBindThemselves",
			spec: runtime.ContainerSpec{Image: "app:1", NetworkMode: runtime.NetworkHost, Ports: []runtime.PortMapping{
				{ContainerPort: 8080}, {ContainerPort: 9090, HostPort: 9090},
			}},
			want: EngineConfig{
				Config: &container.Config{Image: "app:1", ExposedPorts: nat.PortSet{"8080/tcp": {}, "9090/tcp": {}}},
				Host: func() *container.HostConfig {
					h := base("host")
					h.PortBindings = nat.PortMap{"8080/tcp": {{HostPort: "8080"}}, "9090/tcp": {{HostPort: "9090"}}}
					return h
				}(),
				Network: &network.NetworkingConfig{},
			},
		},
		{
			name: "ResourcesAndSecurity",
			spec: runtime.ContainerSpec{
				Image: "app:1", NetworkMode: runtime.NetworkNone,
				CPUShares: 512, MemoryLimit: 256 << 20, MemoryReservation: 128 << 20, ShmSize: 64 << 20,
				Ulimits:        []runtime.Ulimit{{Name: "nofile", Soft: 1024, Hard: 4096}},
				ReadonlyRootfs: true, CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"ALL"}, Init: true,
				PidMode: "host", IpcMode: "container:abc", Sysctls: map[string]string{"kernel.msgmax": "65536"},
				SecurityOpt: []string{"no-new-privileges"},
				Devices:     []runtime.Device{{HostPath: "/dev/fuse"}, {HostPath: "/dev/sda", ContainerPath: "/dev/xvda", Permissions: "r"}},
			},
			want: EngineConfig{
				Config: &container.Config{Image: "app:1"},
				Host: func() *container.HostConfig {
					h := base("none")
					h.Resources = container.Resources{
						CPUShares: 512, Memory: 256 << 20, MemoryReservation: 128 << 20,
						Ulimits: []*container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 4096}},
						Devices: []container.DeviceMapping{
							{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"},
							{PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "r"},
						},
					}
					h.ShmSize = 64 << 20
					h.ReadonlyRootfs, h.CapAdd, h.CapDrop, h.Init = true, []string{"NET_ADMIN"}, []string{"ALL"}, ptr(true)
					h.PidMode, h.IpcMode, h.Sysctls = "host", "container:abc", map[string]string{"kernel.msgmax": "65536"}
					h.SecurityOpt = []string{"no-new-privileges"}
					return h
				}(),
				Network: &network.NetworkingConfig{},
			},
		},
		{
			name:   "PrivilegedAllowedByPolicy",
			spec:   runtime.ContainerSpec{Image: "app:1", Privileged: true},
			policy: Policy{AllowPrivileged: true},
			want: EngineConfig{
				Config:  &container.Config{Image: "app:1"},
				Host:    func() *container.HostConfig { h := base("bridge"); h.Privileged = true; return h }(),
				Network: &network.NetworkingConfig{},
			},
		},
		{
			name: "GPUs",
			spec: runtime.ContainerSpec{Image: "app:1", GPUs: []string{"GPU-1", "GPU-3"}},
			want: EngineConfig{
				Config: &container.Config{Image: "app:1"},
				Host: func() *container.HostConfig {
					h := base("bridge")
					h.DeviceRequests = []container.DeviceRequest{{Driver: "nvidia", DeviceIDs: []string{"GPU-1", "GPU-3"}, Capabilities: [][]string{{"gpu"}}}}
					return h
				}(),
				Network: &network.NetworkingConfig{},
			},
		},
		{
			name: "StorageNetworkingLogsHealth",
			spec: runtime.ContainerSpec{
				Image: "app:1",
				Mounts: []runtime.Mount{
					{Type: runtime.MountBind, Source: "/srv/data", Target: "/data", ReadOnly: true},
					{Type: runtime.MountBind, Source: "/srv/scratch", Target: "/scratch"},
					{Type: runtime.MountVolume, Source: "shared", Target: "/shared"},
					{Type: runtime.MountVolume, Target: "/anon"},
				},
				VolumesFrom: []runtime.VolumesFrom{{Container: "init", ReadOnly: true}, {Container: "side"}},
				Tmpfs:       []runtime.Tmpfs{{Path: "/tmp", Size: 1 << 20, Options: []string{"noexec"}}, {Path: "/run"}},
				DNS:         []string{"10.0.0.2"}, DNSSearch: []string{"svc.local"},
				ExtraHosts: []runtime.HostEntry{{Hostname: "db", IP: "10.0.0.9"}, {Hostname: "agent", IP: "host-gateway"}},
				Links:      []runtime.Link{{Container: "db-1", Alias: "db"}, {Container: "cache"}},
				LogConfig:  runtime.LogConfig{Driver: "json-file", Options: map[string]string{"max-size": "10m"}},
				HealthCheck: &runtime.HealthCheck{
					Test:     []string{"CMD", "/testapp", "healthcheck", "http://localhost/health"},
					Interval: time.Second, Timeout: 2 * time.Second, StartPeriod: 3 * time.Second, Retries: 2,
				},
			},
			want: EngineConfig{
				Config: &container.Config{Image: "app:1", Healthcheck: &container.HealthConfig{
					Test:     []string{"CMD", "/testapp", "healthcheck", "http://localhost/health"},
					Interval: time.Second, Timeout: 2 * time.Second, StartPeriod: 3 * time.Second, Retries: 2,
				}},
				Host: func() *container.HostConfig {
					h := base("bridge")
					h.Binds = []string{"/srv/data:/data:ro", "/srv/scratch:/scratch"}
					h.Mounts = []mount.Mount{
						{Type: mount.TypeVolume, Source: "shared", Target: "/shared"},
						{Type: mount.TypeVolume, Target: "/anon"},
					}
					h.VolumesFrom = []string{"init:ro", "side"}
					h.Tmpfs = map[string]string{"/tmp": "noexec,size=1048576", "/run": ""}
					h.DNS, h.DNSSearch = []string{"10.0.0.2"}, []string{"svc.local"}
					h.ExtraHosts = []string{"db:10.0.0.9", "agent:host-gateway"}
					h.Links = []string{"db-1:db", "cache:cache"}
					h.LogConfig = container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m"}}
					return h
				}(),
				Network: &network.NetworkingConfig{},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Translate(tt.spec, tt.policy)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Translate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTranslateRefuses(t *testing.T) {
	t.Parallel()
	ok := runtime.ContainerSpec{Image: "app:1"}
	with := func(f func(*runtime.ContainerSpec)) runtime.ContainerSpec { s := ok; f(&s); return s }
	tests := []struct {
		name  string
		spec  runtime.ContainerSpec
		kind  error
		field string
	}{
		{"ErrNoImage", runtime.ContainerSpec{}, runtime.ErrInvalidSpec, "Image"},
		{"ErrBadName", with(func(s *runtime.ContainerSpec) { s.Name = "/bad name" }), runtime.ErrInvalidSpec, "Name"},
		{"ErrEnvName", with(func(s *runtime.ContainerSpec) { s.Env = map[string]string{"A=B": "x"} }), runtime.ErrInvalidSpec, "Env"},
		{"ErrAWSVPC", with(func(s *runtime.ContainerSpec) { s.NetworkMode = "awsvpc" }), runtime.ErrUnsupported, "NetworkMode"},
		{"ErrPrivilegedByPolicy", with(func(s *runtime.ContainerSpec) { s.Privileged = true }), runtime.ErrUnsupported, "Privileged"},
		{"ErrPortZero", with(func(s *runtime.ContainerSpec) { s.Ports = []runtime.PortMapping{{}} }), runtime.ErrInvalidSpec, "Ports[0].ContainerPort"},
		{"ErrProtocol", with(func(s *runtime.ContainerSpec) { s.Ports = []runtime.PortMapping{{ContainerPort: 1, Protocol: "sctp"}} }), runtime.ErrInvalidSpec, "Ports[0].Protocol"},
		{"ErrHostModeHostPort", with(func(s *runtime.ContainerSpec) {
			s.NetworkMode = runtime.NetworkHost
			s.Ports = []runtime.PortMapping{{ContainerPort: 80, HostPort: 8080}}
		}), runtime.ErrInvalidSpec, "Ports[0].HostPort"},
		{"ErrPortsWithoutNetwork", with(func(s *runtime.ContainerSpec) {
			s.NetworkMode = runtime.NetworkNone
			s.Ports = []runtime.PortMapping{{ContainerPort: 80}}
		}), runtime.ErrInvalidSpec, "Ports[0].ContainerPort"},
		{"ErrHostnameInHostMode", with(func(s *runtime.ContainerSpec) { s.NetworkMode, s.Hostname = runtime.NetworkHost, "x" }), runtime.ErrInvalidSpec, "Hostname"},
		{"ErrDNS", with(func(s *runtime.ContainerSpec) { s.DNS = []string{"dns.google"} }), runtime.ErrInvalidSpec, "DNS[0]"},
		{"ErrExtraHost", with(func(s *runtime.ContainerSpec) { s.ExtraHosts = []runtime.HostEntry{{Hostname: "db", IP: "nope"}} }), runtime.ErrInvalidSpec, "ExtraHosts[0].IP"},
		{"ErrLinksNeedBridge", with(func(s *runtime.ContainerSpec) {
			s.NetworkMode = runtime.NetworkHost
			s.Links = []runtime.Link{{Container: "db"}}
		}), runtime.ErrInvalidSpec, "Links"},
		{"ErrMemoryBelowEngineMinimum", with(func(s *runtime.ContainerSpec) { s.MemoryLimit = 4 << 20 }), runtime.ErrInvalidSpec, "MemoryLimit"},
		{"ErrReservationBelowEngineMinimum", with(func(s *runtime.ContainerSpec) { s.MemoryReservation = 1 << 20 }), runtime.ErrInvalidSpec, "MemoryReservation"},
		{"ErrReservationAboveLimit", with(func(s *runtime.ContainerSpec) { s.MemoryLimit, s.MemoryReservation = 64<<20, 128<<20 }), runtime.ErrInvalidSpec, "MemoryReservation"},
		{"ErrNegativeShares", with(func(s *runtime.ContainerSpec) { s.CPUShares = -1 }), runtime.ErrInvalidSpec, "CPUShares"},
		{"ErrUlimitName", with(func(s *runtime.ContainerSpec) { s.Ulimits = []runtime.Ulimit{{Name: "files"}} }), runtime.ErrInvalidSpec, "Ulimits[0].Name"},
		{"ErrUlimitSoftAboveHard", with(func(s *runtime.ContainerSpec) { s.Ulimits = []runtime.Ulimit{{Name: "nofile", Soft: 2, Hard: 1}} }), runtime.ErrInvalidSpec, "Ulimits[0].Soft"},
		{"ErrMountTarget", with(func(s *runtime.ContainerSpec) {
			s.Mounts = []runtime.Mount{{Type: runtime.MountBind, Source: "/a", Target: "data"}}
		}), runtime.ErrInvalidSpec, "Mounts[0].Target"},
		{"ErrBindSourceRelative", with(func(s *runtime.ContainerSpec) {
			s.Mounts = []runtime.Mount{{Type: runtime.MountBind, Source: "a", Target: "/data"}}
		}), runtime.ErrInvalidSpec, "Mounts[0].Source"},
		{"ErrMountType", with(func(s *runtime.ContainerSpec) {
			s.Mounts = []runtime.Mount{{Type: "efs", Source: "fs-1", Target: "/data"}}
		}), runtime.ErrUnsupported, "Mounts[0].Type"},
		{"ErrTmpfsPath", with(func(s *runtime.ContainerSpec) { s.Tmpfs = []runtime.Tmpfs{{Path: "tmp"}} }), runtime.ErrInvalidSpec, "Tmpfs[0].Path"},
		{"ErrDevicePermissions", with(func(s *runtime.ContainerSpec) {
			s.Devices = []runtime.Device{{HostPath: "/dev/fuse", Permissions: "rx"}}
		}), runtime.ErrInvalidSpec, "Devices[0].Permissions"},
		{"ErrCapability", with(func(s *runtime.ContainerSpec) { s.CapAdd = []string{"NET ADMIN"} }), runtime.ErrInvalidSpec, "CapAdd"},
		{"ErrPidMode", with(func(s *runtime.ContainerSpec) { s.PidMode = "task" }), runtime.ErrInvalidSpec, "PidMode"},
		{"ErrIpcMode", with(func(s *runtime.ContainerSpec) { s.IpcMode = "container:" }), runtime.ErrInvalidSpec, "IpcMode"},
		{"ErrHealthTest", with(func(s *runtime.ContainerSpec) { s.HealthCheck = &runtime.HealthCheck{Test: []string{"curl", "x"}} }), runtime.ErrInvalidSpec, "HealthCheck.Test"},
		{"ErrHealthCmdShellArgs", with(func(s *runtime.ContainerSpec) {
			s.HealthCheck = &runtime.HealthCheck{Test: []string{"CMD-SHELL", "a", "b"}}
		}), runtime.ErrInvalidSpec, "HealthCheck.Test"},
		{"ErrHealthIntervalBelowEngineMinimum", with(func(s *runtime.ContainerSpec) {
			s.HealthCheck = &runtime.HealthCheck{Test: []string{"NONE"}, Interval: time.Microsecond}
		}), runtime.ErrInvalidSpec, "HealthCheck.Interval"},
		{"ErrStopTimeout", with(func(s *runtime.ContainerSpec) { s.StopTimeout = -time.Second }), runtime.ErrInvalidSpec, "StopTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Translate(tt.spec, Policy{})
			var se *runtime.SpecError
			if !errors.Is(err, tt.kind) || !errors.As(err, &se) || se.Field != tt.field {
				t.Fatalf("err = %v, want %v on field %s", err, tt.kind, tt.field)
			}
			if se.Reason == "" || err.Error() == "" {
				t.Fatalf("empty reason: %#v", se)
			}
		})
	}
}
