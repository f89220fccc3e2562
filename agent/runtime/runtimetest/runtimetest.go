// Package runtimetest is the behaviour every runtime.Runtime must share,
// written once and run against each implementation (the Docker runtime with
// the testapp image, and the simulated runtime), so that the simulation
// cannot drift from the engine it stands in for.
package runtimetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/agent/runtime"
)

// Config is what the suite needs of an implementation.
type Config struct {
	Runtime runtime.Runtime
	Image   string            // the testapp image, stored locally (see internal/testimage)
	Labels  map[string]string // put on every container, to find leftovers
}

// Run runs the suite as subtests of t. Containers it creates are removed when
// each subtest ends, pass or fail.
func Run(t *testing.T, cfg Config) {
	for _, tc := range []struct {
		name string
		f    func(*suite)
	}{
		{"Lifecycle", lifecycle},
		{"ExitCodeAndEvents", exitCode},
		{"StopKillsAfterTimeout", stopTimeout},
		{"HealthCheck", healthCheck},
		{"OOMKilled", oomKilled},
		{"ListByLabel", listByLabel},
		{"Logs", logs},
		{"Volumes", volumes},
		{"Stats", stats},
		{"Errors", errorsSuite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			t.Cleanup(cancel)
			tc.f(&suite{t: t, cfg: cfg, rt: cfg.Runtime, ctx: ctx})
		})
	}
}

type suite struct {
	t   *testing.T
	cfg Config
	rt  runtime.Runtime
	ctx context.Context
}

var unsafe = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

func (s *suite) spec(args ...string) runtime.ContainerSpec {
	labels := maps.Clone(s.cfg.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	return runtime.ContainerSpec{
		Name:      "gantry-rt-" + strings.ToLower(unsafe.ReplaceAllString(s.t.Name(), "-")) + "-" + randHex(3),
		Image:     s.cfg.Image,
		Command:   args,
		Labels:    labels,
		LogConfig: runtime.LogConfig{Driver: "json-file"},
	}
}

func (s *suite) create(spec runtime.ContainerSpec) string {
	s.t.Helper()
	id, err := s.rt.Create(s.ctx, spec)
	if err != nil {
		s.t.Fatalf("create: %v", err)
	}
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.rt.Remove(ctx, id)
	})
	return id
}

func (s *suite) run(spec runtime.ContainerSpec) string {
	s.t.Helper()
	id := s.create(spec)
	if err := s.rt.Start(s.ctx, id); err != nil {
		s.t.Fatalf("start: %v", err)
	}
	return id
}

func (s *suite) inspect(id string) runtime.ContainerStatus {
	s.t.Helper()
	st, err := s.rt.Inspect(s.ctx, id)
	if err != nil {
		s.t.Fatalf("inspect: %v", err)
	}
	return st
}

func (s *suite) waitStatus(id, what string, ok func(runtime.ContainerStatus) bool) runtime.ContainerStatus {
	s.t.Helper()
	var st runtime.ContainerStatus
	WaitFor(s.t, time.Minute, what, func() bool { st = s.inspect(id); return ok(st) })
	return st
}

func (s *suite) waitExited(id string) runtime.ContainerStatus {
	s.t.Helper()
	return s.waitStatus(id, "exited", func(st runtime.ContainerStatus) bool { return st.State == runtime.StateExited })
}

func (s *suite) logs(id string, opts runtime.LogOptions) string {
	s.t.Helper()
	rc, err := s.rt.Logs(s.ctx, id, opts)
	if err != nil {
		s.t.Fatalf("logs: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		s.t.Fatalf("read logs: %v", err)
	}
	return string(b)
}

func (s *suite) waitLog(id, want string) {
	s.t.Helper()
	WaitFor(s.t, time.Minute, want+" in the logs", func() bool { return strings.Contains(s.logs(id, runtime.LogOptions{}), want) })
}

// events subscribes to this subtest's containers.
func (s *suite) events(labels map[string]string) (<-chan runtime.Event, <-chan error) {
	ctx, cancel := context.WithCancel(s.ctx)
	s.t.Cleanup(cancel)
	all := maps.Clone(s.cfg.Labels)
	if all == nil {
		all = map[string]string{}
	}
	maps.Copy(all, labels)
	return s.rt.Events(ctx, all)
}

// NextEvent returns the first event of type typ for container id.
func NextEvent(t *testing.T, evs <-chan runtime.Event, errs <-chan error, id string, typ runtime.EventType) runtime.Event {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case e, ok := <-evs:
			if !ok {
				t.Fatalf("event stream ended waiting for %s: %v", typ, <-errs)
			}
			if e.ContainerID == id && e.Type == typ {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event for %s within a minute", typ, id)
		}
	}
}

