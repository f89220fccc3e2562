package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/agent/runtime"
	"github.com/gantry-dev/gantry/agent/runtime/sim"
	"github.com/gantry-dev/gantry/ecs"
)

// Agent tests of ordering, health, restarts, cleanup and metadata on the
// simulated runtime (the Docker end-to-end tests check the same against
// the engine).

func simWithHealth(after time.Duration) *sim.Runtime {
	return sim.New(sim.Options{Images: []string{simImage}, HealthyAfter: after})
}

func withHealthCheck(c ecs.ContainerDefinition) ecs.ContainerDefinition {
	c.HealthCheck = &ecs.HealthCheck{Command: []string{"CMD", "/testapp", "healthcheck", "http://127.0.0.1:8080/health"}}
	return c
}

func dependOn(c ecs.ContainerDefinition, name string, cond ecs.ContainerCondition) ecs.ContainerDefinition {
	c.DependsOn = append(c.DependsOn, ecs.ContainerDependency{ContainerName: name, Condition: cond})
	return c
}

func inspectName(t *testing.T, rt runtime.Runtime, r protocol.TaskStateChange, name string) runtime.ContainerStatus {
	t.Helper()
	st, err := rt.Inspect(context.Background(), containerOf(t, r, name).RuntimeID)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestDependsOnOrderAndHealth(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	rt := simWithHealth(300 * time.Millisecond)
	runAgent(t, fs, rt, t.TempDir())
	migrate := container("migrate", false, "exit", "0", "--after", "200ms")
	db := withHealthCheck(container("db", true, "serve"))
	app := dependOn(dependOn(container("app", true, "serve"), "migrate", ecs.ContainerConditionSuccess), "db", ecs.ContainerConditionHealthy)
	arn := fs.place(serveDef(app, db, migrate), nil)

	// While app waits, the containers that run are reported (task status
	// empty: still PENDING).
	pending := fs.waitReport(arn, 10*time.Second, func(r protocol.TaskStateChange) bool {
		return r.Status == "" && containerOf(t, r, "db").Status == StatusRunning
	})
	if c := containerOf(t, pending, "app"); c.Status != StatusPending {
		t.Errorf("app while waiting: %s", jsonString(c))
	}
	r := fs.waitStatus(arn, StatusRunning)
	if r.HealthStatus != ecs.HealthStatusHealthy || r.ContainerHealth["db"] != ecs.HealthStatusHealthy || len(r.ContainerHealth) != 1 {
		t.Errorf("health: task %q containers %v", r.HealthStatus, r.ContainerHealth)
	}
	appSt, migrateSt := inspectName(t, rt, r, "app"), inspectName(t, rt, r, "migrate")
	if appSt.StartedAt.Before(migrateSt.FinishedAt) || migrateSt.ExitCode != 0 {
		t.Errorf("app started at %v, migrate finished at %v", appSt.StartedAt, migrateSt.FinishedAt)
	}
	if c := containerOf(t, r, "migrate"); c.Status != StatusStopped || c.ExitCode == nil || *c.ExitCode != 0 {
		t.Errorf("migrate: %s", jsonString(c))
	}

	fs.stop(arn)
	r = fs.waitStatus(arn, StatusStopped)
	if appSt, dbSt := inspectName(t, rt, r, "app"), inspectName(t, rt, r, "db"); dbSt.FinishedAt.Before(appSt.FinishedAt) {
		t.Errorf("db stopped at %v before app (which depends on it) at %v", dbSt.FinishedAt, appSt.FinishedAt)
	}
}

func TestUnhealthyEssentialMakesTaskUnhealthy(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	rt := simWithHealth(50 * time.Millisecond)
	runAgent(t, fs, rt, t.TempDir())
	web := withHealthCheck(container("web", true, "serve"))
	web.Environment = []ecs.KeyValuePair{{Name: "TESTAPP_UNHEALTHY", Value: "1"}}
	side := withHealthCheck(container("side", false, "serve")) // healthy, but not essential
	arn := fs.place(serveDef(web, side), nil)
	r := fs.waitReport(arn, 10*time.Second, func(r protocol.TaskStateChange) bool {
		return r.HealthStatus == ecs.HealthStatusUnhealthy && r.ContainerHealth["side"] == ecs.HealthStatusHealthy
	})
	if r.Status != StatusRunning || r.ContainerHealth["web"] != ecs.HealthStatusUnhealthy {
		t.Errorf("report: %s", jsonString(r))
	}
}

func TestDependencyFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		containers []ecs.ContainerDefinition
		want       string
	}{
		{"SuccessExitedNonZero", []ecs.ContainerDefinition{
			container("init", false, "exit", "4"),
			dependOn(container("app", true, "serve"), "init", ecs.ContainerConditionSuccess),
		}, "CannotStartContainerError: dependency on container init (SUCCESS) can never be met: it exited with exit code 4"},
		{"HealthyExited", []ecs.ContainerDefinition{
			withHealthCheck(container("db", false, "exit", "1", "--after", "50ms")), // never judged healthy (see below)
			dependOn(container("app", true, "serve"), "db", ecs.ContainerConditionHealthy),
		}, "CannotStartContainerError: dependency on container db (HEALTHY) can never be met: it exited with exit code 1 before it was healthy"},
		{"HealthyTimedOut", []ecs.ContainerDefinition{
			func() ecs.ContainerDefinition {
				c := withHealthCheck(container("db", true, "serve"))
				c.StartTimeout = i32(1)
				c.Environment = []ecs.KeyValuePair{{Name: "TESTAPP_UNHEALTHY", Value: "1"}}
				return c
			}(),
			dependOn(container("app", true, "serve"), "db", ecs.ContainerConditionHealthy),
		}, "CannotStartContainerError: dependency on container db (HEALTHY) can never be met: it did not get there within its startTimeout of 1s"},
		{"NeverStarted", []ecs.ContainerDefinition{
			func() ecs.ContainerDefinition {
				c := container("web", false, "serve")
				c.PortMappings = []ecs.PortMapping{{ContainerPort: i32(8080), HostPort: i32(18099)}}
				return c
			}(),
			dependOn(container("app", true, "serve"), "web", ecs.ContainerConditionStart),
		}, "CannotStartContainerError: dependency on container web (START) can never be met: it did not start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := newFakeServer(t)
			rt := simWithHealth(50 * time.Millisecond)
			if tt.name == "HealthyExited" {
				rt = simWithHealth(time.Hour)
			}
			if tt.name == "NeverStarted" { // the host port is taken: web cannot start
				spec := runtime.ContainerSpec{Name: "holder", Image: simImage, Ports: []runtime.PortMapping{{ContainerPort: 1, HostPort: 18099}}}
				id, _ := rt.Create(context.Background(), spec)
				rt.Start(context.Background(), id)
			}
			runAgent(t, fs, rt, t.TempDir())
			arn := fs.place(serveDef(tt.containers...), nil)
			r := fs.waitStatus(arn, StatusStopped)
			if r.StopCode != ecs.TaskStopCodeTaskFailedToStart || r.Reason != tt.want {
				t.Errorf("stop %q %q, want %q", r.StopCode, r.Reason, tt.want)
			}
			if c := containerOf(t, r, "app"); c.ExitCode != nil || c.Reason != tt.want {
				t.Errorf("app: %s", jsonString(c))
			}
		})
	}
}

