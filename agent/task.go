package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	goruntime "runtime"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/agent/runtime"
	"github.com/gantry-dev/gantry/ecs"
)

// Task and container statuses as the agent reports them (ECS's lastStatus
// values). PENDING is never reported for a task: the server sets it when it
// places a task.
const (
	StatusPending  = "PENDING"
	StatusRunning  = "RUNNING"
	StatusStopping = "STOPPING"
	StatusStopped  = "STOPPED"
)

// Reasons, in ECS's words.
const (
	ReasonEssentialExited = "Essential container in task exited"
	ReasonOOM             = "OutOfMemoryError: Container killed due to memory usage"
	prefixCannotPull      = "CannotPullContainerError: "
	prefixCannotCreate    = "CannotCreateContainerError: "
	prefixCannotStart     = "CannotStartContainerError: "
	prefixCannotInspect   = "CannotInspectContainerError: "
	reasonRemoved         = prefixCannotInspect + "the container was removed outside the agent"
)

// ECS's length limits on reasons (SubmitTaskStateChange, ContainerStateChange).
const (
	maxTaskReason      = 1024
	maxContainerReason = 255
)

// maxTransient is how many times in a row a step may fail with an
// unclassified engine error before the task is stopped with that error. An
// unreachable engine (runtime.ErrUnavailable) is retried without limit.
const maxTransient = 3

// PullBehavior is when the agent pulls images: ECS's ECS_IMAGE_PULL_BEHAVIOR.
type PullBehavior string

// Pull behaviours.
const (
	PullDefault      PullBehavior = "default"       // pull; if that fails, use the cached image if there is one
	PullAlways       PullBehavior = "always"        // pull; a failed pull fails the task
	PullOnce         PullBehavior = "once"          // pull the first time this agent runs the image, then use the cache
	PullPreferCached PullBehavior = "prefer-cached" // use the cached image; pull only if there is none
)

// machineEnv is what every task machine of an agent shares.
type machineEnv struct {
	rt        runtime.Runtime
	translate TranslateOptions
	pull      PullBehavior
	pulled    *imageSet // images this agent pulled (PullOnce)
	// registryAuth returns the credentials for pulling image, nil for
	// anonymous pulls: the built-in registry's take the instance token.
	registryAuth func(image string) *runtime.RegistryAuth
	now          func() time.Time
	log          *slog.Logger

	slotsOnce sync.Once
	slots     chan struct{} // see startSlot
}

