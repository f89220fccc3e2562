package docker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/agent/runtime"
	"github.com/gantry-dev/gantry/agent/runtime/runtimetest"
)

// TestConformance runs the behaviour every runtime shares.
func TestConformance(t *testing.T) {
	f := setup(t)
	runtimetest.Run(t, runtimetest.Config{Runtime: f.rt, Image: image, Labels: map[string]string{testLabel: "agent/runtime/docker", runLabel: runID}})
}

func TestInfo(t *testing.T) {
	f := setup(t)
	info, err := f.rt.Info(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Runtime != "docker" || info.CPUs < 1 || info.MemoryBytes < 1<<20 || info.OS != "linux" ||
		info.EngineVersion == "" || info.APIVersion == "" || !slices.Contains(info.LogDrivers, "json-file") {
		t.Fatalf("info = %+v", info)
	}
	if hostAddr() == "127.0.0.1" && info.Arch != goruntime.GOARCH {
		t.Errorf("arch = %q, want %q", info.Arch, goruntime.GOARCH)
	}
	if net.ParseIP(info.HostGateway) == nil {
		t.Errorf("host gateway %q is not an IP address", info.HostGateway)
	}
	t.Logf("engine %s, API %s, %s/%s, %d CPUs, %d MiB, bridge gateway %s, security %q", info.EngineVersion, info.APIVersion,
		info.OS, info.Arch, info.CPUs, info.MemoryBytes>>20, info.HostGateway, info.SecurityOptions)
}

func TestServeOnDynamicHostPort(t *testing.T) {
	f := setup(t)
	spec := f.spec("serve", "--port", "8080")
	spec.Hostname = "web-1"
	spec.Env = map[string]string{"GREETING": "hello"}
	spec.Ports = []runtime.PortMapping{{ContainerPort: 8080}}
	id := f.create(spec)

	s, err := f.rt.Inspect(f.ctx, id)
	if err != nil || s.State != runtime.StateCreated || len(s.Ports) != 0 || s.Name != spec.Name {
		t.Fatalf("after create: %+v, %v", s, err)
	}
	if err := f.rt.Start(f.ctx, id); err != nil {
		t.Fatal(err)
	}
	s, err = f.rt.Inspect(f.ctx, id)
	if err != nil || s.State != runtime.StateRunning || s.StartedAt.IsZero() {
		t.Fatalf("after start: %+v, %v", s, err)
	}
	i := slices.IndexFunc(s.Ports, func(b runtime.PortBinding) bool { return b.ContainerPort == 8080 && b.HostIP == "0.0.0.0" })
	if i < 0 || s.Ports[i].HostPort == 0 || s.Ports[i].Protocol != runtime.TCP {
		t.Fatalf("no dynamic binding for 8080/tcp: %+v", s.Ports)
	}
	if len(s.Networks) != 1 || s.Networks[0].Network != "bridge" || s.Networks[0].IPv4 == "" {
		t.Errorf("networks = %+v", s.Networks)
	}

	base := fmt.Sprintf("http://%s/", net.JoinHostPort(hostAddr(), strconv.Itoa(int(s.Ports[i].HostPort))))
	var got struct {
		Hostname string
		Env      map[string]string
	}
	waitFor(t, time.Minute, "the server to answer through its host port", func() bool {
		resp, err := http.Get(base)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&got) == nil
	})
	if got.Hostname != "web-1" || got.Env["GREETING"] != "hello" {
		t.Fatalf("server answered %+v", got)
	}

	// The process exiting by itself is captured with its code.
	resp, err := http.Get(base + "exit?code=7")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s = f.waitExited(id)
	if s.ExitCode != 7 || s.FinishedAt.Before(s.StartedAt) || s.OOMKilled {
		t.Fatalf("after exit: %+v", s)
	}
}

