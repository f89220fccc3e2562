// Command runtask measures RunTask-to-RUNNING latency on a real Docker
// engine: the time from calling RunTask (AWS SDK for Go v2, SigV4) on a
// Gantry control plane (embedded etcd) to DescribeTasks reporting the task
// RUNNING, with an in-process agent running it in Docker. Next to it, in the
// same run and alternating with it, it measures the floor: a raw Docker
// create+start of the same image, command, memory limit and dynamic port
// through the Engine API. The difference is what Gantry adds: placement,
// etcd writes, the assignment stream, the image pull attempt, inspecting
// the container and reporting back.
//
// Because the engine's own latency varies a lot from call to call (and
// with whatever else the machine does), the agent's runtime is wrapped to
// time its Create and Start calls: "overhead" is each task's RunTask-to-
// RUNNING minus the engine time of its own create+start, the part of the
// latency that is Gantry's.
//
// The test image is built as the tests build it (internal/testimage); no
// registry is needed. Results are in docs/benchmarks.md; run with
//
//	go run ./bench/runtask -n 50
//	go run ./bench/runtask -n 50 -pull prefer-cached
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/gantry-dev/gantry/agent"
	"github.com/gantry-dev/gantry/agent/runtime"
	"github.com/gantry-dev/gantry/agent/runtime/docker"
	"github.com/gantry-dev/gantry/internal/testimage"
	"github.com/gantry-dev/gantry/server"
)

const (
	accessKey  = "GKIABENCHACCESSKEY00"
	secretKey  = "bench/secret/key/for/gantry/runtask/000"
	region     = "us-east-1"
	cluster    = "bench"
	image      = "gantry-testapp:latest"
	benchLabel = "dev.gantry.bench"
)

