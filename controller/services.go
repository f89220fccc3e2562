package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/scheduler"
	"github.com/gantry-dev/gantry/state"
)

// Placer places a service's new tasks: the same placement RunTask does
// (the scheduler, then a revision-guarded transaction per task), with the
// service's group, startedBy, constraints and strategies. ecsapi.API is
// the implementation.
type Placer interface {
	// PlaceServiceTasks places p.Count tasks where the scheduler chooses,
	// or one on each of p.Instances. It returns the tasks placed and, when
	// some could not be, each instance's reason (none when the cluster has
	// no instances); err is for the store failing, not for a task that
	// fits nowhere.
	PlaceServiceTasks(ctx context.Context, p *Placement) (placed []*state.TaskRecord, failures []ecs.Failure, err error)
}

// Placement is a request to start tasks of a service's deployment.
type Placement struct {
	Cluster        string
	Service        *ecs.Service
	TaskDefinition *ecs.TaskDefinitionRecord
	StartedBy      string   // the deployment ID
	Count          int      // REPLICA: how many
	Instances      []string // DAEMON: one task on each of these container instance ARNs
}

// Config holds the service controller's dependencies.
type Config struct {
	Store  *state.Store
	Placer Placer
	Scope  ecs.Scope
	Policy Policy
	Logger *slog.Logger
	Now    func() time.Time // default time.Now
	// Resync looks at every service this often even when nothing changed
	// (default 10 s): a safety net; changes are seen at once.
	Resync time.Duration
	// Workers reconcile different services in parallel (default 4).
	Workers int
}

// Services is the service controller: New, then Run on the leader.
type Services struct {
	cfg Config
	log *slog.Logger

	mu  sync.Mutex
	tds map[string]*ecs.TaskDefinitionRecord // by ARN: revisions never change
}

// New returns a service controller.
func New(cfg Config) *Services {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 10 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	cfg.Policy = cfg.Policy.withDefaults()
	return &Services{cfg: cfg, log: cfg.Logger.With("controller", "services"), tds: map[string]*ecs.TaskDefinitionRecord{}}
}

// Run reconciles services until ctx ends: every service at start and
// every Resync, and each service as soon as the store says something that
// concerns it changed (the service, its tasks, its cluster's instances).
// It returns nil when ctx ends.
func (s *Services) Run(ctx context.Context) error {
	q := newQueue()
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.work(ctx, q)
		}()
	}
	defer func() {
		q.Close()
		wg.Wait()
	}()
	for ctx.Err() == nil {
		err := s.watch(ctx, q)
		if ctx.Err() != nil {
			break
		}
		s.log.Warn("service controller: watch ended; starting again", "err", err)
		sleep(ctx, time.Second)
	}
	return nil
}

// watch follows the store from the watermark on (stopped tasks that
// happened while no leader watched are still accounted for).
func (s *Services) watch(ctx context.Context, q *queue) error {
	mark, cur, err := s.cfg.Store.ControllerWatermark(ctx)
	if err != nil {
		return err
	}
	from := mark + 1
	if mark == 0 || mark > cur {
		from = cur + 1
	}
	s.enqueueAll(ctx, q, "")
	ch := s.cfg.Store.WatchServiceChanges(ctx, from)
	tick := time.NewTicker(s.cfg.Resync)
	defer tick.Stop()
	var lastMark time.Time
	var seen int64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			s.enqueueAll(ctx, q, "")
		case b, ok := <-ch:
			if !ok {
				return errors.New("watch closed")
			}
			if b.Err != nil {
				if errors.Is(b.Err, state.ErrCompacted) {
					s.cfg.Store.SetControllerWatermark(ctx, cur)
				}
				return b.Err
			}
			clusters := map[string]bool{}
			for _, c := range b.Changes {
				seen = max(seen, c.Rev)
				switch c.Kind {
				case state.ServiceChanged, state.ServiceTaskChanged:
					q.Add(c.Cluster + "/" + c.Service)
				case state.ServiceTaskStopped:
					s.accountStop(ctx, c)
					q.Add(c.Cluster + "/" + c.Service)
				case state.InstancesChanged:
					clusters[c.Cluster] = true
				}
			}
			for cl := range clusters {
				s.enqueueAll(ctx, q, cl)
			}
			if seen > 0 && time.Since(lastMark) > time.Second {
				if err := s.cfg.Store.SetControllerWatermark(ctx, seen); err == nil {
					lastMark = time.Now()
				}
			}
		}
	}
}

func (s *Services) enqueueAll(ctx context.Context, q *queue, cluster string) {
	keys, _, err := s.cfg.Store.ServiceKeys(ctx, cluster)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("service controller: list services", "err", err)
		}
		return
	}
	for _, k := range keys {
		q.Add(k.Cluster + "/" + k.Name)
	}
}

