package runtime_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/agent/runtime"
)

// Field-by-field refusals are tabled in docker/translate_test.go, which runs
// Validate first; this covers what a valid spec may hold and how errors read.
func TestValidateAcceptsAFullSpec(t *testing.T) {
	t.Parallel()
	s := runtime.ContainerSpec{
		Name: "ecs-web-3-app-9a8b", Image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/app@sha256:abc",
		Entrypoint: []string{"/app"}, Command: []string{"serve"}, Env: map[string]string{"A": ""},
		Labels: map[string]string{"com.amazonaws.ecs.cluster": "default"}, WorkingDir: "/srv", User: "1000",
		Ports:    []runtime.PortMapping{{ContainerPort: 80}, {ContainerPort: 53, HostPort: 53, Protocol: runtime.UDP, HostIP: "::1"}},
		Hostname: "web", DNS: []string{"10.0.0.2", "fd00::2"}, DNSSearch: []string{"local"},
		ExtraHosts: []runtime.HostEntry{{Hostname: "agent", IP: "host-gateway"}}, Links: []runtime.Link{{Container: "db"}},
		CPUShares: 2, MemoryLimit: 512 << 20, MemoryReservation: 512 << 20, ShmSize: 1 << 20,
		Ulimits:     []runtime.Ulimit{{Name: "nofile", Soft: 10, Hard: 10}},
		Mounts:      []runtime.Mount{{Type: runtime.MountBind, Source: "/srv", Target: "/srv", ReadOnly: true}, {Type: runtime.MountVolume, Target: "/v"}},
		VolumesFrom: []runtime.VolumesFrom{{Container: "init"}}, Tmpfs: []runtime.Tmpfs{{Path: "/tmp", Options: []string{"mode=1777"}}},
		Devices: []runtime.Device{{HostPath: "/dev/fuse", Permissions: "rw"}},
		CapAdd:  []string{"cap_net_admin", "SYS_PTRACE"}, CapDrop: []string{"ALL"}, Init: true,
		PidMode: "container:init", IpcMode: "shareable", Sysctls: map[string]string{"net.core.somaxconn": "1024"},
		HealthCheck: &runtime.HealthCheck{Test: []string{"CMD-SHELL", "curl -f localhost"}, Interval: time.Second, Retries: 3},
		StopTimeout: 30 * time.Second, LogConfig: runtime.LogConfig{Driver: "json-file"},
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestSpecError(t *testing.T) {
	t.Parallel()
	s := runtime.ContainerSpec{Image: "app", NetworkMode: "awsvpc"}
	err := s.Validate()
	var se *runtime.SpecError
	if !errors.Is(err, runtime.ErrUnsupported) || errors.Is(err, runtime.ErrInvalidSpec) || !errors.As(err, &se) {
		t.Fatalf("err = %#v", err)
	}
	if want := `NetworkMode: unsupported: "awsvpc" (bridge, host or none)`; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if err := runtime.Invalid("Ports[0].HostPort", "must be %d", 1); err.Error() != "Ports[0].HostPort: must be 1" || !errors.Is(err, runtime.ErrInvalidSpec) {
		t.Errorf("Invalid = %q", err)
	}
}
