package state

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/awsproto"
)

// InactiveServiceTTL is how long a deleted (INACTIVE) service stays
// describable, so `aws ecs wait services-inactive` finds it.
const InactiveServiceTTL = time.Hour

// ServiceRecord is a service as the store keeps it at
// services/<cluster>/<name> while ACTIVE or DRAINING, and at
// inactive-services/<cluster>/<name> (on a lease) once INACTIVE.
//
// The Service holds what users wrote (task definition, desired count,
// deployment configuration, placement, tags) and what the service
// controller writes: deployments with their rolloutState and failedTasks,
// and events. Counts of running and pending tasks are derived from the
// tasks when read. Controller is the controller's own bookkeeping, which
// DescribeServices does not show.
type ServiceRecord struct {
	ecs.Service
	ClientToken string        `json:"clientToken,omitempty"`
	Controller  ServiceStatus `json:"controller,omitzero"`
}

// ServiceStatus is what the service controller remembers about a service
// between reconciliations; it lives in the record so that another server
// that becomes leader carries on where this one stopped.
type ServiceStatus struct {
	// Steady: the steady-state event was sent and the service has stayed
	// steady since.
	Steady bool `json:"steady,omitempty"`
	// CrashCount counts the primary deployment's tasks that failed in a row
	// soon after (or before) they started; BackoffUntil is when the next
	// task may start once it passes the threshold.
	CrashCount   int       `json:"crashCount,omitempty"`
	LastCrashAt  time.Time `json:"lastCrashAt,omitzero"`
	BackoffUntil time.Time `json:"backoffUntil,omitzero"`
	// LastCompleted is the last deployment that completed: the one a
	// circuit breaker rolls back to, even after it left the list.
	LastCompleted *CompletedDeployment `json:"lastCompleted,omitempty"`
	// LastFailureAt is, per deployment ID, when its last task failed (a
	// healthy task that started later resets its failedTasks).
	LastFailureAt map[string]time.Time `json:"lastFailureAt,omitzero"`
	// StopRev is the etcd revision of the last stopped task the controller
	// accounted for, so a replayed stop is not counted twice.
	StopRev int64 `json:"stopRev,omitempty"`
}

// CompletedDeployment names a deployment that completed.
type CompletedDeployment struct {
	ID             string `json:"id"`
	TaskDefinition string `json:"taskDefinition"`
}

// Cluster is the service's cluster name, from its ARN.
func (r *ServiceRecord) Cluster() string { return clusterSegment(r.ServiceARN) }

// Errors of the service store.
var (
	// ErrServiceExists: CreateService found a service of that name that is
	// ACTIVE or DRAINING; the store returns it alongside.
	ErrServiceExists = errors.New("service exists")
)

// CreateService stores a new service, in one transaction that checks its
// cluster is ACTIVE and no ACTIVE or DRAINING service has its name, and
// replaces an INACTIVE one of that name. When the name is taken it returns
// the existing service and ErrServiceExists.
func (s *Store) CreateService(ctx context.Context, rec *ServiceRecord) (*ServiceRecord, error) {
	cluster, name := rec.Cluster(), rec.ServiceName
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	key := serviceKey(cluster, name)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(clusterKey(cluster)), ">", 0),
			clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(b)), clientv3.OpDelete(inactiveServiceKey(cluster, name))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("etcd create service: %w", err)
	}
	if resp.Succeeded {
		return rec, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, ErrClusterNotActive
	}
	existing := new(ServiceRecord)
	if err := json.Unmarshal(kvs[0].Value, existing); err != nil {
		return nil, err
	}
	return existing, ErrServiceExists
}

// GetService returns a service, ACTIVE, DRAINING or recently INACTIVE, and
// the revision it was read at (an INACTIVE service cannot be updated);
// ErrNotFound otherwise.
func (s *Store) GetService(ctx context.Context, cluster, name string) (*ServiceRecord, int64, error) {
	rec := new(ServiceRecord)
	rev, err := s.get(ctx, serviceKey(cluster, name), rec)
	if errors.Is(err, ErrNotFound) {
		rec = new(ServiceRecord)
		_, err = s.get(ctx, inactiveServiceKey(cluster, name), rec)
		rev = 0
	}
	if err != nil {
		return nil, 0, err
	}
	return rec, rev, nil
}

// UpdateService applies fn to an ACTIVE or DRAINING service atomically; fn
// may run several times. ErrNotFound if there is none.
func (s *Store) UpdateService(ctx context.Context, cluster, name string, fn func(*ServiceRecord) error) (*ServiceRecord, error) {
	return update(ctx, s, serviceKey(cluster, name), fn)
}

// PutService writes rec over the ACTIVE or DRAINING service read at
// revision rev; ErrConflict if it changed since.
func (s *Store) PutService(ctx context.Context, rec *ServiceRecord, rev int64) (int64, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return 0, err
	}
	key := serviceKey(rec.Cluster(), rec.ServiceName)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, string(b))).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("etcd put service: %w", err)
	}
	if !resp.Succeeded {
		return 0, ErrConflict
	}
	return resp.Header.Revision, nil
}

