package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gantry-dev/gantry/ecs"
)

// InactiveClusterTTL is how long a deleted cluster stays visible to
// DescribeClusters as INACTIVE, as ECS keeps them discoverable for a while.
const InactiveClusterTTL = time.Hour

// Clusters are stored as ecs.Cluster with only spec fields set (name, ARN,
// status, settings, configuration, tags, capacity providers); counts and
// statistics are derived when read.

// CreateCluster stores c unless an ACTIVE cluster of that name exists, in
// which case it returns the existing one and created=false (ECS's
// CreateCluster is idempotent). A deleted cluster's INACTIVE record is
// replaced in the same transaction.
func (s *Store) CreateCluster(ctx context.Context, c *ecs.Cluster) (out *ecs.Cluster, created bool, err error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, false, err
	}
	key := clusterKey(c.ClusterName)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(b)), clientv3.OpDelete(inactiveClusterKey(c.ClusterName))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return nil, false, fmt.Errorf("etcd create cluster: %w", err)
	}
	if resp.Succeeded {
		return c, true, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 { // deleted between the compare and the get: cannot happen in one txn
		return nil, false, ErrConflict
	}
	existing := new(ecs.Cluster)
	if err := json.Unmarshal(kvs[0].Value, existing); err != nil {
		return nil, false, err
	}
	return existing, false, nil
}

