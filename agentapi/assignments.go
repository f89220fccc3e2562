package agentapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/state"
)

// assignments streams the instance's assignments as NDJSON: a snapshot of
// its tasks that are not STOPPED on connect, then a delta after each batch
// of changes an etcd watch on the instance's task index reports (changes
// that arrive together make one delta), and a keepalive when the stream has
// been quiet for the keepalive interval. A delta reads only the tasks that
// are new to the agent or whose desired status changed, so its cost does
// not grow with the number of tasks on the instance. It ends when the
// client goes away or the server shuts down.
func (h *Handler) assignments(w http.ResponseWriter, r *http.Request) {
	rec, err := h.instance(r)
	if err != nil {
		h.authFailed(w, err)
		return
	}
	if rec.Status == ecs.InstanceStatusInactive {
		writeError(w, http.StatusGone, "InstanceInactive", "container instance "+rec.ContainerInstanceARN+" is deregistered")
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-h.done:
			cancel()
		case <-ctx.Done():
		}
	}()

	s := &stream{h: h, w: w, rc: http.NewResponseController(w), cluster: rec.Cluster(), instance: rec.ID(), tds: map[string]*ecs.TaskDefinition{}}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // proxies: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	if err := s.run(ctx); err != nil && ctx.Err() == nil {
		h.log.Warn("assignments stream ended", "containerInstance", rec.ContainerInstanceARN, "err", err)
	}
}

// stream is one agent's assignments connection.
type stream struct {
	h                 *Handler
	w                 http.ResponseWriter
	rc                *http.ResponseController
	cluster, instance string
	tds               map[string]*ecs.TaskDefinition // by ARN: revisions never change
	rev               int64                          // revision of the last snapshot or delta sent
	// sent is what the agent was told: the desired status of each task in
	// the last snapshot or a later delta, by task ID, until it was removed.
	sent map[string]string
}

func (s *stream) run(ctx context.Context) error {
	for ctx.Err() == nil {
		if err := s.snapshot(ctx); err != nil {
			return err
		}
		if err := s.follow(ctx); err != nil {
			return err
		}
		// The watch broke (compaction, a leader change) or a delta could
		// not be read: start over from a fresh snapshot, which replaces
		// everything the agent was told.
	}
	return ctx.Err()
}

// follow sends a delta after each batch of changes the watch reports, and
// keepalives in between, until the watch breaks (nil) or ctx ends.
func (s *stream) follow(ctx context.Context) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := s.h.store.WatchInstanceTasks(wctx, s.cluster, s.instance, s.rev+1)
	tick := time.NewTicker(s.h.keepalive)
	defer tick.Stop()
	var changes []state.InstanceTaskChange
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if err := s.send(protocol.Assignment{Revision: s.rev, Tasks: []protocol.AssignedTask{}, Keepalive: true}); err != nil {
				return err
			}
		case wr, ok := <-wch:
			changes = changes[:0]
			// Take what else is already waiting into the same delta.
			for {
				if !ok || wr.Err() != nil || wr.Canceled {
					return nil
				}
				c, err := state.InstanceTaskChanges(wr)
				if err != nil {
					return err
				}
				changes = append(changes, c...)
				select {
				case wr, ok = <-wch:
					continue
				default:
				}
				break
			}
			a, err := s.delta(ctx, changes)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				s.h.log.Warn("assignments delta failed; sending a snapshot", "containerInstance", s.instance, "err", err)
				return nil
			}
			if a != nil {
				if err := s.send(*a); err != nil {
					return err
				}
				tick.Reset(s.h.keepalive)
			}
		}
	}
}

// delta is what changes (in revision order) mean for the agent: tasks new
// to it or with a new desired status, read now and sent whole, and tasks
// that are STOPPED, by ARN. A change of last status alone is the agent's
// own report and is not echoed. It is nil when there is nothing to send.
func (s *stream) delta(ctx context.Context, changes []state.InstanceTaskChange) (*protocol.Assignment, error) {
	last := make(map[string]state.InstanceTaskChange, len(changes))
	var order []string
	rev := s.rev
	for _, c := range changes {
		if _, ok := last[c.TaskID]; !ok {
			order = append(order, c.TaskID)
		}
		last[c.TaskID] = c
		rev = max(rev, c.Revision)
	}
	var fetch, removed []string
	for _, id := range order {
		c := last[id]
		desired, known := s.sent[id]
		switch {
		case c.Stopped:
			if known {
				delete(s.sent, id)
				removed = append(removed, s.h.scope.TaskARN(s.cluster, id))
			}
		case !known || desired != c.DesiredStatus:
			fetch = append(fetch, id)
		}
	}
	s.rev = rev
	if len(fetch) == 0 && len(removed) == 0 {
		return nil, nil
	}
	a := &protocol.Assignment{Revision: rev, Delta: true, Removed: removed}
	// A task STOPPED after its event is missing from the read: the agent
	// was never told of it, and its removal will not be sent either.
	tasks, readRev, err := s.h.store.RunningTasks(ctx, s.cluster, fetch)
	if err != nil {
		return nil, err
	}
	if a.Tasks, err = s.assigned(ctx, tasks); err != nil {
		return nil, err
	}
	a.Revision = max(rev, readRev)
	return a, nil
}

// snapshot sends the instance's current assignments, which replace
// whatever the agent was told before.
func (s *stream) snapshot(ctx context.Context) error {
	tasks, rev, err := s.h.store.InstanceTasks(ctx, s.cluster, s.instance)
	if err != nil {
		return err
	}
	s.sent = make(map[string]string, len(tasks))
	a := protocol.Assignment{Revision: rev}
	if a.Tasks, err = s.assigned(ctx, tasks); err != nil {
		return err
	}
	s.rev = rev
	return s.send(a)
}

// assigned inlines the tasks' definitions and notes them as sent.
func (s *stream) assigned(ctx context.Context, tasks []*state.TaskRecord) ([]protocol.AssignedTask, error) {
	out := make([]protocol.AssignedTask, 0, len(tasks))
	for _, t := range tasks {
		td, err := s.taskDefinition(ctx, t.TaskDefinitionARN)
		if err != nil {
			return nil, err
		}
		out = append(out, protocol.AssignedTask{Task: t.Task, TaskDefinition: *td})
		s.sent[t.ID()] = t.DesiredStatus
	}
	return out, nil
}

func (s *stream) taskDefinition(ctx context.Context, arn string) (*ecs.TaskDefinition, error) {
	if td, ok := s.tds[arn]; ok {
		return td, nil
	}
	ref, err := s.h.scope.ParseTaskDefinitionRef(arn)
	if err != nil {
		return nil, err
	}
	rec, err := s.h.store.GetTaskDefinition(ctx, ref.Family, ref.Revision)
	if errors.Is(err, state.ErrNotFound) {
		// Revisions with tasks are never removed; if one is, the agent
		// still learns of the task and reports it failing to start.
		s.h.log.Error("task definition of a placed task is missing", "taskDefinition", arn)
		return &ecs.TaskDefinition{TaskDefinitionARN: arn}, nil
	}
	if err != nil {
		return nil, err
	}
	s.tds[arn] = &rec.TaskDefinition
	return &rec.TaskDefinition, nil
}

func (s *stream) send(a protocol.Assignment) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if _, err := s.w.Write(append(b, '\n')); err != nil {
		return err
	}
	return s.rc.Flush()
}
