package docker

import (
	"testing"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/go-connections/nat"
	"github.com/google/go-cmp/cmp"

	"github.com/gantry-dev/gantry/agent/runtime"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	created := "2026-01-02T03:04:05.123456789Z"
	started := "2026-01-02T03:04:06Z"
	finished := "2026-01-02T03:05:00Z"
	never := "0001-01-01T00:00:00Z"
	at := func(s string) time.Time { t, _ := time.Parse(time.RFC3339Nano, s); return t }
	inspect := func(state container.State, host *container.HostConfig, ns *container.NetworkSettings) container.InspectResponse {
		return container.InspectResponse{
			ContainerJSONBase: &container.ContainerJSONBase{
				ID: "abc", Name: "/web", Image: "sha256:feed", Created: created, State: &state, HostConfig: host,
			},
			Config:          &container.Config{Image: "app:1", Labels: map[string]string{"k": "v"}},
			NetworkSettings: ns,
		}
	}
	bridge := &container.HostConfig{NetworkMode: "bridge"}
	tests := []struct {
		name string
		in   container.InspectResponse
		want runtime.ContainerStatus
	}{
		{
			name: "CreatedHasNoTimesOrPorts",
			in: inspect(container.State{Status: container.StateCreated, StartedAt: never, FinishedAt: never}, bridge,
				&container.NetworkSettings{NetworkSettingsBase: container.NetworkSettingsBase{Ports: nat.PortMap{"80/tcp": nil}}}),
			want: runtime.ContainerStatus{ID: "abc", Name: "web", Image: "app:1", ImageID: "sha256:feed",
				Labels: map[string]string{"k": "v"}, State: runtime.StateCreated, CreatedAt: at(created)},
		},
		{
			name: "RunningHealthyWithDynamicPorts",
			in: inspect(container.State{Status: container.StateRunning, StartedAt: started, FinishedAt: never,
				Health: &container.Health{Status: container.Healthy, Log: []*container.HealthcheckResult{{Output: "ok\n"}}}},
				bridge, &container.NetworkSettings{
					NetworkSettingsBase: container.NetworkSettingsBase{Ports: nat.PortMap{
						"8080/tcp": {{HostIP: "::", HostPort: "49154"}, {HostIP: "0.0.0.0", HostPort: "49153"}},
						"53/udp":   {{HostIP: "", HostPort: "5353"}},
					}},
					Networks: map[string]*network.EndpointSettings{"bridge": {IPAddress: "172.17.0.2"}},
				}),
			want: runtime.ContainerStatus{ID: "abc", Name: "web", Image: "app:1", ImageID: "sha256:feed",
				Labels: map[string]string{"k": "v"}, State: runtime.StateRunning, CreatedAt: at(created), StartedAt: at(started),
				Health: runtime.HealthHealthy, HealthOutput: "ok",
				Ports: []runtime.PortBinding{
					{ContainerPort: 53, HostPort: 5353, Protocol: runtime.UDP, HostIP: "0.0.0.0"},
					{ContainerPort: 8080, HostPort: 49153, Protocol: runtime.TCP, HostIP: "0.0.0.0"},
					{ContainerPort: 8080, HostPort: 49154, Protocol: runtime.TCP, HostIP: "::"},
				},
				Networks: []runtime.NetworkAddress{{Network: "bridge", IPv4: "172.17.0.2"}},
			},
		},
		{
			name: "HostModeReportsItsOwnPorts",
			in: inspect(container.State{Status: container.StateRunning, StartedAt: started, FinishedAt: never},
				&container.HostConfig{NetworkMode: "host", PortBindings: nat.PortMap{"9000/tcp": {{HostPort: "9000"}}}},
				&container.NetworkSettings{Networks: map[string]*network.EndpointSettings{"host": {}}}),
			want: runtime.ContainerStatus{ID: "abc", Name: "web", Image: "app:1", ImageID: "sha256:feed",
				Labels: map[string]string{"k": "v"}, State: runtime.StateRunning, CreatedAt: at(created), StartedAt: at(started),
				Ports:    []runtime.PortBinding{{ContainerPort: 9000, HostPort: 9000, Protocol: runtime.TCP, HostIP: "0.0.0.0"}},
				Networks: []runtime.NetworkAddress{{Network: "host"}},
			},
		},
		{
			name: "OOMKilled",
			in: inspect(container.State{Status: container.StateExited, ExitCode: 137, OOMKilled: true,
				StartedAt: started, FinishedAt: finished}, bridge, nil),
			want: runtime.ContainerStatus{ID: "abc", Name: "web", Image: "app:1", ImageID: "sha256:feed",
				Labels: map[string]string{"k": "v"}, State: runtime.StateExited, ExitCode: 137, OOMKilled: true,
				CreatedAt: at(created), StartedAt: at(started), FinishedAt: at(finished)},
		},
		{
			name: "DeadIsExitedAndPausedIsRunning",
			in: inspect(container.State{Status: container.StateDead, ExitCode: 1, Error: "boom",
				StartedAt: never, FinishedAt: finished, Health: &container.Health{Status: container.Unhealthy}}, bridge, nil),
			want: runtime.ContainerStatus{ID: "abc", Name: "web", Image: "app:1", ImageID: "sha256:feed",
				Labels: map[string]string{"k": "v"}, State: runtime.StateExited, ExitCode: 1, Error: "boom",
				CreatedAt: at(created), FinishedAt: at(finished), Health: runtime.HealthUnhealthy},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, status(tt.in)); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEvent(t *testing.T) {
	t.Parallel()
	msg := func(action string, attrs map[string]string) events.Message {
		return events.Message{Type: events.ContainerEventType, Action: events.Action(action), TimeNano: 1_700_000_000_000_000_001,
			Actor: events.Actor{ID: "abc", Attributes: attrs}}
	}
	at := time.Unix(0, 1_700_000_000_000_000_001)
	labels := map[string]string{"com.amazonaws.ecs.task-arn": "t"}
	tests := []struct {
		name string
		in   events.Message
		want runtime.Event
		ok   bool
	}{
		{"Die", msg("die", map[string]string{"exitCode": "3", "image": "app:1", "name": "web", "com.amazonaws.ecs.task-arn": "t"}),
			runtime.Event{Type: runtime.EventDie, ContainerID: "abc", Labels: labels, Time: at, ExitCode: 3}, true},
		{"Healthy", msg("health_status: healthy", map[string]string{"com.amazonaws.ecs.task-arn": "t"}),
			runtime.Event{Type: runtime.EventHealth, ContainerID: "abc", Labels: labels, Time: at, Health: runtime.HealthHealthy}, true},
		{"Unhealthy", msg("health_status: unhealthy", map[string]string{"com.amazonaws.ecs.task-arn": "t"}),
			runtime.Event{Type: runtime.EventHealth, ContainerID: "abc", Labels: labels, Time: at, Health: runtime.HealthUnhealthy}, true},
		{"OOM", msg("oom", map[string]string{"com.amazonaws.ecs.task-arn": "t"}),
			runtime.Event{Type: runtime.EventOOM, ContainerID: "abc", Labels: labels, Time: at}, true},
		{"Start", msg("start", map[string]string{"com.amazonaws.ecs.task-arn": "t"}),
			runtime.Event{Type: runtime.EventStart, ContainerID: "abc", Labels: labels, Time: at}, true},
		{"Destroy", msg("destroy", map[string]string{"com.amazonaws.ecs.task-arn": "t"}),
			runtime.Event{Type: runtime.EventDestroy, ContainerID: "abc", Labels: labels, Time: at}, true},
		{"IgnoresExec", msg("exec_start: /testapp healthcheck", nil), runtime.Event{}, false},
		{"IgnoresImages", events.Message{Type: events.ImageEventType, Action: "pull"}, runtime.Event{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := event(tt.in)
			if ok != tt.ok {
				t.Fatalf("ok = %v", ok)
			}
			if ok {
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("event (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestInfoConversion(t *testing.T) {
	t.Parallel()
	got := info(system.Info{NCPU: 8, MemTotal: 16 << 30, OSType: "linux", Architecture: "aarch64", ServerVersion: "20.10.24",
		Plugins: system.PluginsInfo{Log: []string{"json-file", "local"}}, SecurityOptions: []string{"name=seccomp,profile=default"}}, "1.41")
	want := runtime.Info{Runtime: "docker", EngineVersion: "20.10.24", APIVersion: "1.41", OS: "linux", Arch: "arm64",
		CPUs: 8, MemoryBytes: 16 << 30, LogDrivers: []string{"json-file", "local"}, SecurityOptions: []string{"name=seccomp,profile=default"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("info (-want +got):\n%s", diff)
	}
}

func TestBridgeGateway(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cfg  []network.IPAMConfig
		want string
	}{
		{[]network.IPAMConfig{{Subnet: "172.17.0.0/16", Gateway: "172.17.0.1"}}, "172.17.0.1"},
		{[]network.IPAMConfig{{Subnet: "172.18.0.0/16"}}, "172.18.0.1"}, // the default bridge often lists no gateway
		{[]network.IPAMConfig{{Subnet: "fd00::/64"}}, ""},
		{nil, ""},
	} {
		if got := bridgeGateway(network.Inspect{IPAM: network.IPAM{Config: tt.cfg}}); got != tt.want {
			t.Errorf("bridgeGateway(%+v) = %q, want %q", tt.cfg, got, tt.want)
		}
	}
}

func TestRepoDigest(t *testing.T) {
	t.Parallel()
	const a, b = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	digests := []string{"127.0.0.1:5000/team/app@" + a, "busybox@" + b}
	for _, tc := range []struct{ ref, want string }{
		{"127.0.0.1:5000/team/app:1", a},
		{"127.0.0.1:5000/team/app", a},
		{"docker.io/library/busybox:latest", b}, // familiar and normalized names are one repository
		{"busybox", b},
		{"127.0.0.1:5000/team/other:1", ""},
		{"localhost/team/app:1", ""}, // another registry
	} {
		if got := repoDigest(mustParse(t, tc.ref), digests); got != tc.want {
			t.Errorf("repoDigest(%s) = %q, want %q", tc.ref, got, tc.want)
		}
	}
	if got := repoDigest(mustParse(t, "app"), nil); got != "" {
		t.Errorf("an image built locally: %q, want none", got)
	}
}

func mustParse(t *testing.T, ref string) reference.Named {
	t.Helper()
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