// WaitFor polls cond every 20ms until it holds, failing t after timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func lifecycle(s *suite) {
	spec := s.spec("serve", "--port", "8080")
	spec.Ports = []runtime.PortMapping{{ContainerPort: 8080}}
	id := s.create(spec)
	if st := s.inspect(id); st.State != runtime.StateCreated || st.Name != spec.Name || st.ID != id || st.Image != spec.Image ||
		st.CreatedAt.IsZero() || !st.StartedAt.IsZero() {
		s.t.Fatalf("created: %+v", st)
	}
	if err := s.rt.Start(s.ctx, id); err != nil {
		s.t.Fatal(err)
	}
	st := s.inspect(spec.Name) // by name, too
	if st.State != runtime.StateRunning || st.StartedAt.IsZero() || len(st.Ports) == 0 || st.Ports[0].HostPort == 0 ||
		st.Ports[0].ContainerPort != 8080 || st.Ports[0].Protocol != runtime.TCP {
		s.t.Fatalf("running: %+v", st)
	}
	if err := s.rt.Start(s.ctx, id); err != nil {
		s.t.Errorf("starting a running container: %v", err)
	}
	s.waitLog(id, "serving on :8080")
	if err := s.rt.Stop(s.ctx, id, 30*time.Second); err != nil {
		s.t.Fatal(err)
	}
	st = s.inspect(id)
	if st.State != runtime.StateExited || st.ExitCode != 0 || st.FinishedAt.Before(st.StartedAt) || len(st.Ports) != 0 {
		s.t.Fatalf("stopped: %+v", st)
	}
	if err := s.rt.Stop(s.ctx, id, time.Second); err != nil {
		s.t.Errorf("stopping an exited container: %v", err)
	}
	if err := s.rt.Remove(s.ctx, id); err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.rt.Inspect(s.ctx, id); !errors.Is(err, runtime.ErrNotFound) {
		s.t.Errorf("inspect after remove: %v, want ErrNotFound", err)
	}
	if err := s.rt.Remove(s.ctx, id); !errors.Is(err, runtime.ErrNotFound) {
		s.t.Errorf("second remove: %v, want ErrNotFound", err)
	}
}

func exitCode(s *suite) {
	key := "gantry-rt-app"
	spec := s.spec("exit", "3", "--after", "200ms")
	spec.Labels[key] = randHex(4)
	evs, errs := s.events(map[string]string{key: spec.Labels[key]})
	id := s.run(spec)
	if e := NextEvent(s.t, evs, errs, id, runtime.EventStart); e.Labels[key] != spec.Labels[key] {
		s.t.Errorf("start event = %+v", e)
	}
	e := NextEvent(s.t, evs, errs, id, runtime.EventDie)
	if e.ExitCode != 3 || e.Labels[key] != spec.Labels[key] || e.Time.IsZero() {
		s.t.Errorf("die event = %+v", e)
	}
	if st := s.waitExited(id); st.ExitCode != 3 || st.OOMKilled {
		s.t.Errorf("exited: %+v", st)
	}
	if err := s.rt.Remove(s.ctx, id); err != nil {
		s.t.Fatal(err)
	}
	NextEvent(s.t, evs, errs, id, runtime.EventDestroy)

	// A cancelled stream closes its channel after reporting the cancellation.
	ctx, cancel := context.WithCancel(s.ctx)
	evs, errs = s.rt.Events(ctx, s.cfg.Labels)
	cancel()
	for range evs {
	}
	if err := <-errs; !errors.Is(err, context.Canceled) {
		s.t.Errorf("stream error = %v, want context.Canceled", err)
	}
}

func stopTimeout(s *suite) {
	id := s.run(s.spec("sleep", "3600", "--ignore-sigterm"))
	s.waitLog(id, "sleeping") // its signal handler is installed
	start := time.Now()
	if err := s.rt.Stop(s.ctx, id, 1500*time.Millisecond); err != nil { // rounded up to 2s
		s.t.Fatal(err)
	}
	took := time.Since(start)
	st := s.inspect(id)
	if took < 2*time.Second || st.State != runtime.StateExited || st.ExitCode != 137 {
		s.t.Fatalf("stop took %v (want >= 2s); %+v (want exit 137)", took, st)
	}
	s.waitLog(id, "ignoring terminated")
}

