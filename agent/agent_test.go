package agent

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/agent/runtime"
	"github.com/gantry-dev/gantry/agent/runtime/sim"
	"github.com/gantry-dev/gantry/ecs"
)

const simImage = "testapp:latest"

// offline is a sim runtime whose registry cannot be reached, with the test
// image cached: ECS's default pull behaviour falls back to the cache.
func offline() *sim.Runtime {
	return sim.New(sim.Options{
		Images: []string{simImage},
		PullFn: func(ctx context.Context, image string) error {
			return fmt.Errorf("pull %s: dial tcp: lookup registry-1.docker.io: no such host", image)
		},
	})
}

func serveDef(containers ...ecs.ContainerDefinition) ecs.TaskDefinition {
	if len(containers) == 0 {
		containers = []ecs.ContainerDefinition{{
			Name: "web", Image: simImage, Memory: i32(64), Essential: boolp(true),
			Command:      []string{"serve"},
			PortMappings: []ecs.PortMapping{{ContainerPort: i32(8080), Protocol: ecs.TransportProtocolTCP}},
		}}
	}
	return ecs.TaskDefinition{Family: "svc", Revision: 1, ContainerDefinitions: containers}
}

func container(name string, essential bool, command ...string) ecs.ContainerDefinition {
	return ecs.ContainerDefinition{Name: name, Image: simImage, Memory: i32(32), Essential: boolp(essential), Command: command}
}

