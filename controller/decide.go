package controller

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"slices"
	"time"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/awsproto"
	"github.com/gantry-dev/gantry/state"
)

// Policy tunes the service controller's decisions.
type Policy struct {
	// CrashThreshold is how many crashes of the primary deployment's tasks
	// in a row start the backoff (default 3).
	CrashThreshold int
	// CrashBackoff is the first wait once the threshold is reached; it
	// doubles with every further crash up to CrashBackoffMax (defaults 1 s
	// and 5 min).
	CrashBackoff, CrashBackoffMax time.Duration
	// MinRuntime: a task that stops on its own within MinRuntime of
	// starting (or never starts) has crashed; one that stays healthy this
	// long ends a crash loop and resets a deployment's failedTasks
	// (default 10 s).
	MinRuntime time.Duration
}

func (p Policy) withDefaults() Policy {
	if p.CrashThreshold <= 0 {
		p.CrashThreshold = 3
	}
	if p.CrashBackoff <= 0 {
		p.CrashBackoff = time.Second
	}
	if p.CrashBackoffMax <= 0 {
		p.CrashBackoffMax = 5 * time.Minute
	}
	if p.MinRuntime <= 0 {
		p.MinRuntime = 10 * time.Second
	}
	return p
}

// backoff is the wait after the n-th crash in a row (n >= threshold).
func (p Policy) backoff(n int) time.Duration {
	d := p.CrashBackoff
	for i := p.CrashThreshold; i < n && d < p.CrashBackoffMax; i++ {
		d *= 2
	}
	return min(d, p.CrashBackoffMax)
}

// Input is what Decide looks at: one service as stored, its tasks that are
// not STOPPED, and its cluster's registered instances.
type Input struct {
	Service   *state.ServiceRecord
	Tasks     []Task
	Instances map[string]Instance // by instance ID
	Now       time.Time
}

// Task is a service task as Decide sees it.
type Task struct {
	ID            string
	Deployment    string // startedBy: the deployment that started it
	Instance      string // container instance ID
	LastStatus    string
	DesiredStatus string
	Health        ecs.HealthStatus // "" when the task has no container health checks
	CreatedAt     time.Time
	StartedAt     time.Time
}

// Instance is a container instance as Decide sees it.
type Instance struct {
	ID        string
	Zone      string // ecs.availability-zone
	Status    string // ACTIVE, DRAINING, ...
	Connected bool   // its agent heartbeats
	// Eligible (DAEMON services): the primary deployment's task may run
	// here: the instance passes placement's checks, leaving aside what the
	// service's own tasks hold.
	Eligible bool
}

// StopKind says why the controller stops a task.
type StopKind int

// Why tasks are stopped.
const (
	StopScale     StopKind = iota + 1 // a deployment, scale-in, a draining instance or service
	StopLost                          // its instance's agent stopped heartbeating
	StopUnhealthy                     // it failed its container health checks
)

// Stop is a task to stop and why; Reason is its stoppedReason.
type Stop struct {
	TaskID string
	Kind   StopKind
	Reason string
}

// Plan is what Decide decided.
type Plan struct {
	// Service is the record with the new status (deployments, events,
	// bookkeeping); write it (guarded by the revision read) when Changed,
	// before acting on the rest.
	Service *state.ServiceRecord
	Changed bool
	// Start tasks of StartDeployment: Start of them where placement
	// chooses (REPLICA), or one on each of StartOn (instance IDs, DAEMON).
	StartDeployment string
	Start           int
	StartOn         []string
	Stops           []Stop
	// Deactivate: the service is DRAINING and none of its tasks runs any
	// more: move it to INACTIVE.
	Deactivate bool
	// Wake: decide again after this long even if nothing changes (a
	// backoff or a grace period ends); 0 for no such need.
	Wake time.Duration
}

