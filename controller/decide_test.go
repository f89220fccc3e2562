package controller

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/awsproto"
	"github.com/gantry-dev/gantry/state"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

// svc builds a service record: desired tasks, deployments newest first
// given as "id:rolloutState" (the first is PRIMARY), min/max percent.
func svc(desired int32, minPct, maxPct int32, deps ...string) *state.ServiceRecord {
	r := &state.ServiceRecord{Service: ecs.Service{
		ServiceName: "web", ServiceARN: "arn:aws:ecs:us-east-1:1:service/c/web", Status: ecs.ServiceStatusActive,
		DesiredCount: desired, SchedulingStrategy: ecs.SchedulingStrategyReplica,
		DeploymentConfiguration: &ecs.DeploymentConfiguration{MinimumHealthyPercent: &minPct, MaximumPercent: &maxPct,
			DeploymentCircuitBreaker: &ecs.DeploymentCircuitBreaker{}},
	}}
	for i, d := range deps {
		id, st, _ := strings.Cut(d, ":")
		status := ecs.DeploymentStatusPrimary
		if i > 0 {
			status = ecs.DeploymentStatusActive
		}
		r.Deployments = append(r.Deployments, ecs.Deployment{ID: id, Status: status, TaskDefinition: "td-" + id,
			DesiredCount: desired, RolloutState: ecs.DeploymentRolloutState(st)})
	}
	return r
}

// tk is a task "id@instance/deployment/state", state one of run (RUNNING),
// pend (PENDING), stop (RUNNING, desired STOPPED), sick (RUNNING,
// UNHEALTHY), unk (RUNNING, health UNKNOWN).
func tk(spec string) Task {
	id, rest, _ := strings.Cut(spec, "@")
	parts := strings.Split(rest, "/")
	t := Task{ID: id, Instance: parts[0], Deployment: parts[1], DesiredStatus: ecs.TaskStatusRunning, LastStatus: ecs.TaskStatusRunning,
		CreatedAt: t0.Add(-time.Hour), StartedAt: t0.Add(-time.Hour)}
	switch parts[2] {
	case "pend":
		t.LastStatus, t.StartedAt = ecs.TaskStatusPending, time.Time{}
	case "stop":
		t.DesiredStatus = ecs.TaskStatusStopped
	case "sick":
		t.Health = ecs.HealthStatusUnhealthy
	case "unk":
		t.Health = ecs.HealthStatusUnknown
	}
	return t
}

func tasks(specs ...string) []Task {
	var out []Task
	for _, s := range specs {
		out = append(out, tk(s))
	}
	return out
}

// insts builds instances "id:zone[:status][:down]".
func insts(specs ...string) map[string]Instance {
	out := map[string]Instance{}
	for _, s := range specs {
		p := strings.Split(s, ":")
		in := Instance{ID: p[0], Zone: p[1], Status: ecs.InstanceStatusActive, Connected: true, Eligible: true}
		for _, f := range p[2:] {
			switch f {
			case "down":
				in.Connected, in.Eligible = false, false
			case "draining":
				in.Status, in.Eligible = ecs.InstanceStatusDraining, false
			case "ineligible":
				in.Eligible = false
			}
		}
		out[p[0]] = in
	}
	return out
}

func stopIDs(p *Plan) []string {
	var out []string
	for _, s := range p.Stops {
		out = append(out, s.TaskID)
	}
	slices.Sort(out)
	return out
}

func depIDs(r *state.ServiceRecord) string {
	var out []string
	for _, d := range r.Deployments {
		out = append(out, d.ID+":"+string(d.RolloutState))
	}
	return strings.Join(out, ",")
}

