package testcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"

	"github.com/gantry-dev/gantry/agent"
	"github.com/gantry-dev/gantry/agent/runtime/docker"
	"github.com/gantry-dev/gantry/internal/testimage"
)

// TestLabel marks the containers of a test run: the agent the harness
// starts puts it (with a per-test value) on every container it creates, and
// the test's cleanup removes them by it, pass or fail.
const TestLabel = "dev.gantry.test"

// TestImage is the testapp image the Docker harness builds (testapp/).
const TestImage = "gantry-testapp:latest"

// DockerCluster is a control plane with one in-process agent running tasks
// on the local Docker engine, in the same way `gantry dev` runs them.
type DockerCluster struct {
	*Cluster
	Agent       *agent.Agent
	Runtime     *docker.Runtime // the agent's runtime (through Proxy, if any)
	ClusterName string
	Image       string // TestImage, built
	Label       string // this test's TestLabel value
	// Proxy stands between the agent and the engine when
	// DockerOptions.EngineProxy is set: cutting it looks to the agent like
	// an engine restart.
	Proxy *EngineProxy

	agentCfg  agent.Config
	stopAgent func()
}

// DockerOptions adjust StartDocker.
type DockerOptions struct {
	Cluster string              // default "default"
	Agent   func(*agent.Config) // edits the agent's configuration
	// EngineProxy puts an EngineProxy between the agent and the engine.
	EngineProxy bool
}

// StartDocker starts a control plane, creates the cluster and runs an agent
// in it against the Docker engine (DOCKER_HOST honoured), all for the
// test's lifetime. It skips the test when no engine is reachable (fails it
// with GANTRY_REQUIRE_E2E=1). The agent's containers carry TestLabel and are
// removed when the test ends.
func StartDocker(t testing.TB, opts ...DockerOptions) *DockerCluster {
	t.Helper()
	var o DockerOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Cluster == "" {
		o.Cluster = "default"
	}
	img := testimage.Build(t, TestImage) // skips without an engine
	sweepOnce.Do(func() { sweep(t) })

	c := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.ECS().CreateCluster(ctx, &awsecs.CreateClusterInput{ClusterName: aws.String(o.Cluster)}); err != nil {
		t.Fatal(err)
	}
	var proxy *EngineProxy
	dopts := docker.Options{}
	if o.EngineProxy {
		proxy = StartEngineProxy(t)
		dopts.Client = proxy.Client(t)
	}
	rt, err := docker.New(dopts)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	label := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "-" + hex.EncodeToString(b)
	t.Cleanup(func() { removeLabelled(t, label); rt.Close() })

	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	cfg := agent.Config{
		Server:           c.Server.URL(),
		Cluster:          o.Cluster,
		Token:            c.Server.JoinToken(),
		DataDir:          t.TempDir(),
		Runtime:          rt,
		AvailabilityZone: Region + "a",
		Labels:           map[string]string{TestLabel: label},
		Version:          "test",
		Logger:           slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	}
	// Tests run in parallel: each agent's metadata endpoint gets a free
	// port on the bridge gateway instead of 51679.
	if info, err := rt.Info(ctx); err == nil && info.HostGateway != "" {
		cfg.MetadataAddress = net.JoinHostPort(info.HostGateway, "0")
	} else {
		cfg.MetadataAddress = "off"
	}
	if o.Agent != nil {
		o.Agent(&cfg)
	}
	d := &DockerCluster{Cluster: c, Runtime: rt, ClusterName: o.Cluster, Image: img, Label: label, Proxy: proxy, agentCfg: cfg}
	d.StartAgent(t)
	t.Cleanup(func() { d.StopAgent(t) })
	return d
}