// GetCluster returns the named cluster, ACTIVE or recently deleted
// (INACTIVE), or ErrNotFound.
func (s *Store) GetCluster(ctx context.Context, name string) (*ecs.Cluster, error) {
	c := new(ecs.Cluster)
	_, err := s.get(ctx, clusterKey(name), c)
	if errors.Is(err, ErrNotFound) {
		_, err = s.get(ctx, inactiveClusterKey(name), c)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ActiveCluster returns the named cluster if it is ACTIVE, else ErrNotFound.
func (s *Store) ActiveCluster(ctx context.Context, name string) (*ecs.Cluster, error) {
	c := new(ecs.Cluster)
	if _, err := s.get(ctx, clusterKey(name), c); err != nil {
		return nil, err
	}
	return c, nil
}

// ListClusters returns up to limit ACTIVE clusters whose names sort after
// `after`, and the name to continue from when more remain.
func (s *Store) ListClusters(ctx context.Context, after string, limit int) (cs []*ecs.Cluster, next string, err error) {
	last, more, err := s.page(ctx, clustersPrefix, after, limit, func(b []byte) error {
		c := new(ecs.Cluster)
		if err := json.Unmarshal(b, c); err != nil {
			return err
		}
		cs = append(cs, c)
		return nil
	})
	if err != nil || !more {
		return cs, "", err
	}
	return cs, last, nil
}

// UpdateCluster applies fn to the ACTIVE cluster atomically.
func (s *Store) UpdateCluster(ctx context.Context, name string, fn func(*ecs.Cluster) error) (*ecs.Cluster, error) {
	return update(ctx, s, clusterKey(name), fn)
}

// Reasons DeleteCluster refuses, as ECS's exceptions.
var (
	ErrClusterHasInstances = errors.New("cluster has container instances")
	ErrClusterHasServices  = errors.New("cluster has services")
	ErrClusterHasTasks     = errors.New("cluster has tasks")
)

// DeleteCluster marks the cluster INACTIVE, in one transaction that also
// checks it holds no container instances, services or tasks, so a
// concurrent RunTask cannot slip a task into a cluster being deleted.
// STOPPED tasks do not count (ECS deletes a cluster whose tasks are all
// stopped): they live under stopped-tasks/, outside the guarded prefix, and
// stay describable until their lease ends.
func (s *Store) DeleteCluster(ctx context.Context, name string) (*ecs.Cluster, error) {
	guards := []struct {
		prefix string
		err    error
	}{
		{instancesOf(name), ErrClusterHasInstances},
		{servicesOf(name), ErrClusterHasServices},
		{tasksOf(name), ErrClusterHasTasks},
	}
	key := clusterKey(name)
	for range maxAttempts {
		c := new(ecs.Cluster)
		rev, err := s.get(ctx, key, c)
		if err != nil {
			return nil, err
		}
		c.Status = ecs.ClusterStatusInactive
		b, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		lease, err := s.cli.Grant(ctx, int64(InactiveClusterTTL/time.Second))
		if err != nil {
			return nil, fmt.Errorf("etcd lease: %w", err)
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", rev)}
		for _, g := range guards {
			cmps = append(cmps, emptyPrefix(g.prefix))
		}
		resp, err := s.cli.Txn(ctx).If(cmps...).
			Then(clientv3.OpDelete(key), clientv3.OpPut(inactiveClusterKey(name), string(b), clientv3.WithLease(lease.ID))).
			Commit()
		if err != nil {
			return nil, fmt.Errorf("etcd delete cluster: %w", err)
		}
		if resp.Succeeded {
			return c, nil
		}
		s.cli.Revoke(ctx, lease.ID)
		for _, g := range guards {
			if n, err := s.count(ctx, g.prefix); err != nil {
				return nil, err
			} else if n > 0 {
				return nil, g.err
			}
		}
	}
	return nil, ErrConflict
}

// ClusterCounts are the derived numbers DescribeClusters reports:
// registered instances, services, and the RUNNING and PENDING tasks on the
// cluster's instances.
type ClusterCounts struct {
	RegisteredContainerInstances int32
	ActiveServices               int32 // ACTIVE services
	DrainingServices             int32 // deleted services whose tasks are still stopping
	RunningTasks                 int32
	PendingTasks                 int32
}

// DescribedCluster is a cluster as DescribeClusters reads it: the record
// (nil when there is no such cluster) and, for an ACTIVE one, its counts.
type DescribedCluster struct {
	Cluster *ecs.Cluster
	Counts  ClusterCounts
}

// describeOps is how many etcd operations describing one cluster takes;
// clustersPerTxn keeps a transaction within etcd's default limit of 128.
const (
	describeOps    = 5
	clustersPerTxn = 128 / describeOps
)

// DescribeClusters returns the named clusters, ACTIVE or recently deleted
// (INACTIVE), with their counts, in the order named. Each record and its
// counts are of one revision: up to 25 clusters are read in one etcd
// transaction of range reads (DescribeClusters used to make three reads
// and a scan per cluster).
func (s *Store) DescribeClusters(ctx context.Context, names []string) ([]DescribedCluster, error) {
	out := make([]DescribedCluster, 0, len(names))
	for batch := range slices.Chunk(names, clustersPerTxn) {
		ops := make([]clientv3.Op, 0, describeOps*len(batch))
		for _, name := range batch {
			ops = append(append(ops, clientv3.OpGet(clusterKey(name)), clientv3.OpGet(inactiveClusterKey(name))), countOps(name)...)
		}
		resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, fmt.Errorf("etcd describe clusters: %w", err)
		}
		for rs := range slices.Chunk(resp.Responses, describeOps) {
			d, err := described(rs)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// described decodes the answers to one cluster's describe operations:
// its record, its INACTIVE record, and countOps.
func described(rs []*etcdserverpb.ResponseOp) (DescribedCluster, error) {
	var d DescribedCluster
	kvs := rs[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		kvs = rs[1].GetResponseRange().Kvs
	}
	if len(kvs) == 0 {
		return d, nil
	}
	d.Cluster = new(ecs.Cluster)
	if err := json.Unmarshal(kvs[0].Value, d.Cluster); err != nil {
		return d, fmt.Errorf("decode %s: %w", kvs[0].Key, err)
	}
	if d.Cluster.Status != ecs.ClusterStatusActive {
		return d, nil
	}
	var err error
	d.Counts, err = counts(rs[2:])
	return d, err
}

// CountCluster derives a cluster's counts, in one etcd transaction.
func (s *Store) CountCluster(ctx context.Context, name string) (ClusterCounts, error) {
	resp, err := s.cli.Txn(ctx).Then(countOps(name)...).Commit()
	if err != nil {
		return ClusterCounts{}, fmt.Errorf("etcd count cluster: %w", err)
	}
	return counts(resp.Responses)
}

// countOps read what a cluster's counts are derived from: how many
// instances it has, its services (for their status) and its task index.
func countOps(name string) []clientv3.Op {
	return []clientv3.Op{
		clientv3.OpGet(instancesOf(name), clientv3.WithPrefix(), clientv3.WithCountOnly()),
		clientv3.OpGet(servicesOf(name), clientv3.WithPrefix()),
		clientv3.OpGet(clusterInstanceTasks(name), clientv3.WithPrefix()),
	}
}

// counts derives ClusterCounts from the answers to countOps.
func counts(rs []*etcdserverpb.ResponseOp) (ClusterCounts, error) {
	var n ClusterCounts
	n.RegisteredContainerInstances = int32(rs[0].GetResponseRange().Count)
	for _, kv := range rs[1].GetResponseRange().Kvs {
		var svc struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(kv.Value, &svc); err != nil {
			return n, fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		if svc.Status == ecs.ServiceStatusActive {
			n.ActiveServices++
		} else {
			n.DrainingServices++
		}
	}
	var tasks TaskCounts
	for _, kv := range rs[2].GetResponseRange().Kvs {
		var ix taskIndex
		if err := json.Unmarshal(kv.Value, &ix); err != nil {
			return n, fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		tasks.add(ix)
	}
	n.RunningTasks, n.PendingTasks = tasks.Running, tasks.Pending
	return n, nil
}