func healthCheck(s *suite) {
	spec := s.spec("serve", "--port", "8080")
	spec.HealthCheck = &runtime.HealthCheck{
		Test:     []string{"CMD", "/testapp", "healthcheck", "http://127.0.0.1:8080/health"},
		Interval: 250 * time.Millisecond, Timeout: 10 * time.Second, Retries: 2,
	}
	bad := s.spec("serve", "--port", "8080")
	bad.HealthCheck, bad.Env = spec.HealthCheck, map[string]string{"TESTAPP_UNHEALTHY": "1"}
	none := s.spec("sleep", "3600")

	evs, errs := s.events(nil)
	good, sick, plain := s.run(spec), s.run(bad), s.run(none)
	s.waitStatus(good, "healthy", func(st runtime.ContainerStatus) bool { return st.Health == runtime.HealthHealthy })
	if e := NextEvent(s.t, evs, errs, good, runtime.EventHealth); e.Health != runtime.HealthHealthy {
		s.t.Errorf("health event = %+v", e)
	}
	s.waitStatus(sick, "unhealthy", func(st runtime.ContainerStatus) bool { return st.Health == runtime.HealthUnhealthy })
	if st := s.inspect(plain); st.Health != runtime.HealthNone {
		s.t.Errorf("no health check, health %q", st.Health)
	}
}

func oomKilled(s *suite) {
	spec := s.spec("alloc", "256")
	spec.MemoryLimit = 32 << 20
	evs, errs := s.events(nil)
	id := s.run(spec)
	if st := s.waitExited(id); st.ExitCode != 137 {
		s.t.Fatalf("%+v, want OOM-killed with 137", st)
	}
	// The oom event is the engine's report of the kill. Its inspect flag
	// (OOMKilled) can lose a race with the exit on dockerd 20.10 with cgroup
	// v2 and stay false, so the event, not the flag, is what is required.
	NextEvent(s.t, evs, errs, id, runtime.EventOOM)
}

func listByLabel(s *suite) {
	a, b := s.spec("sleep", "3600"), s.spec("exit", "0")
	a.Labels["gantry-rt-task"], b.Labels["gantry-rt-task"] = "a-"+randHex(4), "b-"+randHex(4)
	idA, idB := s.run(a), s.create(b)
	got, err := s.rt.List(s.ctx, map[string]string{"gantry-rt-task": a.Labels["gantry-rt-task"]})
	if err != nil || len(got) != 1 || got[0].ID != idA || got[0].State != runtime.StateRunning || got[0].Labels["gantry-rt-task"] == "" {
		s.t.Fatalf("List(a) = %+v, %v", got, err)
	}
	got, err = s.rt.List(s.ctx, b.Labels)
	if err != nil || len(got) != 1 || got[0].ID != idB || got[0].State != runtime.StateCreated {
		s.t.Fatalf("List(b) = %+v, %v", got, err)
	}
	if got, err := s.rt.List(s.ctx, map[string]string{"gantry-rt-task": "nobody"}); err != nil || len(got) != 0 {
		s.t.Fatalf("List(nobody) = %+v, %v", got, err)
	}
}

func logs(s *suite) {
	spec := s.spec("print-env")
	spec.Env = map[string]string{"FOO": "bar"}
	id := s.run(spec)
	s.waitExited(id)
	if got := s.logs(id, runtime.LogOptions{}); !strings.Contains(got, "FOO=bar\n") {
		s.t.Errorf("logs = %q", got)
	}
	if got := s.logs(id, runtime.LogOptions{Stderr: true}); got != "" {
		s.t.Errorf("stderr = %q, want nothing", got)
	}
	if got := s.logs(id, runtime.LogOptions{Tail: 1, Timestamps: true}); strings.Count(got, "\n") != 1 || !strings.Contains(got, "Z ") {
		s.t.Errorf("last line with its timestamp = %q", got)
	}

	bad := s.run(s.spec("no-such-mode"))
	if st := s.waitExited(bad); st.ExitCode != 2 {
		s.t.Errorf("unknown mode exit code %d, want 2", st.ExitCode)
	}
	if got := s.logs(bad, runtime.LogOptions{Stderr: true}); !strings.Contains(got, "unknown mode") {
		s.t.Errorf("stderr = %q", got)
	}

	// Follow returns output as it comes and ends when the container exits.
	follow := s.run(s.spec("exit", "0", "--after", "500ms"))
	rc, err := s.rt.Logs(s.ctx, follow, runtime.LogOptions{Follow: true})
	if err != nil {
		s.t.Fatal(err)
	}
	defer rc.Close()
	done := make(chan string)
	go func() { b, _ := io.ReadAll(rc); done <- string(b) }()
	select {
	case got := <-done:
		if !strings.Contains(got, "exiting with code 0") {
			s.t.Errorf("followed %q", got)
		}
	case <-time.After(time.Minute):
		s.t.Fatal("follow did not end when the container exited")
	}
}

