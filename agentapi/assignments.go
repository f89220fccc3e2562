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
// its tasks that are not STOPPED on connect, another after every change an
// etcd watch on the instance's tasks reports (changes that arrive together
// make one snapshot: each one is complete, so nothing is lost), and a
// keepalive when the stream has been quiet for the keepalive interval. It
// ends when the client goes away or the server shuts down.
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
	rev               int64                          // revision of the last snapshot sent
}

func (s *stream) run(ctx context.Context) error {
	for ctx.Err() == nil {
		if err := s.snapshot(ctx); err != nil {
			return err
		}
		if err := s.follow(ctx); err != nil {
			return err
		}
		// The watch broke (compaction, a leader change): start over from a
		// fresh snapshot.
	}
	return ctx.Err()
}

// follow sends a snapshot after each change the watch reports, and
// keepalives in between, until the watch breaks (nil) or ctx ends.
func (s *stream) follow(ctx context.Context) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := s.h.store.WatchInstanceTasks(wctx, s.cluster, s.instance, s.rev+1)
	tick := time.NewTicker(s.h.keepalive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if err := s.send(protocol.Assignment{Revision: s.rev, Tasks: []protocol.AssignedTask{}, Keepalive: true}); err != nil {
				return err
			}
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil || wr.Canceled {
				return nil
			}
			// Take what else is already waiting into the same snapshot.
		drain:
			for {
				select {
				case wr, ok := <-wch:
					if !ok || wr.Err() != nil || wr.Canceled {
						return nil
					}
				default:
					break drain
				}
			}
			if err := s.snapshot(ctx); err != nil {
				return err
			}
			tick.Reset(s.h.keepalive)
		}
	}
}

// snapshot sends the instance's current assignments.
func (s *stream) snapshot(ctx context.Context) error {
	tasks, rev, err := s.h.store.InstanceTasks(ctx, s.cluster, s.instance)
	if err != nil {
		return err
	}
	a := protocol.Assignment{Revision: rev, Tasks: make([]protocol.AssignedTask, 0, len(tasks))}
	for _, t := range tasks {
		td, err := s.taskDefinition(ctx, t.TaskDefinitionARN)
		if err != nil {
			return err
		}
		a.Tasks = append(a.Tasks, protocol.AssignedTask{Task: t.Task, TaskDefinition: *td})
	}
	s.rev = rev
	return s.send(a)
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