func TestDecideReplica(t *testing.T) {
	three := insts("i1:a", "i2:b", "i3:c")
	cases := []struct {
		name      string
		svc       *state.ServiceRecord
		tasks     []Task
		instances map[string]Instance
		start     int
		stops     []string
		deps      string // deployments after, "" for unchanged
		event     string // an event Decide adds
	}{
		{name: "CreateStartsAll", svc: svc(3, 100, 200, "d1:IN_PROGRESS"), instances: three, start: 3},
		{name: "ReplaceStopped", svc: svc(3, 100, 200, "d1:COMPLETED"), tasks: tasks("t1@i1/d1/run", "t2@i2/d1/run"), instances: three, start: 1},
		{name: "SteadyNothingToDo", svc: svc(2, 100, 200, "d1:COMPLETED"), tasks: tasks("t1@i1/d1/run", "t2@i2/d1/run"), instances: three,
			event: "(service web) has reached a steady state."},
		{name: "CompletesWhenAllRun", svc: svc(2, 100, 200, "d1:IN_PROGRESS"), tasks: tasks("t1@i1/d1/run", "t2@i2/d1/run"), instances: three,
			deps: "d1:COMPLETED", event: "(service web) (deployment d1) deployment completed."},
		{name: "PendingIsNotDone", svc: svc(2, 100, 200, "d1:IN_PROGRESS"), tasks: tasks("t1@i1/d1/run", "t2@i2/d1/pend"), instances: three},
		{name: "ScaleInMostLoadedZoneFirst", svc: svc(2, 100, 200, "d1:COMPLETED"),
			tasks: tasks("t1@i1/d1/run", "t2@i1/d1/run", "t3@i2/d1/run", "t4@i3/d1/run"), instances: insts("i1:a", "i2:a", "i3:b"),
			// zone a has 3 (i1 2, i2 1), b has 1: both go from zone a, the first from i1.
			stops: []string{"t1", "t2"}},
		{name: "ScaleInPendingFirst", svc: svc(2, 100, 200, "d1:COMPLETED"),
			tasks: tasks("t1@i1/d1/run", "t2@i2/d1/run", "t3@i3/d1/pend"), instances: three, stops: []string{"t3"}},
		{name: "RollingStartsNewFirst", svc: svc(2, 100, 200, "d2:IN_PROGRESS", "d1:COMPLETED"),
			tasks: tasks("t1@i1/d1/run", "t2@i2/d1/run"), instances: three, start: 2},
		{name: "RollingWaitsForNewToRun", svc: svc(2, 100, 200, "d2:IN_PROGRESS", "d1:COMPLETED"),
			tasks: tasks("t1@i1/d1/run", "t2@i2/d1/run", "n1@i3/d2/pend", "n2@i1/d2/pend"), instances: three},
		{name: "RollingStopsOldOnceNewRun", svc: svc(2, 100, 200, "d2:IN_PROGRESS", "d1:COMPLETED"),
			tasks: tasks("t1@i1/d1/run", "t2@i2/d1/run", "n1@i3/d2/run", "n2@i1/d2/pend"), instances: three,
			stops: []string{"t1"}}, // 3 healthy, 2 must stay: one old goes
		{name: "OldDeploymentStaysWhileItsTasksStop", svc: svc(2, 100, 200, "d2:IN_PROGRESS", "d1:COMPLETED"),
			tasks: tasks("t1@i1/d1/stop", "n1@i3/d2/run", "n2@i1/d2/run"), instances: three},
		{name: "OldDeploymentLeavesWhenStopped", svc: svc(2, 100, 200, "d2:IN_PROGRESS", "d1:COMPLETED"),
			tasks: tasks("n1@i3/d2/run", "n2@i1/d2/run"), instances: three, deps: "d2:COMPLETED"},
		{name: "HalfHealthyStopsFirst", svc: svc(4, 50, 100, "d2:IN_PROGRESS", "d1:COMPLETED"),
			tasks: tasks("t1@i1/d1/run", "t2@i2/d1/run", "t3@i3/d1/run", "t4@i1/d1/run"), instances: three,
			stops: []string{"t1", "t4"}}, // no room to start; 2 of 4 may stop (i1 is the most loaded)
		{name: "MaximumCountsStoppingTasks", svc: svc(4, 50, 100, "d2:IN_PROGRESS", "d1:COMPLETED"),
			tasks: tasks("t1@i1/d1/stop", "t2@i2/d1/run", "t3@i3/d1/run", "t4@i1/d1/stop"), instances: three},
		{name: "LostInstanceTasksReplaced", svc: svc(2, 100, 200, "d1:COMPLETED"),
			tasks: tasks("t1@i1/d1/run", "t2@i2/d1/run"), instances: insts("i1:a:down", "i2:b", "i3:c"), start: 1, stops: []string{"t1"}},
		{name: "LostCopiesCountForNothing", svc: svc(2, 100, 200, "d1:COMPLETED"),
			tasks: tasks("t1@i1/d1/stop", "t2@i2/d1/run", "t3@i3/d1/run"), instances: insts("i1:a:down", "i2:b", "i3:c"),
			event: "has reached a steady state."},
		{name: "DrainingInstanceStartsFirst", svc: svc(2, 100, 200, "d1:COMPLETED"),
			tasks: tasks("t1@i1/d1/run", "t2@i2/d1/run"), instances: insts("i1:a:draining", "i2:b", "i3:c"), start: 1},
		{name: "DrainingInstanceStopsOnceReplaced", svc: svc(2, 100, 200, "d1:COMPLETED"),
			tasks: tasks("t1@i1/d1/run", "t2@i2/d1/run", "t3@i3/d1/run"), instances: insts("i1:a:draining", "i2:b", "i3:c"), stops: []string{"t1"}},
		{name: "UnhealthyStoppedAndReplaced", svc: svc(2, 100, 200, "d1:COMPLETED"),
			tasks: tasks("t1@i1/d1/sick", "t2@i2/d1/run"), instances: three, start: 1, stops: []string{"t1"},
			event: "(service web) (task t1) failed container health checks."},
		{name: "UnknownHealthIsNotHealthy", svc: svc(2, 100, 200, "d1:IN_PROGRESS"),
			tasks: tasks("t1@i1/d1/unk", "t2@i2/d1/run"), instances: three},
		{name: "FailedDeploymentStopsLaunching", svc: svc(2, 100, 200, "d2:FAILED", "d1:COMPLETED"),
			tasks: tasks("t1@i1/d1/run", "t2@i2/d1/run"), instances: three},
		{name: "DeploymentBlocked", svc: svc(2, 100, 100, "d2:IN_PROGRESS", "d1:COMPLETED"),
			tasks: tasks("t1@i1/d1/run", "t2@i2/d1/run"), instances: three, event: "because of the service deployment configuration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := depIDs(tc.svc)
			p := Decide(&Input{Service: tc.svc, Tasks: tc.tasks, Instances: tc.instances, Now: t0}, Policy{})
			if p.Start != tc.start {
				t.Errorf("start %d, want %d", p.Start, tc.start)
			}
			if got := stopIDs(p); !slices.Equal(got, tc.stops) {
				t.Errorf("stops %v, want %v", got, tc.stops)
			}
			want := tc.deps
			if want == "" {
				want = before
			}
			if got := depIDs(p.Service); got != want {
				t.Errorf("deployments %s, want %s", got, want)
			}
			if tc.event != "" && !slices.ContainsFunc(p.Service.Events, func(e ecs.ServiceEvent) bool { return strings.Contains(e.Message, tc.event) }) {
				t.Errorf("no event %q in %v", tc.event, p.Service.Events)
			}
			if depIDs(tc.svc) != before {
				t.Error("Decide changed its input")
			}
		})
	}
}