// Decide is the service controller's decision, a pure function of its
// input: which tasks to stop and start, and how the service's deployments
// and events change. It implements ECS's rolling update within
// minimumHealthyPercent and maximumPercent, DAEMON scheduling, the
// deployment circuit breaker and its rollback, crash-loop backoff,
// replacement of unhealthy tasks and of tasks on lost or draining
// instances, and scale-in from the most loaded zone and instance first.
func Decide(in *Input, pol Policy) *Plan {
	pol = pol.withDefaults()
	d := &decision{in: in, pol: pol, now: in.Now, plan: &Plan{Service: cloneRecord(in.Service)}}
	d.rec = d.plan.Service
	d.svc = &d.rec.Service
	if len(d.svc.Deployments) == 0 || d.svc.Status == ecs.ServiceStatusInactive {
		return d.plan
	}
	d.settings = d.svc.DeploymentConfiguration.Settings()
	d.daemon = d.svc.SchedulingStrategy == ecs.SchedulingStrategyDaemon
	d.draining = d.svc.Status == ecs.ServiceStatusDraining
	d.classify()
	d.resetFailures()
	if d.circuitBreaker() {
		return d.plan // the next pass acts on the new deployments
	}
	d.plan.StartDeployment = d.primary().ID
	if d.daemon {
		d.decideDaemon()
	} else {
		d.decideReplica()
	}
	d.bookkeeping()
	return d.plan
}

// decision is Decide's working state.
type decision struct {
	in       *Input
	pol      Policy
	now      time.Time
	plan     *Plan
	rec      *state.ServiceRecord
	svc      *ecs.Service
	settings ecs.DeploymentSettings
	daemon   bool
	draining bool

	live     []*Task // desired RUNNING on a connected instance
	stopping []*Task // desired STOPPED, not yet STOPPED, on a connected instance
	stopped  map[string]bool
}

func (d *decision) primary() *ecs.Deployment { return &d.svc.Deployments[0] }

// desired is the number of tasks the primary deployment should run.
func (d *decision) desired() int {
	if d.draining {
		return 0
	}
	return int(d.svc.DesiredCount)
}

// classify sorts the tasks: those on lost instances are stopped (their
// agent stops them if it comes back) and count for nothing; unhealthy ones
// past the grace period are stopped as failures.
func (d *decision) classify() {
	d.stopped = map[string]bool{}
	grace := time.Duration(0)
	if g := d.svc.HealthCheckGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	for i := range d.in.Tasks {
		t := &d.in.Tasks[i]
		inst, ok := d.in.Instances[t.Instance]
		if !ok || !inst.Connected {
			if t.DesiredStatus == ecs.TaskStatusRunning {
				d.stop(t, StopLost, ecs.StoppedReasonInstanceLost)
			}
			continue
		}
		if t.DesiredStatus != ecs.TaskStatusRunning {
			d.stopping = append(d.stopping, t)
			continue
		}
		if t.LastStatus == ecs.TaskStatusRunning && t.Health == ecs.HealthStatusUnhealthy {
			if until := t.StartedAt.Add(grace); d.now.Before(until) {
				d.wake(until.Sub(d.now))
			} else {
				d.stop(t, StopUnhealthy, ecs.StoppedReasonUnhealthy)
				d.event(ecs.EventTaskUnhealthy(d.svc.ServiceName, t.ID), false)
				d.stopping = append(d.stopping, t)
				continue
			}
		}
		d.live = append(d.live, t)
	}
}

// healthy: RUNNING, and HEALTHY when the task has container health checks.
func healthy(t *Task) bool {
	return t.LastStatus == ecs.TaskStatusRunning && (t.Health == "" || t.Health == ecs.HealthStatusHealthy)
}

func (d *decision) stop(t *Task, kind StopKind, reason string) {
	if d.stopped[t.ID] {
		return
	}
	d.stopped[t.ID] = true
	d.plan.Stops = append(d.plan.Stops, Stop{TaskID: t.ID, Kind: kind, Reason: reason})
}

func (d *decision) wake(after time.Duration) {
	if after <= 0 {
		after = time.Millisecond
	}
	if d.plan.Wake == 0 || after < d.plan.Wake {
		d.plan.Wake = after
	}
}

// removeLive drops stopped tasks from the live ones.
func (d *decision) removeLive(ts []*Task) {
	for _, t := range ts {
		d.stopping = append(d.stopping, t)
	}
	d.live = slices.DeleteFunc(d.live, func(t *Task) bool { return d.stopped[t.ID] })
}

