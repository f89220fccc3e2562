package state_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/state"
)

// A view's Sync must not wait on other watches of the same client: etcd
// answers a progress request only when every watch on the stream has
// started and caught up, and a watch that starts at the next revision
// (a fresh view, the service controller resuming) has not started until
// something is written. Nothing is written here while Sync waits.
func TestViewSyncNotHeldUpByOtherWatches(t *testing.T) {
	t.Parallel()
	s := storeWithCluster(t, "c")
	// A long heartbeat lease: nothing may write while Sync waits (an
	// expiring lease would, and that write would hide the stall).
	inst := &state.InstanceRecord{ContainerInstance: ecs.ContainerInstance{
		ContainerInstanceARN: scope.ContainerInstanceARN("c", ecs.NewID()), Status: ecs.InstanceStatusActive}}
	if err := s.CreateInstance(context.Background(), inst, time.Hour); err != nil {
		t.Fatal(err)
	}
	a, err := s.WatchInstances("c")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// A write elsewhere: a's watches see nothing, so its Sync needs a
	// progress notification.
	if _, _, err := s.CreateCluster(context.Background(), &ecs.Cluster{ClusterName: "other", ClusterARN: scope.ClusterARN("other"), Status: "ACTIVE"}); err != nil {
		t.Fatal(err)
	}
	b, err := s.WatchInstances("c")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := s.Client().Get(ctx, "/", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	s.WatchServiceChanges(ctx, resp.Header.Revision+1) // resumes "after the last event seen"

	for _, v := range []interface{ Sync(context.Context) error }{a, b} {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := v.Sync(sctx)
		scancel()
		if err != nil {
			t.Fatalf("Sync: %v", err)
		}
	}
}