func TestDecideCircuitBreaker(t *testing.T) {
	mk := func(rollback bool, failed int32, completed *state.CompletedDeployment) *state.ServiceRecord {
		r := svc(2, 100, 200, "d2:IN_PROGRESS", "d1:COMPLETED")
		r.DeploymentConfiguration.DeploymentCircuitBreaker = &ecs.DeploymentCircuitBreaker{Enable: true, Rollback: rollback}
		r.Deployments[0].FailedTasks = failed
		r.TaskDefinition = "td-d2"
		r.Controller.LastCompleted = completed
		return r
	}
	last := &state.CompletedDeployment{ID: "d1", TaskDefinition: "td-d1"}
	ts := tasks("t1@i1/d1/run", "t2@i2/d1/run")
	cases := []struct {
		name  string
		svc   *state.ServiceRecord
		deps  string
		td    string
		start int
	}{
		{"BelowThreshold", mk(true, 2, last), "d2:IN_PROGRESS,d1:COMPLETED", "td-d2", 2},
		{"FailsWithoutRollback", mk(false, 3, last), "d2:FAILED,d1:COMPLETED", "td-d2", 0},
		{"RollsBackToTheListedDeployment", mk(true, 3, last), "d1:IN_PROGRESS,d2:FAILED", "td-d1", 0},
		{"RollsBackToAGoneDeployment", mk(true, 3, &state.CompletedDeployment{ID: "d0", TaskDefinition: "td-d0"}), "d0:IN_PROGRESS,d2:FAILED,d1:COMPLETED", "td-d0", 0},
		{"NothingToRollBackTo", mk(true, 3, nil), "d2:FAILED,d1:COMPLETED", "td-d2", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Decide(&Input{Service: tc.svc, Tasks: ts, Instances: insts("i1:a", "i2:b"), Now: t0}, Policy{})
			if got := depIDs(p.Service); got != tc.deps {
				t.Errorf("deployments %s, want %s", got, tc.deps)
			}
			if p.Service.TaskDefinition != tc.td || p.Start != tc.start {
				t.Errorf("taskDefinition %s start %d, want %s %d", p.Service.TaskDefinition, p.Start, tc.td, tc.start)
			}
			if p.Service.Deployments[0].Status != ecs.DeploymentStatusPrimary || (len(p.Service.Deployments) > 1 && p.Service.Deployments[1].Status != ecs.DeploymentStatusActive) {
				t.Errorf("statuses %+v", p.Service.Deployments)
			}
		})
	}
	if got := []int{ecs.CircuitBreakerThreshold(1), ecs.CircuitBreakerThreshold(10), ecs.CircuitBreakerThreshold(11), ecs.CircuitBreakerThreshold(1000)}; !slices.Equal(got, []int{3, 5, 6, 200}) {
		t.Errorf("thresholds %v", got)
	}
}