func volumes(s *suite) {
	name := "gantry-rt-vol-" + randHex(4)
	if err := s.rt.CreateVolume(s.ctx, runtime.VolumeSpec{Name: name, Labels: map[string]string{"k": "v"}}); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { s.rt.RemoveVolume(context.Background(), name) })
	if err := s.rt.CreateVolume(s.ctx, runtime.VolumeSpec{Name: name}); err != nil {
		s.t.Errorf("creating it again: %v", err)
	}
	if v, err := s.rt.InspectVolume(s.ctx, name); err != nil || v.Name != name || v.Driver != "local" || v.Labels["k"] != "v" {
		s.t.Errorf("InspectVolume = %+v, %v", v, err)
	}
	other := "gantry-rt-vol-" + randHex(4)
	if err := s.rt.CreateVolume(s.ctx, runtime.VolumeSpec{Name: other, Labels: map[string]string{"k": "w"}}); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { s.rt.RemoveVolume(context.Background(), other) })
	if vs, err := s.rt.ListVolumes(s.ctx, map[string]string{"k": "v"}); err != nil || !hasVolume(vs, name) || hasVolume(vs, other) {
		s.t.Errorf("ListVolumes(k=v) = %+v, %v; want %s and not %s", vs, err, name, other)
	}
	spec := s.spec("exit", "0")
	spec.Mounts = []runtime.Mount{{Type: runtime.MountVolume, Source: name, Target: "/data"}}
	id := s.create(spec)
	if err := s.rt.RemoveVolume(s.ctx, name); !errors.Is(err, runtime.ErrConflict) {
		s.t.Errorf("removing a volume in use: %v, want ErrConflict", err)
	}
	if err := s.rt.Remove(s.ctx, id); err != nil {
		s.t.Fatal(err)
	}
	if err := s.rt.RemoveVolume(s.ctx, name); err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.rt.InspectVolume(s.ctx, name); !errors.Is(err, runtime.ErrNotFound) {
		s.t.Errorf("InspectVolume after remove: %v, want ErrNotFound", err)
	}
	if err := s.rt.CreateVolume(s.ctx, runtime.VolumeSpec{Name: "bad/name"}); !errors.Is(err, runtime.ErrInvalidSpec) {
		s.t.Errorf("bad volume name: %v, want ErrInvalidSpec", err)
	}
}

func hasVolume(vs []runtime.VolumeSpec, name string) bool {
	for _, v := range vs {
		if v.Name == name {
			return true
		}
	}
	return false
}

// statsDoc is the part of the Docker stats document both runtimes fill.
type statsDoc struct {
	Read     time.Time `json:"read"`
	PreRead  time.Time `json:"preread"`
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	CPUStats struct {
		CPUUsage struct {
			TotalUsage uint64 `json:"total_usage"`
		} `json:"cpu_usage"`
		SystemUsage uint64 `json:"system_cpu_usage"`
		OnlineCPUs  int    `json:"online_cpus"`
	} `json:"cpu_stats"`
	PreCPUStats struct {
		SystemUsage uint64 `json:"system_cpu_usage"`
	} `json:"precpu_stats"`
	MemoryStats struct {
		Usage uint64 `json:"usage"`
		Limit uint64 `json:"limit"`
	} `json:"memory_stats"`
	Networks map[string]struct {
		RxBytes *uint64 `json:"rx_bytes"`
	} `json:"networks"`
}

func (s *suite) stats(id string) statsDoc {
	s.t.Helper()
	raw, err := s.rt.Stats(s.ctx, id)
	if err != nil {
		s.t.Fatalf("stats: %v", err)
	}
	var d statsDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		s.t.Fatalf("stats document %s: %v", raw, err)
	}
	return d
}

