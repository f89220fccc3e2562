package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/agent/runtime"
	"github.com/gantry-dev/gantry/agent/runtime/sim"
	"github.com/gantry-dev/gantry/ecs"
)

// fakeRuntime wraps a runtime; a non-nil XxxFn replaces that method.
type fakeRuntime struct {
	runtime.Runtime
	CreateFn func(ctx context.Context, spec runtime.ContainerSpec) (string, error)
	StartFn  func(ctx context.Context, id string) error
}

func (f *fakeRuntime) Create(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	if f.CreateFn != nil {
		return f.CreateFn(ctx, spec)
	}
	return f.Runtime.Create(ctx, spec)
}

func (f *fakeRuntime) Start(ctx context.Context, id string) error {
	if f.StartFn != nil {
		return f.StartFn(ctx, id)
	}
	return f.Runtime.Start(ctx, id)
}

func testEnv(rt runtime.Runtime) *machineEnv {
	return &machineEnv{
		rt:        rt,
		translate: TranslateOptions{Cluster: "demo"},
		pull:      PullDefault,
		pulled:    &imageSet{},
		now:       time.Now,
		log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// describe summarises the machine for step traces.
func (m *taskMachine) describe() string {
	s := m.status
	for _, c := range m.containers {
		st := "-"
		switch {
		case c.status == StatusStopped:
			st = "stopped"
		case c.started:
			st = "started"
		case c.id != "":
			st = "created"
		case c.pulled:
			st = "pulled"
		}
		s += " " + c.plan.Name + ":" + st
	}
	return s
}

func TestMachineAdvancesOneStepPerCall(t *testing.T) {
	t.Parallel()
	rt := offline()
	at := protocol.AssignedTask{
		Task:           ecs.Task{TaskARN: testTaskARN, DesiredStatus: StatusRunning},
		TaskDefinition: serveDef(container("a", true, "serve"), container("b", false, "serve")),
	}
	m := newTaskMachine(testEnv(rt), at)
	ctx := context.Background()
	var trace []string
	step := func() bool {
		t.Helper()
		progressed, err := m.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		trace = append(trace, m.describe())
		return progressed
	}
	for step() {
	}
	m.setDesired(StatusStopped)
	for step() {
	}
	want := []string{
		"PENDING a:- b:-",              // translated
		"PENDING a:- b:-",              // nothing to adopt from an earlier run
		"PENDING a:pulled b:pulled",    // one pull serves both: same image
		"PENDING a:created b:pulled",   // create a
		"PENDING a:created b:created",  // create b
		"PENDING a:started b:created",  // start a
		"PENDING a:started b:started",  // start b
		"RUNNING a:started b:started",  // all started
		"RUNNING a:started b:started",  // nothing to do
		"STOPPING a:started b:started", // desired STOPPED
		"STOPPED a:stopped b:stopped",  // both stopped in one step
		"STOPPED a:stopped b:stopped",  // done
	}
	if fmt.Sprint(trace) != fmt.Sprint(want) {
		t.Errorf("trace:\n%q\nwant\n%q", trace, want)
	}
	if r, ok := m.report("demo"); !ok || r.Status != StatusStopped || r.StopCode != "" {
		t.Errorf("report %s", jsonString(r))
	}
}

func TestMachineAdoptsContainersByName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	at := protocol.AssignedTask{Task: ecs.Task{TaskARN: testTaskARN, DesiredStatus: StatusRunning}, TaskDefinition: serveDef()}
	plan, err := Translate(&at.Task, &at.TaskDefinition, TranslateOptions{Cluster: "demo"})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("Running", func(t *testing.T) {
		rt := offline()
		id, _ := rt.Create(ctx, plan.Containers[0].Spec)
		rt.Start(ctx, id)
		m := newTaskMachine(testEnv(rt), at)
		run(t, m)
		if m.status != StatusRunning || m.containers[0].id != id {
			t.Errorf("%s, id %s want %s", m.describe(), m.containers[0].id, id)
		}
	})
	t.Run("ExitedIsNotStartedAgain", func(t *testing.T) {
		rt := offline()
		id, _ := rt.Create(ctx, plan.Containers[0].Spec)
		rt.Start(ctx, id)
		rt.Exit(id, 7)
		m := newTaskMachine(testEnv(rt), at)
		run(t, m)
		c := m.containers[0]
		if m.status != StatusStopped || m.stopCode != ecs.TaskStopCodeEssentialContainerExited || *c.exitCode != 7 {
			t.Errorf("%s stop code %q", m.describe(), m.stopCode)
		}
		if st, _ := rt.Inspect(ctx, id); st.State != runtime.StateExited {
			t.Errorf("the exited container was started again: %s", st.State)
		}
	})
	t.Run("OtherTasksNameIsAConflict", func(t *testing.T) {
		rt := offline()
		spec := plan.Containers[0].Spec
		spec.Labels = map[string]string{LabelTaskARN: "someone else"}
		rt.Create(ctx, spec)
		m := newTaskMachine(testEnv(rt), at)
		run(t, m)
		if m.status != StatusStopped || m.stopCode != ecs.TaskStopCodeTaskFailedToStart || !hasPrefix(m.reason, prefixCannotCreate) {
			t.Errorf("%s %q %q", m.describe(), m.stopCode, m.reason)
		}
	})
	t.Run("StoppedBeforeStartFindsEarlierContainer", func(t *testing.T) {
		rt := offline()
		id, _ := rt.Create(ctx, plan.Containers[0].Spec)
		rt.Start(ctx, id)
		stopped := at
		stopped.Task.DesiredStatus = StatusStopped
		m := newTaskMachine(testEnv(rt), stopped)
		run(t, m)
		if st, _ := rt.Inspect(ctx, id); st.State != runtime.StateExited || m.status != StatusStopped || m.containers[0].id != id {
			t.Errorf("container %s; machine %s", st.State, m.describe())
		}
	})
}

// run steps m until it makes no more progress, failing on errors.
func run(t *testing.T, m *taskMachine) {
	t.Helper()
	for i := 0; i < 100; i++ {
		progressed, err := m.Step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !progressed {
			return
		}
	}
	t.Fatal("the machine never settled")
}

func TestMachineRetriesUnavailableEngine(t *testing.T) {
	t.Parallel()
	fails := 5
	rt := &fakeRuntime{Runtime: offline()}
	rt.CreateFn = func(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
		if fails > 0 {
			fails--
			return "", fmt.Errorf("create: %w", runtime.ErrUnavailable)
		}
		return rt.Runtime.Create(ctx, spec)
	}
	at := protocol.AssignedTask{Task: ecs.Task{TaskARN: testTaskARN, DesiredStatus: StatusRunning}, TaskDefinition: serveDef()}
	m := newTaskMachine(testEnv(rt), at)
	errs := 0
	for i := 0; i < 50 && m.status != StatusRunning; i++ {
		if _, err := m.Step(context.Background()); err != nil {
			errs++
		}
	}
	if m.status != StatusRunning || errs != 5 {
		t.Errorf("%s after %d errors", m.describe(), errs)
	}
}

func TestMachineGivesUpOnRepeatedEngineErrors(t *testing.T) {
	t.Parallel()
	rt := &fakeRuntime{Runtime: offline()}
	rt.CreateFn = func(context.Context, runtime.ContainerSpec) (string, error) {
		return "", fmt.Errorf("create: the engine had a bad day")
	}
	at := protocol.AssignedTask{Task: ecs.Task{TaskARN: testTaskARN, DesiredStatus: StatusRunning}, TaskDefinition: serveDef()}
	m := newTaskMachine(testEnv(rt), at)
	for i := 0; i < 20 && m.status != StatusStopped; i++ {
		m.Step(context.Background())
	}
	if m.status != StatusStopped || m.reason != prefixCannotCreate+"create: the engine had a bad day" {
		t.Errorf("%s %q", m.describe(), m.reason)
	}
}

func TestMachineOOM(t *testing.T) {
	t.Parallel()
	rt := offline()
	at := protocol.AssignedTask{Task: ecs.Task{TaskARN: testTaskARN, DesiredStatus: StatusRunning}, TaskDefinition: serveDef()}
	m := newTaskMachine(testEnv(rt), at)
	run(t, m)
	rt.OOM(m.containers[0].id)
	m.dirty = true
	run(t, m)
	r, _ := m.report("demo")
	if c := containerOf(t, r, "web"); c.Reason != ReasonOOM || *c.ExitCode != 137 || r.StopCode != ecs.TaskStopCodeEssentialContainerExited {
		t.Errorf("%s", jsonString(r))
	}
}

func TestNetworkBindingsDropDuplicateIPv6(t *testing.T) {
	t.Parallel()
	got := networkBindings([]runtime.PortBinding{
		{ContainerPort: 80, HostPort: 32768, Protocol: runtime.TCP, HostIP: "0.0.0.0"},
		{ContainerPort: 80, HostPort: 32770, Protocol: runtime.TCP, HostIP: "::"}, // Docker 20.10: another port
		{ContainerPort: 53, HostPort: 32769, Protocol: runtime.UDP, HostIP: "::"},
		{ContainerPort: 8080, HostPort: 8080, Protocol: runtime.TCP},
	})
	want := `[{0.0.0.0 80 32768 tcp} {:: 53 32769 udp} {0.0.0.0 8080 8080 tcp}]`
	var s []string
	for _, b := range got {
		s = append(s, fmt.Sprintf("{%s %d %d %s}", b.BindIP, *b.ContainerPort, *b.HostPort, b.Protocol))
	}
	if fmt.Sprint(s) != want {
		t.Errorf("got %v want %s", s, want)
	}
}

var _ runtime.Runtime = (*fakeRuntime)(nil)

func TestMachinesShareStartSlots(t *testing.T) {
	t.Parallel()
	env := testEnv(offline())
	var held []func()
	for range max(4, 4*goruntime.NumCPU()) {
		release, err := env.startSlot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, release)
	}
	// Every slot is taken: a start waits (here until its context ends).
	at := protocol.AssignedTask{Task: ecs.Task{TaskARN: testTaskARN, DesiredStatus: StatusRunning}, TaskDefinition: serveDef()}
	m := newTaskMachine(env, at)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var err error
	for progressed := true; progressed && err == nil; {
		progressed, err = m.Step(ctx)
	}
	if !errors.Is(err, context.DeadlineExceeded) || m.containers[0].started || m.containers[0].id == "" {
		t.Fatalf("with every slot taken: err %v, %s", err, m.describe())
	}
	held[0]()
	run(t, m)
	if m.status != StatusRunning {
		t.Errorf("after a slot was freed: %s", m.describe())
	}
}

func TestMachineReportsImageDigest(t *testing.T) {
	t.Parallel()
	at := protocol.AssignedTask{Task: ecs.Task{TaskARN: testTaskARN, DesiredStatus: StatusRunning}, TaskDefinition: serveDef()}
	digest := func(rt runtime.Runtime) string {
		t.Helper()
		m := newTaskMachine(testEnv(rt), at)
		run(t, m)
		r, ok := m.report("demo")
		if !ok || r.Status != StatusRunning {
			t.Fatalf("report %s", jsonString(r))
		}
		return containerOf(t, r, "web").ImageDigest
	}
	pulled := sim.New(sim.Options{})
	got := digest(pulled)
	want, err := pulled.ImageDigest(context.Background(), simImage)
	if err != nil || got != want || want == "" {
		t.Errorf("pulled image: digest %q, want %q (%v)", got, want, err)
	}
	// A pull that fails falls back to the image stored locally, which was
	// built here: it has no digest.
	if got := digest(offline()); got != "" {
		t.Errorf("image built locally: digest %q, want none", got)
	}
}