func TestDecideDaemon(t *testing.T) {
	mk := func(deps ...string) *state.ServiceRecord {
		r := svc(0, 0, 100, deps...)
		r.SchedulingStrategy = ecs.SchedulingStrategyDaemon
		return r
	}
	cases := []struct {
		name      string
		svc       *state.ServiceRecord
		tasks     []Task
		instances map[string]Instance
		startOn   []string
		stops     []string
		desired   int32
	}{
		{"OnePerInstance", mk("d1:IN_PROGRESS"), nil, insts("i1:a", "i2:b"), []string{"i1", "i2"}, nil, 2},
		{"NewInstance", mk("d1:COMPLETED"), tasks("t1@i1/d1/run"), insts("i1:a", "i2:b"), []string{"i2"}, nil, 2},
		{"NotOnIneligible", mk("d1:COMPLETED"), tasks("t1@i1/d1/run"), insts("i1:a", "i2:b:ineligible"), nil, nil, 1},
		{"DrainingInstanceStopped", mk("d1:COMPLETED"), tasks("t1@i1/d1/run", "t2@i2/d1/run"), insts("i1:a", "i2:b:draining"), nil, []string{"t2"}, 1},
		{"DuplicateStopped", mk("d1:COMPLETED"), tasks("t1@i1/d1/run", "t2@i1/d1/pend"), insts("i1:a"), nil, []string{"t2"}, 1},
		{"DeploymentStopsOldFirst", mk("d2:IN_PROGRESS", "d1:COMPLETED"), tasks("t1@i1/d1/run", "t2@i2/d1/run"), insts("i1:a", "i2:b"), nil, []string{"t1", "t2"}, 2},
		{"DeploymentStartsWhenOldGone", mk("d2:IN_PROGRESS", "d1:COMPLETED"), tasks("t1@i1/d1/stop"), insts("i1:a", "i2:b"), []string{"i2"}, nil, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Decide(&Input{Service: tc.svc, Tasks: tc.tasks, Instances: tc.instances, Now: t0}, Policy{})
			if !slices.Equal(p.StartOn, tc.startOn) {
				t.Errorf("startOn %v, want %v", p.StartOn, tc.startOn)
			}
			if got := stopIDs(p); !slices.Equal(got, tc.stops) {
				t.Errorf("stops %v, want %v", got, tc.stops)
			}
			if p.Service.DesiredCount != tc.desired {
				t.Errorf("desiredCount %d, want %d", p.Service.DesiredCount, tc.desired)
			}
		})
	}
}