func stats(s *suite) {
	spec := s.spec("serve", "--port", "8080")
	spec.MemoryLimit = 64 << 20
	id := s.run(spec)
	s.waitLog(id, "serving on")
	d := s.stats(id)
	// precpu_stats is filled: clients compute CPU usage from the difference.
	if d.ID != id || d.Name != "/"+spec.Name || d.Read.IsZero() || d.PreRead.IsZero() || !d.PreRead.Before(d.Read) ||
		d.CPUStats.OnlineCPUs < 1 || d.PreCPUStats.SystemUsage == 0 || d.CPUStats.SystemUsage <= d.PreCPUStats.SystemUsage ||
		d.MemoryStats.Usage == 0 || d.MemoryStats.Limit != 64<<20 {
		s.t.Errorf("running container's stats = %+v", d)
	}
	if n, ok := d.Networks["eth0"]; !ok || n.RxBytes == nil {
		s.t.Errorf("bridge container's stats have no eth0 counters: %+v", d.Networks)
	}

	if err := s.rt.Stop(s.ctx, id, 10*time.Second); err != nil {
		s.t.Fatal(err)
	}
	if d := s.stats(id); d.ID != id || !d.Read.IsZero() || d.CPUStats.CPUUsage.TotalUsage != 0 {
		s.t.Errorf("stopped container's stats = %+v, want zeros", d)
	}
	if _, err := s.rt.Stats(s.ctx, "gantry-rt-nonexistent"); !errors.Is(err, runtime.ErrNotFound) {
		s.t.Errorf("stats of no container: %v, want ErrNotFound", err)
	}
}

func errorsSuite(s *suite) {
	missing := "gantry-rt-missing-" + randHex(4) + ":1"
	spec := s.spec("exit", "0")
	spec.Image = missing
	if _, err := s.rt.Create(s.ctx, spec); !errors.Is(err, runtime.ErrImageNotFound) {
		s.t.Errorf("create with a missing image: %v, want ErrImageNotFound", err)
	}
	if ok, err := s.rt.HasImage(s.ctx, missing); ok || err != nil {
		s.t.Errorf("HasImage(missing) = %v, %v", ok, err)
	}
	if ok, err := s.rt.HasImage(s.ctx, s.cfg.Image); !ok || err != nil {
		s.t.Errorf("HasImage(test image) = %v, %v", ok, err)
	}
	// The test image was built locally, never pulled: no registry digest.
	if d, err := s.rt.ImageDigest(s.ctx, s.cfg.Image); d != "" || err != nil {
		s.t.Errorf("ImageDigest(test image) = %q, %v; want none", d, err)
	}
	if _, err := s.rt.ImageDigest(s.ctx, missing); !errors.Is(err, runtime.ErrImageNotFound) {
		s.t.Errorf("ImageDigest(missing): %v, want ErrImageNotFound", err)
	}
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if d, err := s.rt.ImageDigest(s.ctx, "gantry-rt-app@"+digest); d != digest || err != nil {
		s.t.Errorf("ImageDigest(by digest) = %q, %v", d, err)
	}

	spec = s.spec("exit", "0")
	s.create(spec)
	if _, err := s.rt.Create(s.ctx, spec); !errors.Is(err, runtime.ErrConflict) {
		s.t.Errorf("second create with one name: %v, want ErrConflict", err)
	}

	const nobody = "gantry-rt-nonexistent"
	for op, err := range map[string]error{
		"start":  s.rt.Start(s.ctx, nobody),
		"stop":   s.rt.Stop(s.ctx, nobody, time.Second),
		"remove": s.rt.Remove(s.ctx, nobody),
	} {
		if !errors.Is(err, runtime.ErrNotFound) {
			s.t.Errorf("%s: %v, want ErrNotFound", op, err)
		}
	}
	if _, err := s.rt.Logs(s.ctx, nobody, runtime.LogOptions{}); !errors.Is(err, runtime.ErrNotFound) {
		s.t.Errorf("logs: %v, want ErrNotFound", err)
	}

	spec = s.spec("exit", "0")
	spec.Privileged = true
	if _, err := s.rt.Create(s.ctx, spec); !errors.Is(err, runtime.ErrUnsupported) {
		s.t.Errorf("privileged: %v, want ErrUnsupported", err)
	}
	spec = s.spec("exit", "0")
	spec.NetworkMode = "awsvpc"
	var se *runtime.SpecError
	if _, err := s.rt.Create(s.ctx, spec); !errors.Is(err, runtime.ErrUnsupported) || !errors.As(err, &se) || se.Field != "NetworkMode" {
		s.t.Errorf("awsvpc: %v, want ErrUnsupported on NetworkMode", err)
	}
	spec = s.spec("exit", "0")
	spec.Ports = []runtime.PortMapping{{ContainerPort: 80, Protocol: "sctp"}}
	if _, err := s.rt.Create(s.ctx, spec); !errors.Is(err, runtime.ErrInvalidSpec) {
		s.t.Errorf("sctp: %v, want ErrInvalidSpec", err)
	}
}