var (
	n      = flag.Int("n", 50, "tasks (and raw containers) measured")
	warmup = flag.Int("warmup", 3, "unmeasured rounds first")
	pull   = flag.String("pull", "default", "the agent's image pull behavior: default, always, once, prefer-cached")
	poll   = flag.Duration("poll", 5*time.Millisecond, "DescribeTasks polling interval (a tighter one steals CPU from the engine on small machines)")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	// testimage.Build wants a testing.TB; testing.Benchmark provides one
	// outside `go test`.
	var ref string
	testing.Benchmark(func(b *testing.B) { ref = testimage.Build(b, image) })
	if ref == "" {
		log.Fatal("could not build the test image: is a Docker engine reachable (DOCKER_HOST)?")
	}
	dc, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		log.Fatal(err)
	}
	run := fmt.Sprint(time.Now().UnixNano())
	defer cleanup(dc, run)

	dir, err := os.MkdirTemp("", "gantry-bench-runtask-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", DataDir: dir, Region: region, AccountID: "123456789012",
		AccessKeyID: accessKey, SecretAccessKey: secretKey, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	api := awsecs.New(awsecs.Options{Region: region, BaseEndpoint: aws.String(srv.URL()),
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")})
	if _, err := api.CreateCluster(ctx, &awsecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		log.Fatal(err)
	}
	drt, err := docker.New(docker.Options{Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	rt := &timedRuntime{Runtime: drt, names: map[string]string{}, engine: map[string]time.Duration{}}
	a, err := agent.New(agent.Config{Server: srv.URL(), Cluster: cluster, Token: srv.JoinToken(), DataDir: dir + "/agent",
		Runtime: rt, PullBehavior: agent.PullBehavior(*pull), Labels: map[string]string{benchLabel: run}, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	actx, acancel := context.WithCancel(ctx)
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.Run(actx) }()
	defer func() { acancel(); <-agentDone }()
	select {
	case <-a.Ready():
	case err := <-agentDone:
		log.Fatalf("agent: %v", err)
	}

	td, err := api.RegisterTaskDefinition(ctx, &awsecs.RegisterTaskDefinitionInput{
		Family: aws.String("bench"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("web"), Image: aws.String(ref), Memory: aws.Int32(64), Essential: aws.Bool(true),
			Command:      []string{"serve"},
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080), HostPort: aws.Int32(0)}},
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	tdARN := aws.ToString(td.TaskDefinition.TaskDefinitionArn)

	var raw, gantry, overhead, engine []time.Duration
	var phases [3][]time.Duration // placed->pull started, pull, pull stopped->RUNNING recorded
	for i := 0; i < *warmup+*n; i++ {
		if ctx.Err() != nil {
			break
		}
		r, err := rawCreateStart(ctx, dc, ref, run, i)
		if err != nil {
			log.Fatalf("raw create+start: %v", err)
		}
		g, task, err := runTaskToRunning(ctx, api, tdARN)
		if err != nil {
			log.Fatalf("RunTask to RUNNING: %v", err)
		}
		if i < *warmup {
			continue
		}
		raw, gantry = append(raw, r), append(gantry, g)
		e := rt.engineTime(agent.ContainerName("bench", 1, "web", agent.TaskID(aws.ToString(task.TaskArn))))
		engine, overhead = append(engine, e), append(overhead, g-e)
		phases[0] = append(phases[0], task.PullStartedAt.Sub(*task.CreatedAt))
		phases[1] = append(phases[1], task.PullStoppedAt.Sub(*task.PullStartedAt))
		phases[2] = append(phases[2], task.StartedAt.Sub(*task.PullStoppedAt))
	}
	if len(gantry) == 0 {
		return
	}

	info, _ := dc.ServerVersion(ctx)
	fmt.Printf("RunTask-to-RUNNING vs raw Docker create+start, %d each, alternating; Docker %s (API %s), pull behavior %q, polling every %v\n\n",
		len(gantry), info.Version, info.APIVersion, *pull, *poll)
	fmt.Printf("%-32s %8s %8s %8s %8s\n", "", "p50", "p90", "p99", "mean")
	row := func(name string, d []time.Duration) {
		fmt.Printf("%-32s %8s %8s %8s %8s\n", name, ms(pct(d, 50)), ms(pct(d, 90)), ms(pct(d, 99)), ms(mean(d)))
	}
	row("raw docker create+start", raw)
	row("gantry RunTask->RUNNING", gantry)
	row("  of which engine create+start", engine)
	row("  of which Gantry (overhead)", overhead)
	fmt.Printf("\nratio to raw: p50 %.2fx, p99 %.2fx; difference of percentiles: p50 %s, p99 %s\n",
		float64(pct(gantry, 50))/float64(pct(raw, 50)), float64(pct(gantry, 99))/float64(pct(raw, 99)),
		ms(pct(gantry, 50)-pct(raw, 50)), ms(pct(gantry, 99)-pct(raw, 99)))
	fmt.Printf("\nserver timestamps (ms precision), p50: placed->pullStartedAt %s, pull %s, pullStoppedAt->startedAt %s\n",
		ms(pct(phases[0], 50)), ms(pct(phases[1], 50)), ms(pct(phases[2], 50)))
}

// rawCreateStart creates and starts a container as the agent would for
// the benchmark's task definition, straight through the Engine API.
func rawCreateStart(ctx context.Context, dc *client.Client, ref, run string, i int) (time.Duration, error) {
	start := time.Now()
	resp, err := dc.ContainerCreate(ctx,
		&container.Config{Image: ref, Cmd: []string{"serve"}, Labels: map[string]string{benchLabel: run},
			ExposedPorts: nat.PortSet{"8080/tcp": {}}},
		&container.HostConfig{Resources: container.Resources{Memory: 64 << 20, CPUShares: 2},
			PortBindings: nat.PortMap{"8080/tcp": {{HostPort: ""}}}},
		nil, nil, fmt.Sprintf("bench-raw-%s-%d", run, i))
	if err != nil {
		return 0, err
	}
	if err := dc.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// runTaskToRunning runs one task and polls until DescribeTasks says
// RUNNING.
func runTaskToRunning(ctx context.Context, api *awsecs.Client, td string) (time.Duration, types.Task, error) {
	start := time.Now()
	out, err := api.RunTask(ctx, &awsecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String(td)})
	if err != nil {
		return 0, types.Task{}, err
	}
	if len(out.Tasks) != 1 {
		return 0, types.Task{}, fmt.Errorf("RunTask: failures %+v", out.Failures)
	}
	arn := out.Tasks[0].TaskArn
	for {
		d, err := api.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{*arn}})
		if err != nil {
			return 0, types.Task{}, err
		}
		if t := d.Tasks[0]; aws.ToString(t.LastStatus) == "RUNNING" {
			return time.Since(start), t, nil
		} else if aws.ToString(t.LastStatus) == "STOPPED" {
			return 0, t, fmt.Errorf("task stopped: %s", aws.ToString(t.StoppedReason))
		}
		time.Sleep(*poll)
	}
}

// timedRuntime records how long the engine took to create and start each
// container, by container name.
type timedRuntime struct {
	*docker.Runtime
	mu     sync.Mutex
	names  map[string]string        // container ID -> name
	engine map[string]time.Duration // name -> create + start
}

func (t *timedRuntime) Create(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	start := time.Now()
	id, err := t.Runtime.Create(ctx, spec)
	d := time.Since(start)
	t.mu.Lock()
	t.names[id] = spec.Name
	t.engine[spec.Name] += d
	t.mu.Unlock()
	return id, err
}

func (t *timedRuntime) Start(ctx context.Context, id string) error {
	start := time.Now()
	err := t.Runtime.Start(ctx, id)
	d := time.Since(start)
	t.mu.Lock()
	t.engine[t.names[id]] += d
	t.mu.Unlock()
	return err
}

func (t *timedRuntime) engineTime(name string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.engine[name]
}

func cleanup(dc *client.Client, run string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	list, err := dc.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", benchLabel+"="+run))})
	if err != nil {
		log.Printf("cleanup: %v", err)
		return
	}
	for _, c := range list {
		dc.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	}
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

func mean(d []time.Duration) time.Duration {
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(len(d))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