// backingOff reports whether the crash-loop backoff forbids starting
// tasks now (and asks to be woken when it ends).
func (d *decision) backingOff() bool {
	until := d.rec.Controller.BackoffUntil
	if until.IsZero() || !d.now.Before(until) {
		return false
	}
	d.wake(until.Sub(d.now))
	return true
}

// canStart: the primary deployment may start tasks (a deployment the
// circuit breaker failed stops launching, as in ECS).
func (d *decision) canStart() bool {
	return !d.draining && d.primary().RolloutState != ecs.DeploymentRolloutStateFailed && !d.backingOff()
}

// decideReplica keeps desiredCount tasks of the primary deployment on
// ACTIVE instances: scale-in first (not bound by minimumHealthyPercent),
// then start what is missing within maximumPercent, then stop tasks of old
// deployments and on draining instances while minimumHealthyPercent
// allows.
func (d *decision) decideReplica() {
	want := d.desired()
	pid := d.primary().ID
	var current, replaceable []*Task
	for _, t := range d.live {
		if t.Deployment == pid && d.in.Instances[t.Instance].Status == ecs.InstanceStatusActive {
			current = append(current, t)
		} else {
			replaceable = append(replaceable, t)
		}
	}
	if extra := len(current) - want; extra > 0 {
		victims := d.scaleIn(current, extra)
		for _, t := range victims {
			d.stop(t, StopScale, ecs.StoppedReasonScaling(pid))
		}
		current = slices.DeleteFunc(current, func(t *Task) bool { return d.stopped[t.ID] })
		d.removeLive(victims)
	}
	need := want - len(current)
	if need > 0 && d.canStart() {
		room := d.settings.Maximum(want) - len(d.live) - len(d.stopping)
		d.plan.Start = max(min(need, room), 0)
	}
	d.replace(replaceable, want)
	if need > 0 && d.plan.Start == 0 && len(d.plan.Stops) == 0 && len(d.stopping) == 0 && d.canStart() {
		d.event(ecs.EventDeploymentBlocked(d.svc.ServiceName), true)
	}
}

// replace stops tasks of old deployments and tasks on instances that are
// not ACTIVE: those that are not healthy at once, healthy ones while at
// least minimumHealthyPercent of desired stay healthy. A failed primary
// deployment (no rollback) keeps the old tasks it could not replace.
func (d *decision) replace(replaceable []*Task, want int) {
	if len(replaceable) == 0 {
		return
	}
	h := 0
	for _, t := range d.live {
		if healthy(t) {
			h++
		}
	}
	canStop := h - d.settings.MinimumHealthy(want)
	if d.primary().RolloutState == ecs.DeploymentRolloutStateFailed && !d.draining {
		canStop = 0
	}
	order := d.stopOrder(replaceable)
	var victims []*Task
	for _, t := range order {
		switch {
		case !healthy(t):
			victims = append(victims, t)
		case canStop > 0:
			victims = append(victims, t)
			canStop--
		}
	}
	for _, t := range victims {
		d.stop(t, StopScale, ecs.StoppedReasonScaling(d.primary().ID))
	}
	d.removeLive(victims)
}

// stopOrder orders tasks to replace: older deployments first (the
// deployment list is newest first), then as scale-in takes them.
func (d *decision) stopOrder(ts []*Task) []*Task {
	rank := map[string]int{}
	for i, dep := range d.svc.Deployments {
		rank[dep.ID] = i
	}
	oldest := len(d.svc.Deployments) // tasks of deployments no longer listed go first
	key := func(t *Task) int {
		if r, ok := rank[t.Deployment]; ok {
			return -r
		}
		return -oldest
	}
	byDep := map[int][]*Task{}
	var keys []int
	for _, t := range ts {
		k := key(t)
		if _, ok := byDep[k]; !ok {
			keys = append(keys, k)
		}
		byDep[k] = append(byDep[k], t)
	}
	slices.Sort(keys)
	var out []*Task
	for _, k := range keys {
		out = append(out, d.scaleIn(byDep[k], len(byDep[k]))...)
	}
	return out
}

