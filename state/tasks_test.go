package state_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/testcluster"
	"github.com/gantry-dev/gantry/scheduler"
	"github.com/gantry-dev/gantry/state"
)

func newInstance(t *testing.T, s *state.Store, cluster string, cpu int64) *state.InstanceRecord {
	t.Helper()
	id := ecs.NewID()
	rec := &state.InstanceRecord{ContainerInstance: ecs.ContainerInstance{
		ContainerInstanceARN: scope.ContainerInstanceARN(cluster, id),
		Status:               ecs.InstanceStatusActive,
		RegisteredResources:  []ecs.Resource{ecs.IntegerResource("CPU", cpu), ecs.IntegerResource("MEMORY", 1024)},
	}}
	if err := s.CreateInstance(context.Background(), rec, time.Second); err != nil {
		t.Fatal(err)
	}
	return rec
}

func newTask(cluster string, inst *state.InstanceRecord, id string) *state.TaskRecord {
	return &state.TaskRecord{Task: ecs.Task{
		TaskARN: scope.TaskARN(cluster, id), ContainerInstanceARN: inst.ContainerInstanceARN,
		LastStatus: ecs.TaskStatusPending, DesiredStatus: ecs.TaskStatusRunning, TaskDefinitionARN: "arn:aws:ecs:us-east-1:123456789012:task-definition/f:1",
	}}
}