// A restarted agent adopts a running task's containers without pulling
// their images again (so a registry that is down cannot fail a task that
// runs), and never recreates a container the server's record says ran.
func TestRestartAdoptsWithoutPullingAndNeverRecreates(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	rt := offline() // pulls fail
	dir := t.TempDir()
	_, done, cancel := runAgent(t, fs, rt, dir, func(c *Config) { c.PullBehavior = PullDefault })
	keep := fs.place(serveDef(), nil)
	gone := fs.place(serveDef(container("main", true, "serve")), nil)
	id := containerOf(t, fs.waitStatus(keep, StatusRunning), "web").RuntimeID
	goneID := containerOf(t, fs.waitStatus(gone, StatusRunning), "main").RuntimeID
	cancel()
	<-done
	if err := rt.Remove(context.Background(), goneID); err != nil {
		t.Fatal(err)
	}
	n := len(fs.reportsOf(keep))

	// Now with "always": a pull would fail the task.
	runAgent(t, fs, rt, dir, func(c *Config) { c.PullBehavior = PullAlways })
	r := fs.waitStatus(gone, StatusStopped)
	if c := containerOf(t, r, "main"); c.Reason != reasonRemoved || r.StopCode != ecs.TaskStopCodeEssentialContainerExited {
		t.Errorf("gone: %s", jsonString(r))
	}
	waitFor(t, 10*time.Second, func() bool { return len(fs.reportsOf(keep)) > n }, func() string { return "no report after the restart" })
	last := fs.reportsOf(keep)[len(fs.reportsOf(keep))-1]
	if last.Status != StatusRunning || containerOf(t, last, "web").RuntimeID != id {
		t.Errorf("keep after the restart: %s", jsonString(last))
	}
	list, _ := rt.List(context.Background(), nil)
	if len(list) != 1 {
		t.Errorf("%d containers, want 1 (none recreated)", len(list))
	}
}

// A Start whose answer was lost (the engine went away) is not sent again
// if the container did start: it would run a second time.
func TestLostStartIsNotRepeated(t *testing.T) {
	t.Parallel()
	rt := offline()
	starts := 0
	fake := &fakeRuntime{Runtime: rt}
	fake.StartFn = func(ctx context.Context, id string) error {
		starts++
		if err := rt.Start(ctx, id); err != nil {
			return err
		}
		if starts == 1 {
			rt.Exit(id, 0) // it ran, and finished, before the engine answered
			return fmt.Errorf("start: EOF: %w", runtime.ErrUnavailable)
		}
		return nil
	}
	at := protocol.AssignedTask{Task: ecs.Task{TaskARN: testTaskARN, DesiredStatus: StatusRunning},
		TaskDefinition: serveDef(container("job", true, "serve"))}
	m := newTaskMachine(testEnv(fake), at)
	for i := 0; i < 50 && m.status != StatusStopped; i++ {
		m.Step(context.Background())
	}
	if starts != 1 || m.status != StatusStopped || m.stopCode != ecs.TaskStopCodeEssentialContainerExited {
		t.Errorf("%d starts; %s %q", starts, m.describe(), m.stopCode)
	}
}

