package state_test

import (
	"context"
	"errors"
	"testing"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/scheduler"
	"github.com/gantry-dev/gantry/state"
)

// TestDescribeCluster: the record and the counts DescribeClusters shows,
// from one read; a cluster whose name extends another's counts only its own.
func TestDescribeCluster(t *testing.T) {
	t.Parallel()
	s := storeWithCluster(t, "c")
	ctx := context.Background()
	for _, name := range []string{"c2", "gone"} {
		if _, _, err := s.CreateCluster(ctx, &ecs.Cluster{ClusterName: name, ClusterARN: scope.ClusterARN(name), Status: ecs.ClusterStatusActive}); err != nil {
			t.Fatal(err)
		}
	}
	inst := newInstance(t, s, "c", 1024)
	newInstance(t, s, "c", 1024)
	newInstance(t, s, "c2", 1024)
	var ids []string
	for range 3 {
		ids = append(ids, ecs.NewID())
		rec, rev, _ := s.GetInstance(ctx, "c", inst.ID())
		if _, _, err := s.PlaceTask(ctx, rec, rev, newTask("c", inst, ids[len(ids)-1]), scheduler.Resources{CPU: 10}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.UpdateTask(ctx, "c", ids[0], func(t *state.TaskRecord) (bool, error) {
		t.LastStatus = ecs.TaskStatusRunning
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, svc := range []struct{ name, status string }{{"web", ecs.ServiceStatusActive}, {"api", ecs.ServiceStatusActive}, {"old", ecs.ServiceStatusDraining}} {
		if _, err := s.CreateService(ctx, &state.ServiceRecord{Service: ecs.Service{ServiceName: svc.name, ClusterARN: scope.ClusterARN("c"),
			ServiceARN: scope.ServiceARN("c", svc.name), Status: svc.status}}); err != nil {
			t.Fatal(err)
		}
	}

	c, n, err := describeCluster(ctx, s, "c")
	want := state.ClusterCounts{RegisteredContainerInstances: 2, ActiveServices: 2, DrainingServices: 1, RunningTasks: 1, PendingTasks: 2}
	if err != nil || c.ClusterName != "c" || n != want {
		t.Errorf("c: %+v %+v %v, want counts %+v", c, n, err, want)
	}
	if counted, err := s.CountCluster(ctx, "c"); err != nil || counted != want {
		t.Errorf("CountCluster: %+v %v", counted, err)
	}
	if _, n, err := describeCluster(ctx, s, "c2"); err != nil || n != (state.ClusterCounts{RegisteredContainerInstances: 1}) {
		t.Errorf("c2: %+v %v", n, err)
	}
	if _, err := s.DeleteCluster(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if c, n, err := describeCluster(ctx, s, "gone"); err != nil || c.Status != ecs.ClusterStatusInactive || n != (state.ClusterCounts{}) {
		t.Errorf("deleted: %+v %+v %v", c, n, err)
	}
	if _, _, err := describeCluster(ctx, s, "never"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("missing: %v", err)
	}

	// Many clusters, more than one transaction holds, come back in order.
	var names []string
	for i := range 60 {
		names = append(names, []string{"c", "never", "c2", "gone"}[i%4])
	}
	ds, err := s.DescribeClusters(ctx, names)
	if err != nil || len(ds) != len(names) {
		t.Fatalf("DescribeClusters: %d of %d, %v", len(ds), len(names), err)
	}
	for i, d := range ds {
		switch names[i] {
		case "never":
			if d.Cluster != nil {
				t.Errorf("%d: never: %+v", i, d)
			}
		case "c":
			if d.Cluster == nil || d.Cluster.ClusterName != "c" || d.Counts != want {
				t.Errorf("%d: c: %+v", i, d)
			}
		default:
			if d.Cluster == nil || d.Cluster.ClusterName != names[i] {
				t.Errorf("%d: %s: %+v", i, names[i], d)
			}
		}
	}
}

// describeCluster is DescribeClusters of one cluster; ErrNotFound when
// there is none.
func describeCluster(ctx context.Context, s *state.Store, name string) (*ecs.Cluster, state.ClusterCounts, error) {
	ds, err := s.DescribeClusters(ctx, []string{name})
	if err != nil {
		return nil, state.ClusterCounts{}, err
	}
	if ds[0].Cluster == nil {
		return nil, state.ClusterCounts{}, state.ErrNotFound
	}
	return ds[0].Cluster, ds[0].Counts, nil
}