// DeactivateService moves a DRAINING service read at revision rev to the
// INACTIVE services, as rec (status INACTIVE), on a lease of
// InactiveServiceTTL; ErrConflict if it changed since.
func (s *Store) DeactivateService(ctx context.Context, rec *ServiceRecord, rev int64) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	cluster, name := rec.Cluster(), rec.ServiceName
	lease, err := s.grant(ctx, InactiveServiceTTL)
	if err != nil {
		return err
	}
	key := serviceKey(cluster, name)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpDelete(key), clientv3.OpPut(inactiveServiceKey(cluster, name), string(b), clientv3.WithLease(lease))).
		Commit()
	if err != nil {
		s.revoke(lease)
		return fmt.Errorf("etcd deactivate service: %w", err)
	}
	if !resp.Succeeded {
		s.revoke(lease)
		return ErrConflict
	}
	return nil
}

// ListServices returns up to limit ACTIVE or DRAINING services of cluster
// whose names sort after `after` and for which keep (may be nil) is true,
// in name order, and the name to continue from when more may remain.
func (s *Store) ListServices(ctx context.Context, cluster, after string, limit int, keep func(*ServiceRecord) bool) (out []*ServiceRecord, next string, err error) {
	out, more, err := scanRecords(ctx, s, servicesOf(cluster), after, limit, keep)
	if err != nil {
		return nil, "", err
	}
	if more && len(out) > 0 {
		next = out[len(out)-1].ServiceName
	}
	return out, next, nil
}

// ServiceKey names a service.
type ServiceKey struct{ Cluster, Name string }

// ServiceKeys lists every ACTIVE or DRAINING service, of one cluster or
// (cluster "") of all.
func (s *Store) ServiceKeys(ctx context.Context, cluster string) ([]ServiceKey, int64, error) {
	prefix := servicesPrefix
	if cluster != "" {
		prefix = servicesOf(cluster)
	}
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, 0, fmt.Errorf("etcd list services: %w", err)
	}
	out := make([]ServiceKey, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		c, n, ok := strings.Cut(string(kv.Key[len(servicesPrefix):]), "/")
		if ok {
			out = append(out, ServiceKey{c, n})
		}
	}
	return out, resp.Header.Revision, nil
}

// ServiceTasks returns the tasks of the named service that are not
// STOPPED (those in its task group, "service:<name>"), in ID order.
func (s *Store) ServiceTasks(ctx context.Context, cluster, name string) ([]*TaskRecord, error) {
	group := ecs.ServiceGroup(name)
	tasks, _, err := s.ListTasks(ctx, cluster, true, false, "", 1<<30, func(t *TaskRecord) bool { return t.Group == group })
	return tasks, err
}

// ServiceTask is what the service controller and DescribeServices' counts
// read of a task record. Decoding only these fields, not the containers,
// overrides and a dozen timestamps, costs a fraction of the whole record,
// and both read every task of a service on every pass or call.
type ServiceTask struct {
	TaskARN              string             `json:"taskArn"`
	ContainerInstanceARN string             `json:"containerInstanceArn"`
	Group                string             `json:"group"`
	StartedBy            string             `json:"startedBy"`
	LastStatus           string             `json:"lastStatus"`
	DesiredStatus        string             `json:"desiredStatus"`
	HealthStatus         ecs.HealthStatus   `json:"healthStatus"`
	CreatedAt            awsproto.Timestamp `json:"createdAt"`
	StartedAt            awsproto.Timestamp `json:"startedAt"`
}

// ID is the task's ID, the last segment of its ARN.
func (t *ServiceTask) ID() string { return lastSegment(t.TaskARN) }

// InstanceID is the ID of the container instance the task is placed on.
func (t *ServiceTask) InstanceID() string { return lastSegment(t.ContainerInstanceARN) }

// ServiceTaskSummaries returns the tasks of a service that are not STOPPED,
// as ServiceTasks does, with only ServiceTask's fields.
func (s *Store) ServiceTaskSummaries(ctx context.Context, cluster, name string) ([]*ServiceTask, error) {
	group := ecs.ServiceGroup(name)
	byService, err := s.serviceTaskSummaries(ctx, cluster, func(g string) bool { return g == group })
	return byService[name], err
}

// ClusterServiceTaskSummaries returns the tasks that are not STOPPED of
// every service of a cluster, by service name, with only ServiceTask's
// fields.
func (s *Store) ClusterServiceTaskSummaries(ctx context.Context, cluster string) (map[string][]*ServiceTask, error) {
	return s.serviceTaskSummaries(ctx, cluster, func(g string) bool { return strings.HasPrefix(g, ecs.ServiceGroupPrefix) })
}

func (s *Store) serviceTaskSummaries(ctx context.Context, cluster string, keep func(group string) bool) (map[string][]*ServiceTask, error) {
	out := map[string][]*ServiceTask{}
	var derr error
	_, _, err := s.scan(ctx, tasksOf(cluster), "", 0, func(key string, value []byte) bool {
		t := new(ServiceTask)
		if derr = json.Unmarshal(value, t); derr != nil {
			derr = fmt.Errorf("decode %s: %w", key, derr)
			return false
		}
		if keep(t.Group) {
			name := t.Group[len(ecs.ServiceGroupPrefix):]
			out[name] = append(out[name], t)
		}
		return true
	})
	return out, cmp.Or(err, derr)
}