func TestHostNetworkPorts(t *testing.T) {
	f := setup(t)
	if hostAddr() != "127.0.0.1" {
		t.Skip("host network mode is only reachable on a local engine")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	spec := f.spec("serve", "--port", strconv.Itoa(port))
	spec.NetworkMode = runtime.NetworkHost
	spec.Ports = []runtime.PortMapping{{ContainerPort: uint16(port)}}
	id := f.run(spec)
	s, err := f.rt.Inspect(f.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := []runtime.PortBinding{{ContainerPort: uint16(port), HostPort: uint16(port), Protocol: runtime.TCP, HostIP: "0.0.0.0"}}
	if !slices.Equal(s.Ports, want) {
		t.Fatalf("ports = %+v, want %+v", s.Ports, want)
	}
	waitFor(t, time.Minute, "the server on the host's port", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
}

func TestHealthCheck(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	spec := f.spec("serve", "--port", "8080")
	spec.Ports = []runtime.PortMapping{{ContainerPort: 8080}}
	spec.HealthCheck = &runtime.HealthCheck{
		Test:     []string{"CMD", "/testapp", "healthcheck", "http://127.0.0.1:8080/health"},
		Interval: 250 * time.Millisecond, Timeout: 10 * time.Second, Retries: 2,
	}
	evs, errs := f.rt.Events(ctx, map[string]string{runLabel: runID})
	id := f.run(spec)

	if s, _ := f.rt.Inspect(f.ctx, id); s.Health != runtime.HealthStarting && s.Health != runtime.HealthHealthy {
		t.Errorf("health right after start = %q", s.Health)
	}
	f.waitStatus(id, "healthy", func(s runtime.ContainerStatus) bool { return s.Health == runtime.HealthHealthy })
	if e := nextEvent(t, evs, errs, id, runtime.EventHealth); e.Health != runtime.HealthHealthy {
		t.Errorf("first health event = %+v", e)
	}

	s, _ := f.rt.Inspect(f.ctx, id)
	resp, err := http.Get(fmt.Sprintf("http://%s/fail", net.JoinHostPort(hostAddr(), strconv.Itoa(int(s.Ports[0].HostPort)))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s = f.waitStatus(id, "unhealthy", func(s runtime.ContainerStatus) bool { return s.Health == runtime.HealthUnhealthy })
	if s.HealthOutput == "" { // the failed GET's 500, or a timeout on a loaded host
		t.Errorf("no health output")
	}
	if e := nextEvent(t, evs, errs, id, runtime.EventHealth); e.Health != runtime.HealthUnhealthy {
		t.Errorf("second health event = %+v", e)
	}
}

func TestReadonlyRootCapabilitiesAndLimits(t *testing.T) {
	f := setup(t)
	spec := f.spec("cat", "/proc/self/status")
	spec.ReadonlyRootfs = true
	spec.CapDrop = []string{"CHOWN", "NET_RAW"}
	spec.CapAdd = []string{"NET_ADMIN"}
	spec.Tmpfs = []runtime.Tmpfs{{Path: "/tmp", Size: 1 << 20}}
	spec.Ulimits = []runtime.Ulimit{{Name: "nofile", Soft: 1000, Hard: 2000}}
	spec.Init = true
	spec.MemoryLimit, spec.MemoryReservation, spec.CPUShares = 64<<20, 32<<20, 256
	id := f.run(spec)
	f.waitExited(id)

	// What `docker inspect` shows.
	c, err := f.raw.ContainerInspect(f.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	h := c.HostConfig
	// The engine stores capabilities with their CAP_ prefix.
	if !h.ReadonlyRootfs || !slices.Contains(h.CapDrop, "CAP_CHOWN") || !slices.Contains(h.CapDrop, "CAP_NET_RAW") ||
		!slices.Contains(h.CapAdd, "CAP_NET_ADMIN") || h.Tmpfs["/tmp"] != "size=1048576" || h.Init == nil || !*h.Init ||
		h.Memory != 64<<20 || h.MemoryReservation != 32<<20 || h.CPUShares != 256 ||
		len(h.Ulimits) != 1 || h.Ulimits[0].Soft != 1000 || h.RestartPolicy.Name != "no" {
		t.Fatalf("inspect HostConfig = %+v", h)
	}

	// What the process has: with init, the cat is PID 2's child; its status is its own.
	out := f.logs(id, runtime.LogOptions{})
	var capEff uint64
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			capEff, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	const chown, netAdmin, netRaw = 0, 12, 13
	if capEff == 0 || capEff&(1<<chown) != 0 || capEff&(1<<netRaw) != 0 || capEff&(1<<netAdmin) == 0 {
		t.Fatalf("CapEff = %x\n%s", capEff, out)
	}

	for _, tc := range []struct {
		file string
		code int
	}{{"/etc/x", 1}, {"/tmp/x", 0}} {
		spec := f.spec("write", tc.file, "data")
		spec.ReadonlyRootfs = true
		spec.Tmpfs = []runtime.Tmpfs{{Path: "/tmp"}}
		if s := f.waitExited(f.run(spec)); s.ExitCode != tc.code {
			t.Errorf("write %s: exit %d, want %d", tc.file, s.ExitCode, tc.code)
		}
	}
}

func TestVolumesAndBindMounts(t *testing.T) {
	f := setup(t)
	vol := "gantry-test-vol-" + randHex(4)
	if err := f.rt.CreateVolume(f.ctx, runtime.VolumeSpec{Name: vol, Labels: map[string]string{runLabel: runID}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.rt.RemoveVolume(context.Background(), vol) })
	if err := f.rt.CreateVolume(f.ctx, runtime.VolumeSpec{Name: vol}); err != nil {
		t.Errorf("creating it again: %v", err)
	}
	if v, err := f.rt.InspectVolume(f.ctx, vol); err != nil || v.Driver != "local" || v.Labels[runLabel] != runID {
		t.Errorf("InspectVolume = %+v, %v", v, err)
	}

	writer := f.spec("write", "/shared/msg", "from writer")
	writer.Mounts = []runtime.Mount{{Type: runtime.MountVolume, Source: vol, Target: "/shared"}}
	w := f.run(writer)
	f.waitExited(w)
	reader := f.spec("cat", "/shared/msg")
	reader.Mounts = []runtime.Mount{{Type: runtime.MountVolume, Source: vol, Target: "/shared", ReadOnly: true}}
	r := f.run(reader)
	if s := f.waitExited(r); s.ExitCode != 0 || f.logs(r, runtime.LogOptions{}) != "from writer" {
		t.Fatalf("reader: %+v %q", s, f.logs(r, runtime.LogOptions{}))
	}
	if err := f.rt.RemoveVolume(f.ctx, vol); !errors.Is(err, runtime.ErrConflict) {
		t.Errorf("removing a volume in use: %v, want ErrConflict", err)
	}
	for _, id := range []string{w, r} {
		if err := f.rt.Remove(f.ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.rt.RemoveVolume(f.ctx, vol); err != nil {
		t.Fatal(err)
	}
	if _, err := f.rt.InspectVolume(f.ctx, vol); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("InspectVolume after remove: %v, want ErrNotFound", err)
	}

	if hostAddr() != "127.0.0.1" {
		return // bind mounts need the engine's filesystem
	}
	dir := t.TempDir()
	bind := f.spec("write", "/data/sub/out", "via bind")
	bind.Mounts = []runtime.Mount{{Type: runtime.MountBind, Source: dir, Target: "/data"}}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o777); err != nil {
		t.Fatal(err)
	}
	if s := f.waitExited(f.run(bind)); s.ExitCode != 0 {
		t.Fatalf("bind write: %+v %q", s, s.Error)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "sub", "out")); err != nil || string(b) != "via bind" {
		t.Fatalf("host file = %q, %v", b, err)
	}
}

func TestErrors(t *testing.T) {
	f := setup(t)
	t.Run("PullFailsWithoutRegistry", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
		defer cancel()
		err := f.rt.Pull(ctx, "127.0.0.1:1/gantry/missing:1", &runtime.RegistryAuth{Username: "u", Password: "p"})
		if err == nil || errors.Is(err, runtime.ErrUnavailable) || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Fatalf("err = %v", err)
		}
		t.Logf("pull error: %v", err)
	})
	t.Run("ErrInvalidSpecOnBadReference", func(t *testing.T) {
		if err := f.rt.Pull(f.ctx, "Not A Reference", nil); !errors.Is(err, runtime.ErrInvalidSpec) {
			t.Fatalf("err = %v, want ErrInvalidSpec", err)
		}
	})
	t.Run("ErrInvalidSpecFromEngine", func(t *testing.T) {
		spec := f.spec()
		spec.CapAdd = []string{"NO_SUCH_CAP"}
		if _, err := f.rt.Create(f.ctx, spec); !errors.Is(err, runtime.ErrInvalidSpec) {
			t.Fatalf("err = %v, want ErrInvalidSpec", err)
		}
	})
	t.Run("StartFailureLeavesCreated", func(t *testing.T) {
		spec := f.spec()
		spec.Entrypoint = []string{"/no/such/binary"}
		id := f.create(spec)
		err := f.rt.Start(f.ctx, id)
		if err == nil {
			t.Fatal("started a container without an executable")
		}
		s, _ := f.rt.Inspect(f.ctx, id)
		t.Logf("start error: %v; status %s, engine error %q", err, s.State, s.Error)
		if s.State == runtime.StateRunning || s.Error == "" {
			t.Errorf("status after failed start = %+v", s)
		}
	})
	t.Run("LogsUnreadableWithDriverNone", func(t *testing.T) {
		spec := f.spec("exit", "0")
		spec.LogConfig = runtime.LogConfig{Driver: "none"}
		id := f.create(spec)
		if _, err := f.rt.Logs(f.ctx, id, runtime.LogOptions{}); !errors.Is(err, runtime.ErrUnsupported) {
			t.Fatalf("err = %v, want ErrUnsupported", err)
		}
	})
}

// TestMetadataFromContainer checks what the agent's task metadata endpoint
// relies on: a bridge container reaches a server on the host through
// host-gateway, which needs engine 20.10.
func TestMetadataFromContainer(t *testing.T) {
	f := setup(t)
	if hostAddr() != "127.0.0.1" {
		t.Skip("needs the engine on this host")
	}
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	spec := f.spec("metadata")
	spec.ExtraHosts = []runtime.HostEntry{{Hostname: "gantry-agent", IP: "host-gateway"}}
	spec.Env = map[string]string{"ECS_CONTAINER_METADATA_URI_V4": fmt.Sprintf("http://gantry-agent:%d/v4/abc", l.Addr().(*net.TCPAddr).Port)}
	id := f.run(spec)
	s := f.waitExited(id)
	out := f.logs(id, runtime.LogOptions{})
	if s.ExitCode != 0 {
		t.Skipf("the container cannot reach this host (firewall?): exit %d: %s", s.ExitCode, out)
	}
	if out != `{"path":"/v4/abc/task"}` {
		t.Fatalf("metadata printed %q", out)
	}
}