var errUnchanged = errors.New("unchanged")

// accountStop records a stopped task's failure in its service.
func (s *Services) accountStop(ctx context.Context, c state.Change) {
	now := s.cfg.Now()
	_, err := s.cfg.Store.UpdateService(ctx, c.Cluster, c.Service, func(rec *state.ServiceRecord) error {
		if !AccountStop(rec, &c.Task.Task, c.Rev, now, s.cfg.Policy) {
			return errUnchanged
		}
		return nil
	})
	if err != nil && !errors.Is(err, errUnchanged) && !errors.Is(err, state.ErrNotFound) && ctx.Err() == nil {
		s.log.Warn("service controller: account for a stopped task", "service", c.Service, "task", c.Task.TaskARN, "err", err)
	}
}

func (s *Services) work(ctx context.Context, q *queue) {
	for {
		key, ok := q.Get()
		if !ok {
			return
		}
		again, wake, err := s.reconcile(ctx, key)
		q.Done(key)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			s.log.Warn("service controller: reconcile", "service", key, "err", err)
			q.AddAfter(key, time.Second)
		case again:
			q.Add(key)
		case wake > 0:
			q.AddAfter(key, wake)
		}
	}
}

// reconcile reads one service and what it depends on, decides, writes the
// decision's status (guarded by the revision read: a concurrent change
// makes it decide again) and acts on it.
func (s *Services) reconcile(ctx context.Context, key string) (again bool, wake time.Duration, err error) {
	cluster, name, _ := strings.Cut(key, "/")
	st := s.cfg.Store
	rec, rev, err := st.GetService(ctx, cluster, name)
	if errors.Is(err, state.ErrNotFound) || (err == nil && rev == 0) {
		return false, 0, nil // gone, or INACTIVE
	}
	if err != nil {
		return false, 0, err
	}
	snap, err := st.SnapshotInstances(ctx, cluster)
	if err != nil {
		return false, 0, err
	}
	tasks, err := st.ServiceTaskSummaries(ctx, cluster, name)
	if err != nil {
		return false, 0, err
	}
	now := s.cfg.Now()
	in := &Input{Service: rec, Now: now, Instances: map[string]Instance{}}
	byID := map[string]*state.ServiceTask{}
	for _, t := range tasks {
		byID[t.ID()] = t
		in.Tasks = append(in.Tasks, Task{
			ID: t.ID(), Deployment: t.StartedBy, Instance: t.InstanceID(),
			LastStatus: t.LastStatus, DesiredStatus: t.DesiredStatus, Health: t.HealthStatus,
			CreatedAt: t.CreatedAt.Time, StartedAt: t.StartedAt.Time,
		})
	}
	var td *ecs.TaskDefinitionRecord
	if len(rec.Deployments) > 0 {
		if td, err = s.taskDefinition(ctx, rec.Deployments[0].TaskDefinition); err != nil {
			return false, 0, err
		}
	}
	arns := map[string]string{}
	for i, r := range snap.Records {
		zone, _ := ecs.AttributeValue(r.Attributes, ecs.AttributeAvailabilityZone)
		in.Instances[r.ID()] = Instance{ID: r.ID(), Zone: zone, Status: r.Status, Connected: snap.Connected[i]}
		arns[r.ID()] = r.ContainerInstanceARN
	}
	if rec.SchedulingStrategy == ecs.SchedulingStrategyDaemon && td != nil {
		if err := s.eligibility(rec, td, snap, in.Instances); err != nil {
			return false, 0, err
		}
	}

	plan := Decide(in, s.cfg.Policy)
	if plan.Changed {
		newRev, err := st.PutService(ctx, plan.Service, rev)
		if errors.Is(err, state.ErrConflict) {
			return true, 0, nil
		}
		if err != nil {
			return false, 0, err
		}
		rev = newRev
	}
	if plan.Deactivate {
		plan.Service.Status = ecs.ServiceStatusInactive
		err := st.DeactivateService(ctx, plan.Service, rev)
		if errors.Is(err, state.ErrConflict) {
			return true, 0, nil
		}
		return false, 0, err
	}

	var events []string
	stoppedRunning, stoppedPending := []string{}, []string{}
	for _, stop := range plan.Stops {
		_, err := st.UpdateTask(ctx, cluster, stop.TaskID, func(t *state.TaskRecord) (bool, error) {
			return t.RequestStop(ecs.TaskStopCodeServiceSchedulerInitiated, stop.Reason, now), nil
		})
		if err != nil && !errors.Is(err, state.ErrNotFound) {
			return false, 0, err
		}
		if stop.Kind == StopUnhealthy {
			continue // announced as failing its health checks
		}
		if t := byID[stop.TaskID]; t != nil && t.LastStatus == ecs.TaskStatusPending {
			stoppedPending = append(stoppedPending, stop.TaskID)
		} else {
			stoppedRunning = append(stoppedRunning, stop.TaskID)
		}
	}
	if len(stoppedRunning) > 0 {
		events = append(events, ecs.EventStoppedTasks(name, "running", stoppedRunning))
	}
	if len(stoppedPending) > 0 {
		events = append(events, ecs.EventStoppedTasks(name, "pending", stoppedPending))
	}
	var placeEvent string
	if (plan.Start > 0 || len(plan.StartOn) > 0) && td != nil {
		p := &Placement{Cluster: cluster, Service: &plan.Service.Service, TaskDefinition: td, StartedBy: plan.StartDeployment, Count: plan.Start}
		for _, id := range plan.StartOn {
			p.Instances = append(p.Instances, arns[id])
		}
		placed, failures, err := s.cfg.Placer.PlaceServiceTasks(ctx, p)
		if len(placed) > 0 {
			ids := make([]string, len(placed))
			for i, t := range placed {
				ids[i] = t.ID()
			}
			events = append(events, ecs.EventStartedTasks(name, ids))
		}
		if err != nil {
			return false, 0, fmt.Errorf("place tasks: %w", err)
		}
		if want := max(plan.Start, len(plan.StartOn)); len(placed) < want {
			placeEvent = unableToPlace(name, failures)
		}
	}
	if len(events) > 0 || placeEvent != "" {
		_, err := st.UpdateService(ctx, cluster, name, func(r *state.ServiceRecord) error {
			for _, e := range events {
				AddEvent(&r.Service, e, now, false)
			}
			if placeEvent != "" && !AddEvent(&r.Service, placeEvent, now, true) && len(events) == 0 {
				return errUnchanged
			}
			return nil
		})
		if err != nil && !errors.Is(err, errUnchanged) && !errors.Is(err, state.ErrNotFound) {
			return false, 0, err
		}
	}
	return false, plan.Wake, nil
}

