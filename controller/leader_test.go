package controller_test

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gantry-dev/gantry/internal/testcluster"
	"github.com/gantry-dev/gantry/server"
)

// startEtcd runs an etcd server (Debian's etcd-server) as its own process
// and returns its client URL.
func startEtcd(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		testcluster.SkipOrFail(t, "no etcd binary on PATH (apt-get install etcd-server)")
	}
	client, peer := "http://"+freePort(t), "http://"+freePort(t)
	cmd := exec.Command(bin, "--data-dir", t.TempDir(), "--name", "leader-test",
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "leader-test="+peer, "--log-level", "error")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	testcluster.WaitFor(t, 30*time.Second, "etcd to listen", func() bool {
		c, err := net.Dial("tcp", strings.TrimPrefix(client, "http://"))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return client
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestLeaderFailover runs two servers on one etcd cluster: exactly one
// runs the service controller; when it stops, the other takes over and
// services keep being looked after.
func TestLeaderFailover(t *testing.T) {
	url := startEtcd(t)
	opts := testcluster.Options{Etcd: server.EtcdConfig{Endpoints: []string{url}}}
	a, b := testcluster.Start(t, opts), testcluster.Start(t, opts)
	testcluster.WaitFor(t, 30*time.Second, "a leader", func() bool { return a.Server.Leading() != b.Server.Leading() })
	leader, follower := a, b
	if b.Server.Leading() {
		leader, follower = b, a
	}
	if leader.Server.Leading() && follower.Server.Leading() {
		t.Fatal("two leaders")
	}

	// Everything goes through the follower: its API, and the agent.
	ctx := context.Background()
	api := follower.ECS()
	if _, err := api.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("ha")}); err != nil {
		t.Fatal(err)
	}
	follower.RegisterAgent(t, "ha", testcluster.AgentOptions{}).Autopilot()
	td, err := api.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("web"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("web"), Memory: aws.Int32(64)}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("ha"), ServiceName: aws.String("web"),
		TaskDefinition: td.TaskDefinition.TaskDefinitionArn, DesiredCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	running := func(n int32) func() bool {
		return func() bool {
			out, err := api.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("ha"), Services: []string{"web"}})
			return err == nil && len(out.Services) == 1 && out.Services[0].RunningCount == n && len(out.Services[0].Deployments) == 1
		}
	}
	testcluster.WaitFor(t, 30*time.Second, "2 tasks started by the first leader", running(2))

	start := time.Now()
	leader.Server.Close()
	testcluster.WaitFor(t, 30*time.Second, "the follower to lead", follower.Server.Leading)
	t.Logf("failover took %v", time.Since(start))
	if _, err := api.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("ha"), Service: aws.String("web"), DesiredCount: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 30*time.Second, "3 tasks, by the new leader", running(3))
}