// startSlot waits for one of the agent's container start slots, 4 per CPU,
// and returns its release. Dozens of starts at once on a small host
// contend in the engine (network namespaces, mounts, runc, shims) until
// the first container runs only when nearly all do; a few at a time run
// the first ones at once and, on two cores, all of them sooner
// (docs/services.md). Creates are not limited: they are quick.
func (e *machineEnv) startSlot(ctx context.Context) (release func(), err error) {
	e.slotsOnce.Do(func() { e.slots = make(chan struct{}, max(4, 4*goruntime.NumCPU())) })
	select {
	case e.slots <- struct{}{}:
		return func() { <-e.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// taskContainer is the machine's record of one container of its task.
type taskContainer struct {
	plan     ContainerPlan
	pulled   bool
	digest   string // the image's registry digest, once pulled (empty for an image built locally)
	id       string // runtime ID once created
	started  bool   // started by this agent (or found started)
	status   string // PENDING, RUNNING, STOPPED
	exitCode *int32
	reason   string
	bindings []ecs.NetworkBinding
	health   runtime.HealthStatus
	last     runtime.ContainerStatus // the latest inspection
	// startSent: a Start was sent whose outcome is unknown (the engine
	// went away meanwhile); before sending another, look whether it ran.
	startSent bool
}

// neverStarts reports whether c is done without having run: it will not
// start (a dependency failed, the task stopped first).
func (c *taskContainer) neverStarts() bool { return c.status == StatusStopped && !c.started }

// taskVolumeState is a Docker volume the task needs, and whether it is there.
type taskVolumeState struct {
	plan  VolumePlan
	ready bool
}

// taskMachine is the state machine of one task on this instance. Step
// advances it by one step (translate, adopt what a previous run created,
// provision one volume, pull one image, create one container, start one
// container whose dependencies are met, mark the task RUNNING, notice exits
// and health changes, begin stopping, stop the containers); it is not safe
// for concurrent use: one goroutine (the task's runner) owns it. Only Step
// talks to the runtime.
//
//	PENDING ──translate──adopt──volume*──pull*──create*──start*──► RUNNING ──┐
//	   │  (refused, pull/create/start failed, a dependency        │ essential exit,
//	   │   that can never be met: TaskFailedToStart)              │ desired STOPPED
//	   ▼                                                           ▼
//	STOPPED ◄──────────── stop containers, dependents first ◄──── STOPPING
type taskMachine struct {
	env  *machineEnv
	arn  string
	task ecs.Task
	td   ecs.TaskDefinition

	desired    string // RUNNING or STOPPED, as the server wants it
	dirty      bool   // a runtime event arrived: inspect the containers
	translated bool
	adopted    bool
	containers []*taskContainer
	byName     map[string]*taskContainer
	createSeq  []*taskContainer // containers in create order
	volumes    []*taskVolumeState

	status             string
	stopCode           ecs.TaskStopCode
	reason             string
	pullStartedAt      time.Time
	pullStoppedAt      time.Time
	executionStoppedAt time.Time
	failures           int       // consecutive unclassified failures of the current step
	version            int       // bumped by every change the server should hear of
	wakeAt             time.Time // when a dependency times out; zero: no deadline
}

func newTaskMachine(env *machineEnv, at protocol.AssignedTask) *taskMachine {
	m := &taskMachine{env: env, arn: at.Task.TaskARN, task: at.Task, td: at.TaskDefinition, status: StatusPending}
	m.setDesired(at.Task.DesiredStatus)
	return m
}

func (m *taskMachine) setDesired(d string) {
	if d == StatusStopped || m.desired == StatusStopped {
		m.desired = StatusStopped // desiredStatus never goes back
	} else {
		m.desired = StatusRunning
	}
}

// Step advances the task by at most one step. It reports whether it made
// progress (call it again) and returns an error when the step could not be
// taken for a reason worth retrying later (the engine is unreachable); any
// failure of the task itself is a state (STOPPED with a reason), not an
// error. A task waiting for a dependency makes no progress until an event
// (dirty) or wakeAt.
func (m *taskMachine) Step(ctx context.Context) (bool, error) {
	if m.dirty && m.status != StatusStopped && m.status != StatusStopping {
		m.dirty = false
		if changed, err := m.refresh(ctx); err != nil || changed {
			return changed, err
		}
	}
	switch {
	case m.status == StatusStopped:
		return false, nil
	case m.status == StatusStopping:
		return true, m.stopAll(ctx)
	case m.desired == StatusStopped || m.stopCode != "":
		if !m.translated {
			m.untranslated()
		}
		if m.anyStarted() {
			m.setStatus(StatusStopping)
			return true, nil
		}
		return true, m.stopAll(ctx)
	case !m.translated:
		m.translateTask()
		return true, nil
	case !m.adopted:
		return true, m.adopt(ctx)
	}
	for _, v := range m.volumes {
		if !v.ready {
			return true, m.provision(ctx, v)
		}
	}
	if c := m.first(func(c *taskContainer) bool { return !c.pulled && c.status != StatusStopped }); c != nil {
		return true, m.pullImage(ctx, c)
	}
	if m.pullStoppedAt.IsZero() && !m.pullStartedAt.IsZero() {
		m.pullStoppedAt = m.env.now()
	}
	for _, c := range m.createSeq {
		if c.id == "" && c.status != StatusStopped {
			return true, m.create(ctx, c)
		}
	}
	if progressed, err := m.startNext(ctx); progressed || err != nil {
		return progressed, err
	}
	if m.status == StatusPending && m.allStartedOrDone() {
		m.setStatus(StatusRunning)
		return true, nil
	}
	return false, nil
}

func (m *taskMachine) translateTask() {
	m.translated = true
	plan, err := Translate(&m.task, &m.td, m.env.translate)
	if err != nil {
		// Report every container as never started, with the reason on the
		// one it concerns.
		var re *RefusedError
		errors.As(err, &re)
		for i := range m.td.ContainerDefinitions {
			cd := &m.td.ContainerDefinitions[i]
			c := &taskContainer{plan: ContainerPlan{Name: cd.Name, Spec: runtime.ContainerSpec{Image: cd.Image}}, status: StatusPending}
			if re != nil && re.Container == cd.Name {
				c.reason = prefixCannotCreate + err.Error()
			}
			m.addContainer(c)
		}
		m.adopted = true
		m.failTask(prefixCannotCreate + err.Error())
		return
	}
	for _, p := range plan.Containers {
		m.addContainer(&taskContainer{plan: p, status: StatusPending})
	}
	for _, i := range plan.CreateOrder {
		m.createSeq = append(m.createSeq, m.containers[i])
	}
	for _, v := range plan.Volumes {
		m.volumes = append(m.volumes, &taskVolumeState{plan: v})
	}
}

func (m *taskMachine) addContainer(c *taskContainer) {
	if m.byName == nil {
		m.byName = map[string]*taskContainer{}
	}
	m.containers = append(m.containers, c)
	m.byName[c.plan.Name] = c
}

// untranslated lists the task's containers without translating them (a
// task stopped before it started), under their deterministic names, so
// that stopAll finds any a previous run of the agent created.
func (m *taskMachine) untranslated() {
	m.translated, m.adopted = true, true
	id := TaskID(m.arn)
	for i := range m.td.ContainerDefinitions {
		cd := &m.td.ContainerDefinitions[i]
		c := &taskContainer{plan: ContainerPlan{Name: cd.Name, Essential: cd.Essential == nil || *cd.Essential,
			StopTimeout: DefaultStopTimeout}, status: StatusPending}
		if cd.StopTimeout != nil && *cd.StopTimeout >= 0 {
			c.plan.StopTimeout = time.Duration(*cd.StopTimeout) * time.Second
		}
		if id != "" {
			c.plan.Spec.Name = ContainerName(m.td.Family, m.td.Revision, cd.Name, id)
		}
		m.addContainer(c)
	}
}

// adopt looks for containers an earlier run of the agent created for this
// task (it was restarted, even by kill -9) and takes them over: a running
// one is watched, an exited one stays exited and is never started again,
// and their images are not pulled again. A container that the server's
// record says ran but that is gone was removed behind the agent's back; it
// is reported so, and never created a second time.
func (m *taskMachine) adopt(ctx context.Context) error {
	found, err := m.env.rt.List(ctx, map[string]string{LabelTaskARN: m.arn})
	if err != nil {
		return err
	}
	m.adopted = true
	byName := map[string]runtime.ContainerStatus{}
	for _, st := range found {
		byName[st.Name] = st
	}
	for _, c := range m.containers {
		st, ok := byName[c.plan.Spec.Name]
		if ok && st.Labels[LabelTaskARN] == m.arn {
			c.id, c.pulled = st.ID, true
			if st.State != runtime.StateCreated {
				c.started = true // never start it again: an exited container stays exited
				m.record(c, st)
			}
			continue
		}
		rec := m.recordOf(c.plan.Name)
		if rec == nil || (rec.LastStatus != StatusRunning && rec.LastStatus != StatusStopped) {
			continue // never ran: create it
		}
		c.started, c.status, c.exitCode = true, StatusStopped, rec.ExitCode
		if rec.LastStatus == StatusRunning || rec.ExitCode == nil {
			c.reason = reasonRemoved
			m.essentialStopped(c)
		}
		m.version++
	}
	return nil
}

// recordOf is the server's record of the task's container name.
func (m *taskMachine) recordOf(name string) *ecs.Container {
	for i := range m.task.Containers {
		if m.task.Containers[i].Name == name {
			return &m.task.Containers[i]
		}
	}
	return nil
}

// provision makes sure a Docker volume of the task exists: a task-scoped
// one is created (idempotently), a shared one is looked up and created
// only with autoprovision.
func (m *taskMachine) provision(ctx context.Context, v *taskVolumeState) error {
	rt, spec := m.env.rt, v.plan.Spec
	fail := func(format string, args ...any) error {
		m.failTask(prefixCannotCreate + fmt.Sprintf("volume %s: ", v.plan.Name) + fmt.Sprintf(format, args...))
		return nil
	}
	if v.plan.Shared {
		got, err := rt.InspectVolume(ctx, spec.Name)
		switch {
		case err == nil:
			if got.Driver != spec.Driver {
				return fail("Docker volume %s exists with driver %s, not %s", spec.Name, got.Driver, spec.Driver)
			}
			v.ready = true
			return nil
		case errors.Is(err, runtime.ErrUnavailable):
			return err
		case !errors.Is(err, runtime.ErrNotFound):
			return m.transient(err, func() { fail("%v", err) })
		case !v.plan.Autoprovision:
			return fail("no Docker volume named %s on this host, and dockerVolumeConfiguration.autoprovision is false", spec.Name)
		}
	}
	err := rt.CreateVolume(ctx, spec)
	switch {
	case err == nil:
		v.ready = true
		m.failures = 0
		return nil
	case errors.Is(err, runtime.ErrUnavailable):
		return err
	case errors.Is(err, runtime.ErrConflict), errors.Is(err, runtime.ErrInvalidSpec):
		return fail("%v", err)
	}
	return m.transient(err, func() { fail("%v", err) })
}

// transient retries an unclassified engine error a few times, then gives
// up with giveUp.
func (m *taskMachine) transient(err error, giveUp func()) error {
	if m.failures++; m.failures < maxTransient {
		return err
	}
	giveUp()
	return nil
}

func (m *taskMachine) pullImage(ctx context.Context, c *taskContainer) error {
	if m.pullStartedAt.IsZero() {
		m.pullStartedAt = m.env.now()
	}
	img := c.plan.Spec.Image
	rt := m.env.rt
	switch m.env.pull {
	case PullPreferCached, PullOnce:
		if m.env.pull == PullOnce && !m.env.pulled.has(img) {
			break
		}
		ok, err := rt.HasImage(ctx, img)
		if err != nil {
			return err
		}
		if ok {
			return m.markPulled(ctx, img)
		}
	}
	var auth *runtime.RegistryAuth
	if m.env.registryAuth != nil {
		auth = m.env.registryAuth(img)
	}
	err := rt.Pull(ctx, img, auth)
	if err == nil {
		m.env.pulled.add(img)
		return m.markPulled(ctx, img)
	}
	if errors.Is(err, runtime.ErrUnavailable) {
		return err
	}
	if m.env.pull != PullAlways {
		ok, herr := rt.HasImage(ctx, img)
		if herr != nil {
			return herr
		}
		if ok {
			m.env.log.Debug("pull failed; using the cached image", "task", m.arn, "image", img, "err", err)
			return m.markPulled(ctx, img)
		}
	}
	c.reason = prefixCannotPull + err.Error()
	m.failTask(c.reason)
	return nil
}

// markPulled marks every container of the task using img, with the
// image's registry digest (ECS's imageDigest), read once the image is
// stored. A digest the engine cannot give is left out
// rather than failing the task; an unreachable engine is retried.
func (m *taskMachine) markPulled(ctx context.Context, img string) error {
	digest, err := m.env.rt.ImageDigest(ctx, img)
	if errors.Is(err, runtime.ErrUnavailable) {
		return err
	}
	if err != nil {
		m.env.log.Debug("no image digest", "task", m.arn, "image", img, "err", err)
	}
	for _, c := range m.containers {
		if c.plan.Spec.Image == img {
			c.pulled, c.digest = true, digest
		}
	}
	return nil
}

func (m *taskMachine) create(ctx context.Context, c *taskContainer) error {
	rt := m.env.rt
	id, err := rt.Create(ctx, c.plan.Spec)
	switch {
	case err == nil:
		c.id = id
		m.failures = 0
		return nil
	case errors.Is(err, runtime.ErrConflict):
		// The deterministic name is taken: a retried create, or a
		// container created after adopt looked. Adopt it if it is this
		// task's.
		st, ierr := rt.Inspect(ctx, c.plan.Spec.Name)
		if ierr != nil {
			return ierr
		}
		if st.Labels[LabelTaskARN] != m.arn {
			c.reason = prefixCannotCreate + err.Error()
			m.failTask(c.reason)
			return nil
		}
		c.id = st.ID
		if st.State != runtime.StateCreated {
			c.started = true // never start it again: an exited container stays exited
			m.record(c, st)
		}
		return nil
	case errors.Is(err, runtime.ErrUnavailable):
		return err
	case errors.Is(err, runtime.ErrInvalidSpec), errors.Is(err, runtime.ErrUnsupported),
		errors.Is(err, runtime.ErrImageNotFound), errors.Is(err, runtime.ErrNotFound):
	default:
		if m.failures++; m.failures < maxTransient {
			return err
		}
	}
	c.reason = prefixCannotCreate + err.Error()
	m.failTask(c.reason)
	return nil
}

func (m *taskMachine) start(ctx context.Context, c *taskContainer) error {
	rt := m.env.rt
	if c.startSent {
		// The last Start may have run the container before the engine went
		// away: starting an exited container again would run it twice.
		st, err := rt.Inspect(ctx, c.id)
		if err != nil {
			return err
		}
		if st.State != runtime.StateCreated || !st.StartedAt.IsZero() {
			c.started, c.startSent = true, false
			m.record(c, st)
			return nil
		}
	}
	release, err := m.env.startSlot(ctx)
	if err != nil {
		return err
	}
	c.startSent = true
	err = rt.Start(ctx, c.id)
	release()
	if err != nil {
		if errors.Is(err, runtime.ErrUnavailable) {
			return err
		}
		c.startSent = false
		c.reason = prefixCannotStart + err.Error()
		if c.plan.Essential {
			m.failTask(c.reason)
		} else {
			c.status = StatusStopped // reported; the task goes on without it
			m.version++
		}
		return nil
	}
	// Started: from here on the container is only inspected, never started
	// again (a start of an exited container would run it a second time).
	c.started, c.startSent = true, false
	c.status = StatusRunning
	m.version++
	st, err := rt.Inspect(ctx, c.id)
	if err != nil {
		m.dirty = true
		return err
	}
	m.record(c, st)
	return nil
}

// refresh inspects the started containers after a runtime event and
// records what changed.
func (m *taskMachine) refresh(ctx context.Context) (bool, error) {
	v := m.version
	for _, c := range m.containers {
		if !c.started || c.status == StatusStopped || c.id == "" {
			continue
		}
		st, err := m.env.rt.Inspect(ctx, c.id)
		if errors.Is(err, runtime.ErrNotFound) {
			c.status = StatusStopped
			c.reason = reasonRemoved
			m.version++
			m.essentialStopped(c)
			continue
		}
		if err != nil {
			m.dirty = true
			return m.version != v, err
		}
		m.record(c, st)
	}
	return m.version != v, nil
}

// record updates c from what the runtime reports.
func (m *taskMachine) record(c *taskContainer, st runtime.ContainerStatus) {
	c.last = st
	if st.Health != c.health {
		c.health = st.Health
		if c.plan.HealthCheck {
			m.version++
		}
	}
	switch st.State {
	case runtime.StateRunning:
		b := networkBindings(st.Ports)
		if c.status != StatusRunning || !equalBindings(b, c.bindings) {
			c.status, c.bindings = StatusRunning, b
			m.version++
		}
	case runtime.StateExited:
		if c.status == StatusStopped {
			return
		}
		code := int32(st.ExitCode)
		c.status, c.exitCode, c.bindings = StatusStopped, &code, nil
		if st.OOMKilled {
			c.reason = ReasonOOM
		}
		m.version++
		m.essentialStopped(c)
	}
}

// essentialStopped stops the task when c, essential, stopped by itself.
func (m *taskMachine) essentialStopped(c *taskContainer) {
	if c.plan.Essential && m.desired == StatusRunning && m.stopCode == "" {
		m.stopCode, m.reason = ecs.TaskStopCodeEssentialContainerExited, ReasonEssentialExited
	}
}

// failTask stops the task before it ran: TaskFailedToStart.
func (m *taskMachine) failTask(reason string) {
	if m.stopCode == "" {
		m.stopCode, m.reason = ecs.TaskStopCodeTaskFailedToStart, reason
	}
	m.version++
}

func (m *taskMachine) setStatus(s string) {
	m.status = s
	m.version++
}

func (m *taskMachine) anyStarted() bool {
	for _, c := range m.containers {
		if c.started && c.status != StatusStopped {
			return true
		}
	}
	return false
}

// allStartedOrDone: every container started, or will never start.
func (m *taskMachine) allStartedOrDone() bool {
	for _, c := range m.containers {
		if !c.started && !c.neverStarts() {
			return false
		}
	}
	return true
}

func (m *taskMachine) first(f func(*taskContainer) bool) *taskContainer {
	for _, c := range m.containers {
		if f(c) {
			return c
		}
	}
	return nil
}

// imageSet is a set of image references, safe for concurrent use.
type imageSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func (s *imageSet) add(img string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]bool{}
	}
	s.m[img] = true
}

func (s *imageSet) has(img string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[img]
}