func TestRunTaskReportsRunningWithBindings(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	rt := offline()
	a, _, _ := runAgent(t, fs, rt, t.TempDir())
	arn := fs.place(serveDef(), nil)

	r := fs.waitStatus(arn, StatusRunning)
	web := containerOf(t, r, "web")
	if web.Status != StatusRunning || web.RuntimeID == "" || len(web.NetworkBindings) != 1 {
		t.Fatalf("container: %s", jsonString(web))
	}
	nb := web.NetworkBindings[0]
	if *nb.ContainerPort != 8080 || *nb.HostPort < 32768 || nb.BindIP != "0.0.0.0" || nb.Protocol != "tcp" {
		t.Errorf("binding: %s", jsonString(nb))
	}
	if r.PullStartedAt.IsZero() || r.PullStoppedAt.IsZero() || r.StopCode != "" || r.Cluster != "demo" {
		t.Errorf("report: %s", jsonString(r))
	}
	st, err := rt.Inspect(context.Background(), web.RuntimeID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != ContainerName("svc", 1, "web", TaskID(arn)) || st.Labels[LabelTaskARN] != arn ||
		st.Labels[LabelContainerInstance] != a.ContainerInstanceARN() || st.Labels["dev.gantry.test"] != t.Name() {
		t.Errorf("container %s labels %v", st.Name, st.Labels)
	}
}

func TestEssentialExitStopsTask(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	rt := offline()
	runAgent(t, fs, rt, t.TempDir())
	arn := fs.place(serveDef(container("main", true, "serve"), container("sidecar", false, "serve")), nil)
	r := fs.waitStatus(arn, StatusRunning)
	if err := rt.Exit(containerOf(t, r, "main").RuntimeID, 3); err != nil {
		t.Fatal(err)
	}
	r = fs.waitStatus(arn, StatusStopped)
	main, side := containerOf(t, r, "main"), containerOf(t, r, "sidecar")
	if r.StopCode != ecs.TaskStopCodeEssentialContainerExited || r.Reason != ReasonEssentialExited {
		t.Errorf("stop code %q reason %q", r.StopCode, r.Reason)
	}
	if main.ExitCode == nil || *main.ExitCode != 3 || main.Status != StatusStopped {
		t.Errorf("main: %s", jsonString(main))
	}
	if side.ExitCode == nil || *side.ExitCode != 0 || side.Status != StatusStopped {
		t.Errorf("sidecar was not stopped: %s", jsonString(side))
	}
	if r.ExecutionStoppedAt.IsZero() {
		t.Error("no executionStoppedAt")
	}
}

func TestNonEssentialExitKeepsTaskRunning(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	rt := offline()
	runAgent(t, fs, rt, t.TempDir())
	arn := fs.place(serveDef(container("main", true, "serve"), container("init", false, "exit", "0", "--after", "50ms")), nil)
	r := fs.waitReport(arn, 10*time.Second, func(r protocol.TaskStateChange) bool {
		c := containerOf(t, r, "init")
		return r.Status == StatusRunning && c.Status == StatusStopped
	})
	if c := containerOf(t, r, "init"); c.ExitCode == nil || *c.ExitCode != 0 {
		t.Errorf("init: %s", jsonString(c))
	}
	time.Sleep(200 * time.Millisecond)
	for _, r := range fs.reportsOf(arn) {
		if r.Status != StatusRunning {
			t.Fatalf("task left RUNNING after a non-essential exit: %s", jsonString(r))
		}
	}
}

func TestStopTask(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	rt := offline()
	runAgent(t, fs, rt, t.TempDir())
	arn := fs.place(serveDef(), nil)
	fs.waitStatus(arn, StatusRunning)
	fs.stop(arn)
	r := fs.waitStatus(arn, StatusStopped)
	if r.StopCode != "" || r.Reason != "" {
		t.Errorf("a stop the server asked for carries no stop code of the agent's: %q %q", r.StopCode, r.Reason)
	}
	if c := containerOf(t, r, "web"); c.ExitCode == nil || *c.ExitCode != 0 {
		t.Errorf("web: %s", jsonString(c))
	}
	var statuses []string
	for _, r := range fs.reportsOf(arn) {
		statuses = append(statuses, r.Status)
	}
	if fmt.Sprint(statuses) != "[RUNNING STOPPING STOPPED]" {
		t.Errorf("reports %v", statuses)
	}
}

func TestStopTimeoutBeforeKill(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	rt := offline()
	runAgent(t, fs, rt, t.TempDir())
	stubborn := container("stubborn", true, "serve", "--ignore-sigterm")
	stubborn.StopTimeout = i32(1)
	arn := fs.place(serveDef(stubborn), nil)
	fs.waitStatus(arn, StatusRunning)
	start := time.Now()
	fs.stop(arn)
	r := fs.waitStatus(arn, StatusStopped)
	if d := time.Since(start); d < time.Second {
		t.Errorf("stopped after %v, before its 1s stop timeout", d)
	}
	if c := containerOf(t, r, "stubborn"); c.ExitCode == nil || *c.ExitCode != 137 {
		t.Errorf("stubborn: %s", jsonString(c))
	}
}

func TestPullBehaviour(t *testing.T) {
	t.Parallel()
	missing := serveDef(container("web", true, "serve"))
	missing.ContainerDefinitions[0].Image = "nosuch/image:1"
	tests := []struct {
		name     string
		behavior PullBehavior
		td       ecs.TaskDefinition
		want     string // reason prefix, "" for RUNNING
	}{
		{"DefaultFallsBackToCache", PullDefault, serveDef(), ""},
		{"PreferCached", PullPreferCached, serveDef(), ""},
		{"AlwaysFails", PullAlways, serveDef(), prefixCannotPull},
		{"MissingEverywhere", PullDefault, missing, prefixCannotPull + "pull nosuch/image:1: dial tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := newFakeServer(t)
			rt := offline()
			runAgent(t, fs, rt, t.TempDir(), func(c *Config) { c.PullBehavior = tt.behavior })
			arn := fs.place(tt.td, nil)
			if tt.want == "" {
				fs.waitStatus(arn, StatusRunning)
				return
			}
			r := fs.waitStatus(arn, StatusStopped)
			c := containerOf(t, r, r.Containers[0].ContainerName)
			if r.StopCode != ecs.TaskStopCodeTaskFailedToStart || !hasPrefix(r.Reason, tt.want) || !hasPrefix(c.Reason, tt.want) || c.RuntimeID != "" {
				t.Errorf("report: %s", jsonString(r))
			}
			if list, _ := rt.List(context.Background(), map[string]string{LabelTaskARN: arn}); len(list) != 0 {
				t.Errorf("%d containers created", len(list))
			}
		})
	}
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

func TestRefusedTaskStopsBeforeCreatingAnything(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	rt := offline()
	runAgent(t, fs, rt, t.TempDir())
	bad := container("b", true, "serve")
	bad.Secrets = []ecs.Secret{{Name: "PASSWORD", ValueFrom: "arn:aws:ssm:us-east-1:123456789012:parameter/pw"}}
	arn := fs.place(serveDef(container("a", true, "serve"), bad), nil)
	r := fs.waitStatus(arn, StatusStopped)
	want := prefixCannotCreate + "container b: secrets: secrets from SSM Parameter Store or Secrets Manager are not supported by the Gantry agent yet"
	if r.StopCode != ecs.TaskStopCodeTaskFailedToStart || r.Reason != want {
		t.Errorf("stop code %q reason %q", r.StopCode, r.Reason)
	}
	if c := containerOf(t, r, "b"); c.Reason != want || c.Status != StatusStopped {
		t.Errorf("b: %s", jsonString(c))
	}
	if list, _ := rt.List(context.Background(), nil); len(list) != 0 {
		t.Errorf("%d containers created", len(list))
	}
}

func TestStartFailureStopsTask(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	rt := offline()
	runAgent(t, fs, rt, t.TempDir())
	static := func() ecs.TaskDefinition {
		td := serveDef()
		td.ContainerDefinitions[0].PortMappings[0].HostPort = i32(18080)
		return td
	}
	first := fs.place(static(), nil)
	fs.waitStatus(first, StatusRunning)
	second := fs.place(static(), nil) // the host port is taken
	r := fs.waitStatus(second, StatusStopped)
	if r.StopCode != ecs.TaskStopCodeTaskFailedToStart || !hasPrefix(r.Reason, prefixCannotStart) {
		t.Errorf("report: %s", jsonString(r))
	}
}

func TestTaskDroppedFromAssignmentsIsStopped(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	rt := offline()
	runAgent(t, fs, rt, t.TempDir())
	arn := fs.place(serveDef(), nil)
	r := fs.waitStatus(arn, StatusRunning)
	id := containerOf(t, r, "web").RuntimeID
	fs.forget(arn)
	waitFor(t, 10*time.Second, func() bool {
		st, err := rt.Inspect(context.Background(), id)
		return err == nil && st.State == runtime.StateExited
	}, func() string { return "container still running" })
}

func TestStreamReconnects(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	runAgent(t, fs, offline(), t.TempDir())
	waitFor(t, 5*time.Second, func() bool { fs.mu.Lock(); defer fs.mu.Unlock(); return fs.streams == 1 }, func() string { return "no stream" })
	fs.cut()
	waitFor(t, 5*time.Second, func() bool { fs.mu.Lock(); defer fs.mu.Unlock(); return fs.streams == 2 }, func() string { return "no reconnect" })
	fs.waitStatus(fs.place(serveDef(), nil), StatusRunning)
}

func TestRestartReusesIdentityAndAdoptsContainers(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	rt := offline()
	dir := t.TempDir()
	a1, done, cancel := runAgent(t, fs, rt, dir)
	arn := fs.place(serveDef(), nil)
	r1 := fs.waitStatus(arn, StatusRunning)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	n := len(fs.reportsOf(arn))

	a2, _, _ := runAgent(t, fs, rt, dir)
	if a2.ContainerInstanceARN() != a1.ContainerInstanceARN() {
		t.Fatalf("new instance %s after restart, was %s", a2.ContainerInstanceARN(), a1.ContainerInstanceARN())
	}
	r2 := fs.waitReport(arn, 10*time.Second, func(protocol.TaskStateChange) bool { return len(fs.reportsOf(arn)) > n })
	if got, want := containerOf(t, r2, "web").RuntimeID, containerOf(t, r1, "web").RuntimeID; got != want || r2.Status != StatusRunning {
		t.Errorf("after restart: %s, want container %s", jsonString(r2), want)
	}
	if list, _ := rt.List(context.Background(), nil); len(list) != 1 {
		t.Errorf("%d containers after restart, want 1", len(list))
	}
	fs.mu.Lock()
	regs := fs.registers
	fs.mu.Unlock()
	if len(regs) != 2 || regs[1].ContainerInstanceARN != a1.ContainerInstanceARN() || regs[1].InstanceToken == "" {
		t.Errorf("re-registration: %s", jsonString(regs))
	}
}

func TestDeregisteredInstanceStopsTasks(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	rt := offline()
	_, done, _ := runAgent(t, fs, rt, t.TempDir())
	arn := fs.place(serveDef(), nil)
	fs.waitStatus(arn, StatusRunning)
	fs.setStatus("INACTIVE")
	select {
	case err := <-done:
		if !errors.Is(err, ErrDeregistered) {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent kept running after deregistration")
	}
	fs.waitStatus(arn, StatusStopped)
}

func TestBadJoinToken(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	a, err := New(Config{Server: fs.srv.URL, Cluster: "demo", Token: "wrong", DataDir: t.TempDir(), Runtime: offline()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = a.Run(ctx)
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != 401 {
		t.Fatalf("Run: %v", err)
	}
}

func TestReportsOnlyOwnTasks(t *testing.T) {
	t.Parallel()
	// A 403 NotYourTask is permanent: the report is dropped, not retried
	// forever, and the task is still forgotten once stopped.
	fs := newFakeServer(t)
	rt := offline()
	runAgent(t, fs, rt, t.TempDir())
	arn := fs.place(serveDef(), nil)
	fs.waitStatus(arn, StatusRunning)
	fs.mu.Lock()
	fs.owner[arn] = "someone-else"
	fs.mu.Unlock()
	fs.forget(arn)
	time.Sleep(300 * time.Millisecond)
	if n := len(fs.reportsOf(arn)); n != 1 {
		t.Errorf("%d reports accepted", n)
	}
}

func TestManyTasksAtOnce(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	rt := offline()
	a, _, _ := runAgent(t, fs, rt, t.TempDir())
	const n = 200
	arns := make([]string, n)
	for i := range arns {
		arns[i] = fs.place(serveDef(container("a", true, "serve"), container("b", false, "serve")), nil)
	}
	for _, arn := range arns {
		fs.waitStatus(arn, StatusRunning)
	}
	for _, arn := range arns {
		fs.stop(arn)
	}
	for _, arn := range arns {
		fs.waitStatus(arn, StatusStopped)
	}
	if list, _ := rt.List(context.Background(), nil); len(list) != 2*n {
		t.Errorf("%d containers, want %d", len(list), 2*n)
	}
	fs.mu.Lock()
	left := len(fs.tasks)
	fs.mu.Unlock()
	if left != 0 {
		t.Errorf("%d tasks still assigned", left)
	}
	// Stopped, reported and unassigned tasks are forgotten.
	waitFor(t, 5*time.Second, func() bool {
		a.rec.mu.Lock()
		defer a.rec.mu.Unlock()
		return len(a.rec.tasks) == 0
	}, func() string { return "the agent still tracks stopped tasks" })
}