func TestDecideDraining(t *testing.T) {
	r := svc(0, 100, 200, "d1:COMPLETED")
	r.Status = ecs.ServiceStatusDraining
	p := Decide(&Input{Service: r, Tasks: tasks("t1@i1/d1/run", "t2@i2/d1/pend"), Instances: insts("i1:a", "i2:b"), Now: t0}, Policy{})
	if got := stopIDs(p); !slices.Equal(got, []string{"t1", "t2"}) || p.Deactivate || p.Start != 0 {
		t.Errorf("stops %v deactivate %v start %d", got, p.Deactivate, p.Start)
	}
	stopping := tasks("t1@i1/d1/stop")
	stopping[0].LastStatus = ecs.TaskStatusStopping
	p = Decide(&Input{Service: r, Tasks: stopping, Instances: insts("i1:a"), Now: t0}, Policy{})
	if !p.Deactivate {
		t.Error("a DRAINING service whose tasks are all STOPPING should go INACTIVE")
	}
	p = Decide(&Input{Service: r, Tasks: tasks("t1@i1/d1/stop"), Instances: insts("i1:a"), Now: t0}, Policy{})
	if p.Deactivate {
		t.Error("a DRAINING service with a task still RUNNING went INACTIVE")
	}
}

func TestDecideGracePeriod(t *testing.T) {
	r := svc(1, 100, 200, "d1:COMPLETED")
	r.HealthCheckGracePeriodSeconds = new(int32)
	*r.HealthCheckGracePeriodSeconds = 60
	sick := tasks("t1@i1/d1/sick")
	sick[0].StartedAt = t0.Add(-10 * time.Second)
	p := Decide(&Input{Service: r, Tasks: sick, Instances: insts("i1:a"), Now: t0}, Policy{})
	if len(p.Stops) != 0 || p.Wake != 50*time.Second {
		t.Errorf("within the grace period: stops %v wake %v, want none and 50s", p.Stops, p.Wake)
	}
	p = Decide(&Input{Service: r, Tasks: sick, Instances: insts("i1:a"), Now: t0.Add(51 * time.Second)}, Policy{})
	if len(p.Stops) != 1 || p.Stops[0].Kind != StopUnhealthy {
		t.Errorf("after the grace period: stops %v", p.Stops)
	}
}