// StartAgent starts the cluster's agent (again, after StopAgent: with the
// same data dir, so it is the same container instance) and waits until it
// has registered.
func (d *DockerCluster) StartAgent(t testing.TB) {
	t.Helper()
	if d.stopAgent != nil {
		t.Fatal("StartAgent: the agent runs")
	}
	a, err := agent.New(d.agentCfg)
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	d.stopAgent = func() {
		acancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("the agent did not stop within 15s")
		}
	}
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("agent: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not register within 30s")
	}
	d.Agent = a
}

// StopAgent stops the agent, leaving its containers running, as stopping
// (or killing) the ECS agent does. Nothing of the agent's state survives
// but its data dir, so for the containers a restart after StopAgent is a
// restart after kill -9.
func (d *DockerCluster) StopAgent(t testing.TB) {
	t.Helper()
	if d.stopAgent != nil {
		d.stopAgent()
		d.stopAgent = nil
	}
}

// Containers lists this test's containers, in any state.
func (d *DockerCluster) Containers(t testing.TB) []container.Summary {
	t.Helper()
	c := testimage.Client(t)
	list, err := c.ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", TestLabel+"="+d.Label))})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// WaitTask polls DescribeTasks until the task satisfies ok, and returns it;
// it fails the test after timeout, showing the task's last state.
func (d *DockerCluster) WaitTask(t testing.TB, arn string, timeout time.Duration, ok func(types.Task) bool) types.Task {
	t.Helper()
	api := d.ECS()
	deadline := time.Now().Add(timeout)
	var last types.Task
	for {
		out, err := api.DescribeTasks(context.Background(), &awsecs.DescribeTasksInput{Cluster: aws.String(d.ClusterName), Tasks: []string{arn}})
		if err != nil {
			t.Fatalf("DescribeTasks: %v", err)
		}
		if len(out.Tasks) == 1 {
			last = out.Tasks[0]
			if ok(last) {
				return last
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s: condition not met within %v; last state: %s", arn, timeout, Describe(last))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Describe summarises a task for failure messages.
func Describe(t types.Task) string {
	var b strings.Builder
	b.WriteString("lastStatus=" + aws.ToString(t.LastStatus) + " desiredStatus=" + aws.ToString(t.DesiredStatus) +
		" stopCode=" + string(t.StopCode) + " stoppedReason=" + aws.ToString(t.StoppedReason))
	for _, c := range t.Containers {
		b.WriteString("\n  container " + aws.ToString(c.Name) + ": " + aws.ToString(c.LastStatus) + " reason=" + aws.ToString(c.Reason))
		if c.ExitCode != nil {
			b.WriteString(" exitCode=" + strconv.Itoa(int(*c.ExitCode)))
		}
		b.WriteString(" runtimeId=" + aws.ToString(c.RuntimeId))
	}
	return b.String()
}

// removeLabelled removes every container of a test run.
func removeLabelled(t testing.TB, label string) {
	c := testimage.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := c.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", TestLabel+"="+label))})
	if err != nil {
		t.Logf("cleanup: list containers: %v", err)
		return
	}
	for _, ct := range list {
		if err := c.ContainerRemove(ctx, ct.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			t.Logf("cleanup: remove %s: %v", ct.ID[:12], err)
		}
	}
	// The task-scoped volumes the agent made carry the label too.
	vols, err := c.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(filters.Arg("label", TestLabel+"="+label))})
	if err != nil {
		t.Logf("cleanup: list volumes: %v", err)
		return
	}
	for _, v := range vols.Volumes {
		if err := c.VolumeRemove(ctx, v.Name, true); err != nil {
			t.Logf("cleanup: remove volume %s: %v", v.Name, err)
		}
	}
}

var sweepOnce sync.Once

// sweep removes agent test containers left by killed test runs (older than
// ten minutes: no test runs that long).
func sweep(t testing.TB) {
	c := testimage.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := c.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", TestLabel), filters.Arg("label", agent.LabelContainerInstance))})
	if err != nil {
		return
	}
	for _, ct := range list {
		if time.Since(time.Unix(ct.Created, 0)) > 10*time.Minute {
			c.ContainerRemove(ctx, ct.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		}
	}
}