// bookkeeping updates the deployments after the task decisions: old
// deployments without tasks leave the list, the primary completes, and
// the steady state is announced.
func (d *decision) bookkeeping() {
	svc := d.svc
	byDep := map[string]int{}
	for _, t := range d.live {
		byDep[t.Deployment]++
	}
	for _, t := range d.stopping {
		byDep[t.Deployment]++
	}
	kept := svc.Deployments[:1]
	for _, dep := range svc.Deployments[1:] {
		if byDep[dep.ID] > 0 {
			kept = append(kept, dep)
		}
	}
	if len(kept) != len(svc.Deployments) {
		svc.Deployments = kept
		d.plan.Changed = true
	}
	p := d.primary()
	if int(p.DesiredCount) != d.desired() {
		p.DesiredCount = int32(d.desired())
		d.plan.Changed = true
	}
	settled := d.settled()
	if settled && p.RolloutState == ecs.DeploymentRolloutStateInProgress {
		p.RolloutState = ecs.DeploymentRolloutStateCompleted
		p.RolloutStateReason = ecs.DeploymentCompletedReason(p.ID)
		p.UpdatedAt = awsproto.Timestamp{Time: d.now}
		d.rec.Controller.LastCompleted = &state.CompletedDeployment{ID: p.ID, TaskDefinition: p.TaskDefinition}
		d.event(ecs.EventDeploymentCompleted(svc.ServiceName, p.ID), false)
	}
	steady := settled && p.RolloutState == ecs.DeploymentRolloutStateCompleted && !d.draining
	if steady != d.rec.Controller.Steady {
		d.rec.Controller.Steady = steady
		d.plan.Changed = true
		if steady {
			d.event(ecs.EventSteadyState(svc.ServiceName), false)
		}
	}
	if d.draining && len(d.live) == 0 && len(d.plan.Stops) == 0 {
		done := true
		for _, t := range d.stopping {
			if r, _ := ecs.TaskStatusRank(t.LastStatus); r < 4 { // before DEACTIVATING/STOPPING
				done = false
			}
		}
		d.plan.Deactivate = done
	}
	d.crashLoopReset()
}

// settled: one deployment, running exactly what it should, all healthy,
// nothing starting or stopping.
func (d *decision) settled() bool {
	if len(d.svc.Deployments) != 1 || d.plan.Start > 0 || len(d.plan.StartOn) > 0 || len(d.plan.Stops) > 0 || len(d.stopping) > 0 {
		return false
	}
	if len(d.live) != d.desired() {
		return false
	}
	for _, t := range d.live {
		if !healthy(t) || t.Deployment != d.primary().ID {
			return false
		}
	}
	return true
}

// crashLoopReset ends a crash loop once a task that started after the
// last crash has stayed healthy for MinRuntime.
func (d *decision) crashLoopReset() {
	c := &d.rec.Controller
	if c.CrashCount == 0 {
		return
	}
	for _, t := range d.live {
		if !healthy(t) || !t.StartedAt.After(c.LastCrashAt) {
			continue
		}
		if ok := t.StartedAt.Add(d.pol.MinRuntime); !d.now.Before(ok) {
			c.CrashCount, c.BackoffUntil = 0, time.Time{}
			d.plan.Changed = true
			return
		} else {
			d.wake(ok.Sub(d.now))
		}
	}
}

// resetFailures resets a deployment's failedTasks ("a task that reaches
// a healthy state resets the failure count") once a task of it that
// started after its last failure has been healthy for MinRuntime.
func (d *decision) resetFailures() {
	for i := range d.svc.Deployments {
		dep := &d.svc.Deployments[i]
		if dep.FailedTasks == 0 {
			continue
		}
		last := d.rec.Controller.LastFailureAt[dep.ID]
		for _, t := range d.live {
			if t.Deployment != dep.ID || !healthy(t) || !t.StartedAt.After(last) {
				continue
			}
			if ok := t.StartedAt.Add(d.pol.MinRuntime); d.now.Before(ok) {
				d.wake(ok.Sub(d.now))
				continue
			}
			dep.FailedTasks = 0
			d.plan.Changed = true
			break
		}
	}
}