func storeWithCluster(t *testing.T, name string) *state.Store {
	t.Helper()
	s := testcluster.Start(t).Server.Store()
	if _, _, err := s.CreateCluster(context.Background(), &ecs.Cluster{ClusterName: name, ClusterARN: scope.ClusterARN(name), Status: "ACTIVE"}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPlaceTaskGuards(t *testing.T) {
	t.Parallel()
	s := storeWithCluster(t, "c")
	ctx := context.Background()
	if err := s.CreateInstance(ctx, &state.InstanceRecord{ContainerInstance: ecs.ContainerInstance{ContainerInstanceARN: scope.ContainerInstanceARN("gone", ecs.NewID())}}, 0); !errors.Is(err, state.ErrClusterNotActive) {
		t.Errorf("instance in a missing cluster: %v", err)
	}
	inst := newInstance(t, s, "c", 1024)
	snap, err := s.SnapshotInstances(ctx, "c")
	if err != nil || len(snap.Records) != 1 || !snap.Connected[0] {
		t.Fatalf("snapshot: %+v %v", snap, err)
	}
	rev := snap.Revisions[0]
	held := scheduler.Resources{CPU: 512}

	id1 := ecs.NewID()
	rec, rev2, err := s.PlaceTask(ctx, snap.Records[0], rev, newTask("c", inst, id1), held)
	if err != nil {
		t.Fatal(err)
	}
	// The snapshot's revision is stale now: a second placement from it loses.
	if _, _, err := s.PlaceTask(ctx, snap.Records[0], rev, newTask("c", inst, ecs.NewID()), held); !errors.Is(err, state.ErrConflict) {
		t.Errorf("stale placement: %v", err)
	}
	// The returned record and revision place the next one.
	if _, _, err := s.PlaceTask(ctx, rec, rev2, newTask("c", inst, ecs.NewID()), held); err != nil {
		t.Errorf("placement from the returned revision: %v", err)
	}
	got, _, _ := s.GetInstance(ctx, "c", inst.ID())
	if len(got.Held) != 2 {
		t.Errorf("held: %+v", got.Held)
	}
	// A taken ID is ErrExists, whatever the revision.
	got, rev3, _ := s.GetInstance(ctx, "c", inst.ID())
	if _, _, err := s.PlaceTask(ctx, got, rev3, newTask("c", inst, id1), held); !errors.Is(err, state.ErrExists) {
		t.Errorf("duplicate ID: %v", err)
	}
}

func TestStoppedTaskMoves(t *testing.T) {
	t.Parallel()
	s := storeWithCluster(t, "c")
	ctx := context.Background()
	cli := s.Client()
	inst := newInstance(t, s, "c", 1024)
	id := ecs.NewID()
	_, rev, _ := s.GetInstance(ctx, "c", inst.ID())
	if _, _, err := s.PlaceTask(ctx, inst, rev, newTask("c", inst, id), scheduler.Resources{CPU: 100}); err != nil {
		t.Fatal(err)
	}
	byInstance, total, err := s.CountTasks(ctx, "c")
	if err != nil || byInstance[inst.ID()].DesiredRunning != 1 || total.Pending != 1 {
		t.Errorf("counts: %+v %+v %v", byInstance, total, err)
	}
	_, err = s.UpdateTask(ctx, "c", id, func(t *state.TaskRecord) (bool, error) {
		t.LastStatus, t.DesiredStatus = ecs.TaskStatusStopped, ecs.TaskStatusStopped
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	keys := func(prefix string) []string {
		resp, err := cli.Get(ctx, "/gantry/v1/"+prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, kv := range resp.Kvs {
			out = append(out, string(kv.Key))
		}
		return out
	}
	if k := keys("tasks/c/"); len(k) != 0 {
		t.Errorf("running tasks after stop: %v", k)
	}
	if k := keys("tasks-by-instance/c/"); len(k) != 0 {
		t.Errorf("index after stop: %v", k)
	}
	resp, _ := cli.Get(ctx, "/gantry/v1/stopped-tasks/c/"+id)
	if len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
		t.Fatalf("stopped task key: %+v", resp.Kvs)
	}
	ttl, _ := cli.TimeToLive(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
	if ttl.TTL < int64(59*time.Minute/time.Second) {
		t.Errorf("stopped task lease TTL %d s", ttl.TTL)
	}
	if got, _, _ := s.GetInstance(ctx, "c", inst.ID()); len(got.Held) != 0 {
		t.Errorf("held after stop: %+v", got.Held)
	}
	// Tags of a stopped task can change; it keeps its lease.
	if _, err := s.UpdateTask(ctx, "c", id, func(t *state.TaskRecord) (bool, error) {
		t.Tags = []ecs.Tag{{Key: "k", Value: "v"}}
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	resp, _ = cli.Get(ctx, "/gantry/v1/stopped-tasks/c/"+id)
	if resp.Kvs[0].Lease == 0 || !strings.Contains(string(resp.Kvs[0].Value), `"k"`) {
		t.Errorf("stopped task after tagging: %s lease %d", resp.Kvs[0].Value, resp.Kvs[0].Lease)
	}
	if _, err := s.DeleteCluster(ctx, "c"); !errors.Is(err, state.ErrClusterHasInstances) {
		t.Errorf("delete with an instance: %v", err)
	}
	if _, err := s.DeregisterInstance(ctx, "c", inst.ID(), false, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteCluster(ctx, "c"); err != nil {
		t.Errorf("delete with only a stopped task: %v", err)
	}
}

func TestListTasksMergesRunningAndStopped(t *testing.T) {
	t.Parallel()
	s := storeWithCluster(t, "c")
	ctx := context.Background()
	inst := newInstance(t, s, "c", 1<<20)
	var ids []string
	for i := range 12 {
		id := fmt.Sprintf("%02x%030x", i*20, i) // IDs in a known order
		ids = append(ids, id)
		rec, rev, _ := s.GetInstance(ctx, "c", inst.ID())
		if _, _, err := s.PlaceTask(ctx, rec, rev, newTask("c", inst, id), scheduler.Resources{CPU: 1}); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if _, err := s.UpdateTask(ctx, "c", id, func(t *state.TaskRecord) (bool, error) {
				t.LastStatus, t.DesiredStatus = ecs.TaskStatusStopped, ecs.TaskStatusStopped
				return true, nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		ts, next, err := s.ListTasks(ctx, "c", true, true, after, 5, nil)
		if err != nil || pages > 5 {
			t.Fatal(err, pages)
		}
		for _, x := range ts {
			got = append(got, x.ID())
		}
		if next == "" {
			break
		}
		after = next
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("listed\n%v\nwant\n%v", got, ids)
	}
	running, _, _ := s.ListTasks(ctx, "c", true, false, "", 100, nil)
	if len(running) != 8 {
		t.Errorf("running: %d", len(running))
	}
}

func TestHeartbeatLease(t *testing.T) {
	t.Parallel()
	s := storeWithCluster(t, "c")
	ctx := context.Background()
	inst := newInstance(t, s, "c", 1024) // connected for 1 s
	testcluster.WaitFor(t, 10*time.Second, "the connected key to expire", func() bool {
		c, err := s.Connected(ctx, "c")
		return err == nil && !c[inst.ID()]
	})
	status, err := s.Heartbeat(ctx, "c", inst.ID(), 5*time.Second)
	if err != nil || status != ecs.InstanceStatusActive {
		t.Fatalf("heartbeat: %s %v", status, err)
	}
	if c, _ := s.Connected(ctx, "c"); !c[inst.ID()] {
		t.Error("not connected after a heartbeat")
	}
	if _, err := s.Heartbeat(ctx, "c", inst.ID(), 5*time.Second); err != nil {
		t.Errorf("refreshing heartbeat: %v", err)
	}
	if _, err := s.Heartbeat(ctx, "c", ecs.NewID(), time.Second); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("heartbeat of an unknown instance: %v", err)
	}
}

func TestJoinTokens(t *testing.T) {
	t.Parallel()
	s := storeWithCluster(t, "c")
	ctx := context.Background()
	for range 2 {
		if err := s.AddJoinToken(ctx, "secret-token", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := s.JoinTokenValid(ctx, "secret-token"); !ok || err != nil {
		t.Errorf("valid token refused: %v", err)
	}
	for _, bad := range []string{"", "secret-tokeN", "secret"} {
		if ok, _ := s.JoinTokenValid(ctx, bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
	resp, _ := s.Client().Get(ctx, "/gantry/", clientv3.WithPrefix())
	for _, kv := range resp.Kvs {
		if strings.Contains(string(kv.Key)+string(kv.Value), "secret-token") {
			t.Errorf("token stored in clear at %s", kv.Key)
		}
	}
}