func TestCrashLoop(t *testing.T) {
	pol := Policy{}.withDefaults()
	r := svc(1, 100, 200, "d1:COMPLETED")
	now := t0
	crash := func(rev int64, ran time.Duration) *ecs.Task {
		start := now.Add(-ran)
		return &ecs.Task{StartedBy: "d1", StopCode: ecs.TaskStopCodeEssentialContainerExited,
			StartedAt: awsproto.Timestamp{Time: start}, StoppedAt: awsproto.Timestamp{Time: now}}
	}
	var waits []time.Duration
	for i := int64(1); i <= 6; i++ {
		if !AccountStop(r, crash(i, time.Second), i, now, pol) {
			t.Fatalf("stop %d not accounted", i)
		}
		waits = append(waits, r.Controller.BackoffUntil.Sub(now))
	}
	if !r.Controller.BackoffUntil.After(now) || fmt.Sprint(waits[2:]) != "[1s 2s 4s 8s]" || waits[0] > 0 || waits[1] > 0 {
		t.Errorf("backoffs %v, want none for two crashes, then 1s 2s 4s 8s", waits)
	}
	if r.Deployments[0].FailedTasks != 6 {
		t.Errorf("failedTasks %d, want 6", r.Deployments[0].FailedTasks)
	}
	if AccountStop(r, crash(3, time.Second), 3, now, pol) {
		t.Error("a replayed stop was counted again")
	}
	// While backing off nothing starts; the plan wakes when it ends.
	p := Decide(&Input{Service: r, Instances: insts("i1:a"), Now: now}, pol)
	if p.Start != 0 || p.Wake != 8*time.Second {
		t.Errorf("in backoff: start %d wake %v", p.Start, p.Wake)
	}
	p = Decide(&Input{Service: r, Instances: insts("i1:a"), Now: now.Add(9 * time.Second)}, pol)
	if p.Start != 1 {
		t.Errorf("after backoff: start %d", p.Start)
	}
	// A task that ran long enough before failing ends the loop; so does
	// one that stays healthy for MinRuntime.
	AccountStop(r, crash(7, time.Minute), 7, now, pol)
	if r.Controller.CrashCount != 0 || !r.Controller.BackoffUntil.IsZero() {
		t.Errorf("crash loop not reset: %+v", r.Controller)
	}
	// A stop the scheduler or a user asked for is no failure.
	before := r.Deployments[0].FailedTasks
	AccountStop(r, &ecs.Task{StartedBy: "d1", StopCode: ecs.TaskStopCodeUserInitiated}, 8, now, pol)
	AccountStop(r, &ecs.Task{StartedBy: "d1", StopCode: ecs.TaskStopCodeServiceSchedulerInitiated, StoppedReason: ecs.StoppedReasonScaling("d1")}, 9, now, pol)
	if r.Deployments[0].FailedTasks != before {
		t.Error("user or scaling stops counted as failures")
	}
	AccountStop(r, &ecs.Task{StartedBy: "d1", StopCode: ecs.TaskStopCodeServiceSchedulerInitiated, StoppedReason: ecs.StoppedReasonUnhealthy}, 10, now, pol)
	if r.Deployments[0].FailedTasks != before+1 {
		t.Error("a task stopped for failing its health checks is a failure")
	}
	// failedTasks resets once a task started after the failure stays
	// healthy for MinRuntime.
	healthy := tasks("t1@i1/d1/run")
	healthy[0].StartedAt = now.Add(time.Second)
	p = Decide(&Input{Service: r, Tasks: healthy, Instances: insts("i1:a"), Now: now.Add(5 * time.Second)}, pol)
	if p.Service.Deployments[0].FailedTasks == 0 {
		t.Error("failedTasks reset before MinRuntime")
	}
	p = Decide(&Input{Service: r, Tasks: healthy, Instances: insts("i1:a"), Now: now.Add(12 * time.Second)}, pol)
	if p.Service.Deployments[0].FailedTasks != 0 {
		t.Errorf("failedTasks %d after a healthy task, want 0", p.Service.Deployments[0].FailedTasks)
	}
}

func TestEventsNewestFirstAndCapped(t *testing.T) {
	s := &ecs.Service{}
	for i := range 150 {
		AddEvent(s, fmt.Sprint(i), t0.Add(time.Duration(i)*time.Second), false)
	}
	if len(s.Events) != ecs.MaxServiceEvents || s.Events[0].Message != "149" || s.Events[99].Message != "50" {
		t.Errorf("%d events, first %q last %q", len(s.Events), s.Events[0].Message, s.Events[len(s.Events)-1].Message)
	}
	if AddEvent(s, "120", t0.Add(200*time.Second), true) {
		t.Error("a duplicate within six hours was added")
	}
	if !AddEvent(s, "120", t0.Add(7*time.Hour), true) {
		t.Error("a duplicate after six hours was not added")
	}
}

func TestQueue(t *testing.T) {
	q := newQueue()
	q.Add("a")
	q.Add("b")
	q.Add("a")
	k, _ := q.Get()
	q.Add(k) // while processing: handed out again after Done
	k2, _ := q.Get()
	if k != "a" || k2 != "b" {
		t.Fatalf("got %s %s", k, k2)
	}
	q.Done(k2)
	q.Done(k)
	k3, _ := q.Get()
	if k3 != "a" {
		t.Fatalf("requeued %s", k3)
	}
	q.Close()
	if _, ok := q.Get(); ok {
		t.Error("Get after Close")
	}
}