// circuitBreaker fails the primary deployment once failedTasks reaches
// the threshold and, with rollback, makes the last completed deployment
// primary again. It reports whether the deployments changed that way.
func (d *decision) circuitBreaker() bool {
	p := d.primary()
	if !d.settings.CircuitBreaker || p.RolloutState != ecs.DeploymentRolloutStateInProgress || d.draining {
		return false
	}
	want := d.desired()
	if d.daemon {
		want = 0
		for _, inst := range d.in.Instances {
			if inst.Eligible {
				want++
			}
		}
	}
	if int(p.FailedTasks) < ecs.CircuitBreakerThreshold(want) {
		return false
	}
	name := d.svc.ServiceName
	p.RolloutState = ecs.DeploymentRolloutStateFailed
	p.RolloutStateReason = ecs.DeploymentFailedReason
	p.UpdatedAt = awsproto.Timestamp{Time: d.now}
	d.event(ecs.EventDeploymentFailed(name, p.ID), false)
	d.rec.Controller.Steady = false
	d.plan.Changed = true
	last := d.rec.Controller.LastCompleted
	if !d.settings.Rollback || last == nil || last.ID == p.ID {
		return true
	}
	failed := *p
	failed.Status = ecs.DeploymentStatusActive
	rest := []ecs.Deployment{failed}
	var back *ecs.Deployment
	for _, dep := range d.svc.Deployments[1:] {
		if dep.ID == last.ID {
			b := dep
			back = &b
			continue
		}
		rest = append(rest, dep)
	}
	if back == nil {
		back = &ecs.Deployment{
			ID:             last.ID,
			TaskDefinition: last.TaskDefinition,
			CreatedAt:      awsproto.Timestamp{Time: d.now},
			LaunchType:     ecs.LaunchTypeEC2,
		}
	}
	back.Status = ecs.DeploymentStatusPrimary
	back.DesiredCount = d.svc.DesiredCount
	back.RolloutState = ecs.DeploymentRolloutStateInProgress
	back.RolloutStateReason = ecs.DeploymentRollbackReason(failed.ID)
	back.FailedTasks = 0
	back.UpdatedAt = awsproto.Timestamp{Time: d.now}
	d.svc.Deployments = append([]ecs.Deployment{*back}, rest...)
	d.svc.TaskDefinition = back.TaskDefinition
	d.rec.Controller.CrashCount, d.rec.Controller.BackoffUntil = 0, time.Time{}
	d.event(ecs.EventRollingBack(name, back.ID), false)
	return true
}

// event adds a message to the service's events, newest first, keeping
// MaxServiceEvents. With dedupe, a message already among the events of
// the last six hours is not repeated (ECS omits duplicates "until either
// the cause is resolved or six hours passes").
func (d *decision) event(msg string, dedupe bool) {
	if AddEvent(d.svc, msg, d.now, dedupe) {
		d.plan.Changed = true
	}
}

// AddEvent adds a service event (see decision.event) and reports whether
// it did.
func AddEvent(svc *ecs.Service, msg string, now time.Time, dedupe bool) bool {
	if dedupe {
		for _, e := range svc.Events {
			if now.Sub(e.CreatedAt.Time) > 6*time.Hour {
				break
			}
			if e.Message == msg {
				return false
			}
		}
	}
	e := ecs.ServiceEvent{ID: newUUID(), CreatedAt: awsproto.Timestamp{Time: now}, Message: msg}
	svc.Events = append([]ecs.ServiceEvent{e}, svc.Events...)
	if len(svc.Events) > ecs.MaxServiceEvents {
		svc.Events = svc.Events[:ecs.MaxServiceEvents]
	}
	return true
}

// newUUID is a random RFC 4122 version 4 UUID, the form of ECS's event IDs.
// (Randomness here names an event; it never changes a decision.)
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// cloneRecord deep-copies a service record, so Decide never writes to its
// input.
func cloneRecord(r *state.ServiceRecord) *state.ServiceRecord {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // a record that was decoded always encodes
	}
	out := new(state.ServiceRecord)
	if err := json.Unmarshal(b, out); err != nil {
		panic(err)
	}
	return out
}