// unableToPlace is ECS's placement failure event, naming the closest
// matching instance: one short of resources if any, else the first.
func unableToPlace(service string, failures []ecs.Failure) string {
	if len(failures) == 0 {
		return ecs.EventUnableToPlace(service, "", "")
	}
	f := failures[0]
	for _, g := range failures {
		if strings.HasPrefix(g.Reason, "RESOURCE:") {
			f = g
			break
		}
	}
	return ecs.EventUnableToPlace(service, f.ARN[strings.LastIndexByte(f.ARN, '/')+1:], f.Reason)
}

// eligibility marks the instances a DAEMON service's primary task may run
// on: those passing placement's checks and the constraints, leaving aside
// what the service's own tasks hold there (its task stays eligible where
// it runs).
func (s *Services) eligibility(rec *state.ServiceRecord, td *ecs.TaskDefinitionRecord, snap *state.InstanceSnapshot, out map[string]Instance) error {
	group := ecs.ServiceGroup(rec.ServiceName)
	constraints, err := scheduler.ParseConstraints(td.PlacementConstraints, rec.PlacementConstraints)
	if err != nil {
		return err
	}
	demand := scheduler.Demand{
		Resources:          scheduler.TaskResources(&td.TaskDefinition, nil),
		RequiresAttributes: td.RequiresAttributes,
		Group:              group,
	}
	for i, r := range snap.Records {
		var held []scheduler.Held
		for _, h := range r.Held {
			if h.Group != group {
				held = append(held, h)
			}
		}
		node := scheduler.NewNode(&r.ContainerInstance, snap.Connected[i], held)
		_, ok := scheduler.Check(scheduler.DefaultFilters, &demand, &node)
		if ok {
			_, ok = scheduler.Check(constraints, &demand, &node)
		}
		inst := out[r.ID()]
		inst.Eligible = ok
		out[r.ID()] = inst
	}
	return nil
}

// taskDefinition reads a task definition revision by ARN, whatever its
// status: deregistered revisions keep running and scaling.
func (s *Services) taskDefinition(ctx context.Context, arn string) (*ecs.TaskDefinitionRecord, error) {
	s.mu.Lock()
	td := s.tds[arn]
	s.mu.Unlock()
	if td != nil {
		return td, nil
	}
	ref, err := s.cfg.Scope.ParseTaskDefinitionRef(arn)
	if err != nil || ref.Revision == 0 {
		return nil, fmt.Errorf("service task definition %q: %v", arn, err)
	}
	td, err = s.cfg.Store.GetTaskDefinition(ctx, ref.Family, ref.Revision)
	if err != nil {
		return nil, fmt.Errorf("service task definition %s: %w", arn, err)
	}
	s.mu.Lock()
	s.tds[arn] = td
	s.mu.Unlock()
	return td, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