// Containers of tasks the instance does not run are stopped; stopped
// tasks' containers and task volumes go after the cleanup wait.
func TestCleanup(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	rt := offline()
	a, _, _ := runAgent(t, fs, rt, t.TempDir(), func(c *Config) { c.TaskCleanupWait = time.Second })
	td := serveDef()
	td.Volumes = []ecs.Volume{{Name: "scratch"}}
	td.ContainerDefinitions[0].MountPoints = []ecs.MountPoint{{SourceVolume: "scratch", ContainerPath: "/scratch"}}
	arn := fs.place(td, nil)
	id := containerOf(t, fs.waitStatus(arn, StatusRunning), "web").RuntimeID
	vols, _ := rt.ListVolumes(context.Background(), map[string]string{LabelTaskARN: arn})
	if len(vols) != 1 || vols[0].Labels[LabelVolumeScope] != "task" {
		t.Fatalf("task volumes %+v", vols)
	}
	orphan, _ := rt.Create(context.Background(), runtime.ContainerSpec{Name: "orphan", Image: simImage, Command: []string{"serve"},
		Labels: map[string]string{LabelContainerInstance: a.ContainerInstanceARN(), LabelTaskARN: "arn:aws:ecs:us-east-1:123456789012:task/demo/x"}})
	rt.Start(context.Background(), orphan)
	other, _ := rt.Create(context.Background(), runtime.ContainerSpec{Name: "not-ours", Image: simImage, Command: []string{"serve"}})
	rt.Start(context.Background(), other)

	fs.stop(arn)
	fs.waitStatus(arn, StatusStopped)
	waitFor(t, 15*time.Second, func() bool {
		_, err1 := rt.Inspect(context.Background(), id)
		_, err2 := rt.Inspect(context.Background(), orphan)
		vols, _ := rt.ListVolumes(context.Background(), map[string]string{LabelTaskARN: arn})
		return errors.Is(err1, runtime.ErrNotFound) && errors.Is(err2, runtime.ErrNotFound) && len(vols) == 0
	}, func() string { return "not cleaned up" })
	if st, err := rt.Inspect(context.Background(), other); err != nil || st.State != runtime.StateRunning {
		t.Errorf("a container without the instance label was touched: %v %s", err, st.State)
	}
}

// The metadata endpoint answers a container's URI with its document and
// /task with the task's; an unknown token is a 404.
func TestMetadataEndpoint(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	rt := offline()
	dir := t.TempDir()
	a, _, _ := runAgent(t, fs, rt, dir, func(c *Config) { c.MetadataAddress = "127.0.0.1:0" })
	td := serveDef(withHealthCheck(container("web", true, "serve")), container("env", false, "print-env"))
	td.Memory = "512"
	arn := fs.place(td, nil)
	r := fs.waitStatus(arn, StatusRunning)
	st := inspectName(t, rt, r, "web")
	secret, err := loadMetadataSecret(dir)
	if err != nil {
		t.Fatal(err)
	}
	base := a.MetadataEndpoint() + "/v4/" + MetadataToken(secret, arn, "web")
	get := func(url string, v any) int {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if v != nil {
			json.NewDecoder(resp.Body).Decode(v)
		}
		return resp.StatusCode
	}
	var own struct {
		DockerId, Name, DockerName, KnownStatus, DesiredStatus, Type string
		Health                                                       struct{ Status string }
		Limits                                                       struct{ Memory int }
	}
	if code := get(base, &own); code != 200 || own.Name != "web" || own.DockerId != st.ID || own.KnownStatus != "RUNNING" ||
		own.DesiredStatus != "RUNNING" || own.Type != "NORMAL" || own.Health.Status == "" || own.Limits.Memory != 32 {
		t.Errorf("container document %d %+v", code, own)
	}
	var task struct {
		TaskARN, Family, Revision, KnownStatus string
		Limits                                 struct{ Memory int }
		Containers                             []struct{ Name string }
	}
	if code := get(base+"/task", &task); code != 200 || task.TaskARN != arn || task.Family != "svc" || task.Revision != "1" ||
		task.Limits.Memory != 512 || len(task.Containers) != 2 {
		t.Errorf("task document %d %+v", code, task)
	}
	if code := get(a.MetadataEndpoint()+"/v4/0123456789abcdef0123456789abcdef/task", nil); code != 404 {
		t.Errorf("unknown token: %d", code)
	}
	rc, err := rt.Logs(context.Background(), containerOf(t, r, "env").RuntimeID, runtime.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out, _ := io.ReadAll(rc)
	if want := EnvMetadataURIV4 + "=" + a.MetadataEndpoint() + "/v4/" + MetadataToken(secret, arn, "env") + "\n"; !strings.Contains(string(out), want) {
		t.Errorf("env: %q, want %q", out, want)
	}
}
