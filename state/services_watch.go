package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gantry-dev/gantry/ecs"
)

// ChangeKind says what a Change is about.
type ChangeKind int

// Changes the service controller reacts to.
const (
	// ServiceChanged: a service was created, updated or moved out.
	ServiceChanged ChangeKind = iota + 1
	// ServiceTaskChanged: a task of a service was placed or changed state.
	ServiceTaskChanged
	// ServiceTaskStopped: a task of a service reached STOPPED; Task is its
	// stopped record.
	ServiceTaskStopped
	// InstancesChanged: an instance of Cluster registered, changed (its
	// status, attributes, or what its tasks hold), or its agent connected
	// or disconnected.
	InstancesChanged
)

// Change is one thing that happened in the store that may concern a
// service. Rev is the etcd revision it happened at.
type Change struct {
	Kind    ChangeKind
	Cluster string
	Service string // ServiceChanged, ServiceTaskChanged, ServiceTaskStopped
	Task    *TaskRecord
	Rev     int64
}

// ChangeBatch is what one watch response carried. Err ends the stream: the
// watch failed (its start revision was compacted, or etcd went away), and
// the caller re-reads what it needs and watches again.
type ChangeBatch struct {
	Changes []Change
	Rev     int64 // the store's revision when the batch was sent
	Err     error
}

// ErrCompacted: a watch asked for history etcd no longer keeps.
var ErrCompacted = errors.New("watch revision compacted")

// WatchServiceChanges watches everything the service controller reacts to
// from revision rev on (0: from now), one batch per etcd watch response.
// The channel closes after a batch with Err, or when ctx ends.
func (s *Store) WatchServiceChanges(ctx context.Context, rev int64) <-chan ChangeBatch {
	out := make(chan ChangeBatch, 16)
	opts := []clientv3.OpOption{clientv3.WithPrefix()}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	wch := s.cli.Watch(wctx, Prefix, opts...)
	go func() {
		defer close(out)
		defer cancel()
		send := func(b ChangeBatch) bool {
			select {
			case out <- b:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for resp := range wch {
			if err := resp.Err(); err != nil {
				if resp.CompactRevision > 0 || errors.Is(err, rpctypes.ErrCompacted) {
					err = ErrCompacted
				}
				send(ChangeBatch{Err: fmt.Errorf("watch: %w", err)})
				return
			}
			var b ChangeBatch
			b.Rev = resp.Header.Revision
			for _, ev := range resp.Events {
				if c, ok := classify(ev); ok {
					b.Changes = append(b.Changes, c)
				}
			}
			if len(b.Changes) > 0 && !send(b) {
				return
			}
		}
		if ctx.Err() == nil {
			send(ChangeBatch{Err: errors.New("watch: channel closed")})
		}
	}()
	return out
}

// classify turns one etcd event into a Change, if it is one.
func classify(ev *clientv3.Event) (Change, bool) {
	key := string(ev.Kv.Key)
	put := ev.Type == clientv3.EventTypePut
	c := Change{Rev: ev.Kv.ModRevision}
	two := func(prefix string) (string, string, bool) {
		return strings.Cut(key[len(prefix):], "/")
	}
	switch {
	case strings.HasPrefix(key, servicesPrefix):
		cluster, name, ok := two(servicesPrefix)
		c.Kind, c.Cluster, c.Service = ServiceChanged, cluster, name
		return c, ok
	case strings.HasPrefix(key, tasksPrefix) && put:
		t := new(TaskRecord)
		if json.Unmarshal(ev.Kv.Value, t) != nil || !strings.HasPrefix(t.Group, ecs.ServiceGroupPrefix) {
			return c, false
		}
		c.Kind, c.Cluster, c.Service = ServiceTaskChanged, t.Cluster(), t.Group[len(ecs.ServiceGroupPrefix):]
		return c, true
	case strings.HasPrefix(key, stoppedTasksPrefix) && put && ev.IsCreate():
		t := new(TaskRecord)
		if json.Unmarshal(ev.Kv.Value, t) != nil || !strings.HasPrefix(t.Group, ecs.ServiceGroupPrefix) {
			return c, false
		}
		c.Kind, c.Cluster, c.Service, c.Task = ServiceTaskStopped, t.Cluster(), t.Group[len(ecs.ServiceGroupPrefix):], t
		return c, true
	case strings.HasPrefix(key, instancesPrefix):
		cluster, _, ok := two(instancesPrefix)
		c.Kind, c.Cluster = InstancesChanged, cluster
		return c, ok
	case strings.HasPrefix(key, connectedPrefix):
		cluster, _, ok := two(connectedPrefix)
		c.Kind, c.Cluster = InstancesChanged, cluster
		return c, ok
	}
	return c, false
}

// ControllerWatermark is the revision up to which the service controller
// has accounted for stopped tasks (0 if never), and the store's current
// revision.
func (s *Store) ControllerWatermark(ctx context.Context) (mark, current int64, err error) {
	resp, err := s.cli.Get(ctx, controllerWatermarkKey)
	if err != nil {
		return 0, 0, fmt.Errorf("etcd watermark: %w", err)
	}
	if len(resp.Kvs) > 0 {
		mark, _ = strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
	}
	return mark, resp.Header.Revision, nil
}

// SetControllerWatermark records the revision up to which stopped tasks
// have been accounted for.
func (s *Store) SetControllerWatermark(ctx context.Context, rev int64) error {
	if _, err := s.cli.Put(ctx, controllerWatermarkKey, strconv.FormatInt(rev, 10)); err != nil {
		return fmt.Errorf("etcd watermark: %w", err)
	}
	return nil
}
