// Command services compares Gantry's services with Docker Swarm mode's on
// the same Docker engine, with the same image and command, one after the
// other in one run:
//
//  1. create a service of N replicas (10 and 50) and time it until the
//     engine runs every container, and until the orchestrator's API says
//     every task runs; next to them, the engine alone creating and starting
//     as many containers in parallel;
//  2. kill one task's container (SIGKILL through the Engine API) and time
//     it until the replacement container runs, and until the API says its
//     task runs, K times; Swarm with its default restart delay (5 s) and
//     with the delay set to 0;
//  3. roll 20 replicas to a new version, one task at a time (Swarm's
//     default --update-parallelism 1, stop-first; Gantry
//     minimumHealthyPercent 100, maximumPercent 105, which allows one extra
//     task) and all at once (Swarm parallelism 20; Gantry's default
//     100/200), until the update is complete.
//
// Gantry is a control plane in this process (embedded etcd) with an
// in-process agent on the engine, pulling as ECS_IMAGE_PULL_BEHAVIOR
// prefer-cached does (Swarm's services are created with --no-resolve-image:
// neither contacts a registry for the local test image). Swarm mode is
// initialised here (`docker swarm init --advertise-addr 127.0.0.1`) only if
// the engine is in no swarm, and left (`docker swarm leave --force`) on every
// way out, an interrupt included. Killed containers have run at least
// -min-age, so a kill is a failure in steady state, not a crash loop.
//
// The engine is watched through its events, not polled. With -rounds n,
// the engine alone, Gantry and Swarm take turns n times and the report
// gives medians over the rounds and Swarm's over Gantry's.
//
//	go run ./bench/services -rounds 3 -kills 10
//	go run ./bench/services -kills 10 -phases create,kill
//	go run ./bench/services -only gantry -phases create -replicas 50 -timeline
//
// Results: docs/benchmarks.md.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/gantry-dev/gantry/agent"
	"github.com/gantry-dev/gantry/agent/runtime/docker"
	"github.com/gantry-dev/gantry/internal/testimage"
	"github.com/gantry-dev/gantry/server"
)

const (
	accessKey  = "GKIABENCHACCESSKEY00"
	secretKey  = "bench/secret/key/for/gantry/services/0"
	region     = "us-east-1"
	cluster    = "bench"
	image      = "gantry-testapp:latest"
	benchLabel = "dev.gantry.bench"
)

var (
	replicas     = flag.String("replicas", "10,50", "service sizes for the create phase")
	kills        = flag.Int("kills", 20, "containers killed per orchestrator variant")
	killReplicas = flag.Int("kill-replicas", 10, "replicas of the service whose containers are killed")
	updateN      = flag.Int("update", 20, "replicas of the rolling update")
	minAge       = flag.Duration("min-age", 11*time.Second, "a killed container has run at least this long")
	poll         = flag.Duration("poll", 10*time.Millisecond, "polling interval of both orchestrators' APIs")
	phases       = flag.String("phases", "create,kill,update", "phases to run")
	only         = flag.String("only", "", "run only gantry, swarm or engine (the engine-alone rows)")
	timeout      = flag.Duration("timeout", 5*time.Minute, "give up on one measurement after this long")
	floorLimits  = flag.String("floor-limits", "0", "the engine-alone rows: at most this many containers created and started at once (0: all)")
	cpuProfile   = flag.String("cpuprofile", "", "write a CPU profile of this process (Gantry's server and agent, and the benchmark's clients) to this file")
	rounds       = flag.Int("rounds", 1, "run every phase this many times, Gantry and Swarm in turn; medians over all rounds")
	timeline     = flag.Bool("timeline", false, "print where Gantry's time went in the create and update phases (task and container timestamps)")
)

// orchestrator is what the phases need of Gantry and of Swarm.
type orchestrator interface {
	name() string
	// create asks for a service of n replicas.
	create(ctx context.Context, name string, n int) error
	remove(ctx context.Context, name string) error
	// label is the container label ("key=value") the engine shows on the
	// service's containers.
	label(name string) string
	// running lists the service's running tasks as the orchestrator's own
	// API reports them (task IDs).
	running(ctx context.Context, name string) (map[string]bool, error)
	// update rolls the service to a new command, oneAtATime or all at
	// once, and returns once the orchestrator says the update is complete
	// (the old tasks stopped).
	update(ctx context.Context, name string, oneAtATime bool) error
}

// Two clocks stop for each "runs" measurement: when the engine runs the
// container(s) (the same observer for both orchestrators), and when the
// orchestrator's own API reports the task(s) running.

func main() { os.Exit(run()) }

func run() int {
	flag.Parse()
	log.SetFlags(0)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var ref string
	testing.Benchmark(func(b *testing.B) { ref = testimage.Build(b, image) })
	if ref == "" {
		log.Print("could not build the test image: is a Docker engine reachable (DOCKER_HOST)?")
		return 1
	}
	dc, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		log.Print(err)
		return 1
	}
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	defer removeContainers(dc, runID)
	info, err := dc.Info(ctx)
	if err != nil {
		log.Print(err)
		return 1
	}
	fmt.Printf("Gantry services vs Docker Swarm mode on Docker %s, %d CPUs, %s; image %s, command \"sleep 3600\"\n",
		info.ServerVersion, info.NCPU, info.OperatingSystem, image)
	fmt.Printf("polling every %v; killed containers ran at least %v\n\n", *poll, *minAge)

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Print(err)
			return 1
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	var results []result
	for round := 0; round < *rounds && ctx.Err() == nil; round++ {
		if *rounds > 1 {
			log.Printf("round %d of %d", round+1, *rounds)
		}
		got, err := runRound(ctx, dc, ref, runID)
		results = merge(results, got)
		if err != nil {
			log.Print(err)
			return 1
		}
	}
	report(results)
	if ctx.Err() != nil {
		return 1
	}
	return 0
}

// runRound runs every phase once: the engine alone, then Gantry, then
// Swarm (initialised for the round and left after it).
func runRound(ctx context.Context, dc *client.Client, ref, runID string) ([]result, error) {
	var results []result
	if has("create") && (*only == "" || *only == "engine") {
		// The engine's floor: the same containers created and started
		// straight through the Engine API, all at once.
		for _, f := range strings.Split(*replicas, ",") {
			for _, l := range strings.Split(*floorLimits, ",") {
				limit, _ := strconv.Atoi(l)
				if n, _ := strconv.Atoi(f); n > 0 && ctx.Err() == nil {
					d, err := floor(ctx, dc, ref, runID, n, limit)
					who := "engine alone"
					if limit > 0 && limit < n {
						who = fmt.Sprintf("engine alone, %d at once", limit)
					}
					results = append(results, result{who, fmt.Sprintf("create %d replicas: containers running", n), []time.Duration{d}, err})
				}
			}
		}
	}
	if *only != "swarm" && *only != "engine" {
		g, err := startGantry(ctx, dc, ref, runID)
		if err != nil {
			return results, fmt.Errorf("gantry: %w", err)
		}
		results = append(results, measure(ctx, dc, g, g.setRestartDelay)...)
		g.close()
	}
	if *only != "gantry" && *only != "engine" && ctx.Err() == nil {
		s, leave, err := startSwarm(ctx, dc, ref, runID)
		if err != nil {
			return results, fmt.Errorf("swarm: %w", err)
		}
		func() {
			defer leave() // also when a phase panics
			results = append(results, measure(ctx, dc, s, s.setRestartDelay)...)
		}()
	}
	return results, nil
}

// merge adds a round's samples to those of the rounds before.
func merge(all, round []result) []result {
	for _, r := range round {
		i := slices.IndexFunc(all, func(a result) bool { return a.orchestrator == r.orchestrator && a.phase == r.phase })
		if i < 0 {
			all = append(all, r)
			continue
		}
		all[i].samples = append(all[i].samples, r.samples...)
		all[i].err = cmp.Or(all[i].err, r.err)
	}
	return all
}

type result struct {
	orchestrator, phase string
	samples             []time.Duration
	err                 error
}

func has(phase string) bool { return slices.Contains(strings.Split(*phases, ","), phase) }

// measure runs the phases on one orchestrator. restartDelay returns the
// kill-phase variants to run (Swarm: its default and 0).
func measure(ctx context.Context, dc *client.Client, o orchestrator, variants func(int) (string, bool)) []result {
	var out []result
	add := func(phase string, d []time.Duration, err error) {
		if err != nil {
			log.Printf("%s %s: %v", o.name(), phase, err)
		}
		out = append(out, result{o.name(), phase, d, err})
	}
	if has("create") {
		for _, f := range strings.Split(*replicas, ",") {
			n, _ := strconv.Atoi(f)
			if n <= 0 || ctx.Err() != nil {
				continue
			}
			name := fmt.Sprintf("create-%d", n)
			t0 := time.Now()
			e, a, err := createTimed(ctx, dc, o, name, n)
			if g, ok := o.(*gantry); ok && *timeline && err == nil {
				g.timeline(ctx, dc, name, t0)
			}
			add(fmt.Sprintf("create %d replicas: containers running", n), e, err)
			add(fmt.Sprintf("create %d replicas: API says running", n), a, err)
			if err := o.remove(ctx, name); err != nil {
				log.Printf("%s: remove %s: %v", o.name(), name, err)
			}
		}
	}
	if has("kill") {
		for v := 0; ctx.Err() == nil; v++ {
			label, ok := variants(v)
			if !ok {
				break
			}
			e, a, err := killPhase(ctx, dc, o)
			add("kill to replacement: container running"+label, e, err)
			add("kill to replacement: API says running"+label, a, err)
		}
	}
	if has("update") {
		for _, one := range []bool{true, false} {
			if ctx.Err() != nil {
				break
			}
			name := fmt.Sprintf("update-%d", *updateN)
			if _, _, err := createTimed(ctx, dc, o, name, *updateN); err != nil {
				add("update", nil, err)
				continue
			}
			start := time.Now()
			err := o.update(ctx, name, one)
			if g, ok := o.(*gantry); ok && *timeline && err == nil {
				g.timeline(ctx, dc, name, start)
			}
			label := fmt.Sprintf("rolling update of %d, one at a time", *updateN)
			if !one {
				label = fmt.Sprintf("rolling update of %d, all at once", *updateN)
			}
			add(label, []time.Duration{time.Since(start)}, err)
			if err := o.remove(ctx, name); err != nil {
				log.Printf("%s: remove %s: %v", o.name(), name, err)
			}
		}
	}
	return out
}

// createTimed creates a service of n replicas and times it until the
// engine runs n containers and until the orchestrator says n run.
func createTimed(ctx context.Context, dc *client.Client, o orchestrator, name string, n int) (engine, api []time.Duration, err error) {
	start := time.Now()
	if err := o.create(ctx, name, n); err != nil {
		return nil, nil, err
	}
	if _, err := waitContainers(ctx, dc, o.label(name), n); err != nil {
		return nil, nil, err
	}
	engine = []time.Duration{time.Since(start)}
	if err := waitTasks(ctx, o, name, n); err != nil {
		return engine, nil, err
	}
	return engine, []time.Duration{time.Since(start)}, nil
}

// killPhase kills the oldest container of a service (once it has run
// -min-age) -kills times and times each until a new container runs and
// until the orchestrator reports a new task running.
func killPhase(ctx context.Context, dc *client.Client, o orchestrator) (engine, api []time.Duration, err error) {
	const name = "kill"
	if _, _, err := createTimed(ctx, dc, o, name, *killReplicas); err != nil {
		return nil, nil, err
	}
	defer o.remove(ctx, name)
	for range *kills {
		before, err := waitContainers(ctx, dc, o.label(name), *killReplicas)
		if err != nil {
			return engine, api, err
		}
		if err := waitTasks(ctx, o, name, *killReplicas); err != nil {
			return engine, api, err
		}
		tasksBefore, err := o.running(ctx, name)
		if err != nil {
			return engine, api, err
		}
		var victim string
		var created time.Time
		for id, c := range before {
			if victim == "" || c.Before(created) {
				victim, created = id, c
			}
		}
		if wait := *minAge - time.Since(created); wait > 0 {
			sleep(ctx, wait)
		}
		// Engine events, subscribed to before the kill: a new container's
		// start is seen when it happens, without polling the engine.
		ectx, cancel := context.WithCancel(ctx)
		starts, eerrs := containerEvents(ectx, dc, o.label(name))
		start := time.Now()
		if err := dc.ContainerKill(ctx, victim, "KILL"); err != nil {
			cancel()
			return engine, api, fmt.Errorf("kill %s: %w", victim, err)
		}
		tick := time.NewTicker(*poll)
		var sawContainer, sawTask bool
		for !sawContainer || !sawTask {
			select {
			case e := <-starts:
				if _, old := before[e.Actor.ID]; !old && e.Action == "start" && !sawContainer {
					sawContainer = true
					engine = append(engine, time.Since(start))
				}
				continue
			case err := <-eerrs:
				cancel()
				return engine, api, fmt.Errorf("engine events: %w", err)
			case <-tick.C:
			case <-ctx.Done():
				cancel()
				return engine, api, ctx.Err()
			}
			if !sawTask {
				now, err := o.running(ctx, name)
				if err != nil {
					cancel()
					return engine, api, err
				}
				for id := range now {
					if !tasksBefore[id] && !sawTask {
						sawTask = true
						api = append(api, time.Since(start))
					}
				}
			}
			if time.Since(start) > *timeout {
				cancel()
				return engine, api, errors.New("no replacement within the timeout")
			}
		}
		tick.Stop()
		cancel()
	}
	return engine, api, nil
}

// containerEvents streams the engine's start and die events of the
// containers with a label.
func containerEvents(ctx context.Context, dc *client.Client, label string) (<-chan events.Message, <-chan error) {
	return dc.Events(ctx, events.ListOptions{Filters: filters.NewArgs(filters.Arg("type", "container"), filters.Arg("label", label),
		filters.Arg("event", "start"), filters.Arg("event", "die"))})
}

// containersRunning lists the running containers with a label: ID ->
// when each was created.
func containersRunning(ctx context.Context, dc *client.Client, label string) (map[string]time.Time, error) {
	list, err := dc.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", label), filters.Arg("status", "running"))})
	if err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for _, c := range list {
		out[c.ID] = time.Unix(c.Created, 0)
	}
	return out, nil
}

// waitContainers waits until n containers with the label run: it looks
// (docker ps) at the start and after each of the engine's start and die
// events, rather than polling the engine, which would load it as much as
// it measures it; once a second as a safety net.
func waitContainers(ctx context.Context, dc *client.Client, label string, n int) (map[string]time.Time, error) {
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	evs, errs := containerEvents(ectx, dc, label)
	deadline := time.Now().Add(*timeout)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		cs, err := containersRunning(ctx, dc, label)
		if err != nil {
			return nil, err
		}
		if len(cs) == n {
			return cs, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d containers running after %v", len(cs), n, *timeout)
		}
		select {
		case <-evs:
		drain: // events that came together: one look
			for {
				select {
				case <-evs:
				default:
					break drain
				}
			}
		case err := <-errs:
			return nil, fmt.Errorf("engine events: %w", err)
		case <-tick.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func waitTasks(ctx context.Context, o orchestrator, name string, n int) error {
	deadline := time.Now().Add(*timeout)
	for {
		ts, err := o.running(ctx, name)
		if err != nil {
			return err
		}
		if len(ts) == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d tasks running after %v", len(ts), n, *timeout)
		}
		if !sleep(ctx, *poll) {
			return ctx.Err()
		}
	}
}

func report(results []result) {
	defer ratios(results)
	fmt.Printf("%-48s %-26s %9s %9s %9s %9s %4s\n", "phase", "orchestrator", "p50", "p90", "max", "mean", "n")
	for _, r := range results {
		if len(r.samples) == 0 {
			fmt.Printf("%-48s %-26s %s\n", r.phase, r.orchestrator, "failed")
			continue
		}
		fmt.Printf("%-48s %-26s %9s %9s %9s %9s %4d\n", r.phase, r.orchestrator, secs(pct(r.samples, 50)), secs(pct(r.samples, 90)),
			secs(slices.Max(r.samples)), secs(mean(r.samples)), len(r.samples))
	}
}

// ratios prints Swarm's median over Gantry's for each phase both ran (Swarm
// with restart delay 0 against Gantry's only kill rows).
func ratios(results []result) {
	fmt.Printf("\n%-64s %9s %9s %7s\n", "phase (p50)", "gantry", "swarm", "ratio")
	for _, sw := range results {
		if !strings.HasPrefix(sw.orchestrator, "swarm") || len(sw.samples) == 0 {
			continue
		}
		phase := strings.Replace(sw.phase, " (restart delay 0)", "", 1)
		i := slices.IndexFunc(results, func(r result) bool { return r.orchestrator == "gantry" && r.phase == phase })
		if i < 0 || len(results[i].samples) == 0 {
			continue
		}
		g, w := pct(results[i].samples, 50), pct(sw.samples, 50)
		fmt.Printf("%-64s %9s %9s %6.1fx\n", sw.phase, secs(g), secs(w), w.Seconds()/g.Seconds())
	}
}

// --- Gantry ---------------------------------------------------------------

type gantry struct {
	srv       *server.Server
	srvDocker *client.Client // the engine the agent runs on
	api       *awsecs.Client
	ref       string
	close     func()
}

func (g *gantry) name() string { return "gantry" }

func (g *gantry) setRestartDelay(v int) (string, bool) { return "", v == 0 }

func startGantry(ctx context.Context, dc *client.Client, ref, runID string) (*gantry, error) {
	dir, err := os.MkdirTemp("", "gantry-bench-services-")
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", DataDir: dir, Region: region, AccountID: "123456789012",
		AccessKeyID: accessKey, SecretAccessKey: secretKey, Logger: quiet})
	if err != nil {
		return nil, err
	}
	if err := srv.Start(ctx); err != nil {
		return nil, err
	}
	api := awsecs.New(awsecs.Options{Region: region, BaseEndpoint: aws.String(srv.URL()),
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")})
	rt, err := docker.New(docker.Options{Logger: quiet})
	if err != nil {
		return nil, err
	}
	a, err := agent.New(agent.Config{Server: srv.URL(), Cluster: cluster, Token: srv.JoinToken(), DataDir: dir + "/agent",
		Runtime: rt, PullBehavior: agent.PullPreferCached, Labels: map[string]string{benchLabel: runID}, Logger: quiet,
		AvailabilityZone: region + "a"})
	if err != nil {
		return nil, err
	}
	if _, err := api.CreateCluster(ctx, &awsecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		return nil, err
	}
	actx, acancel := context.WithCancel(context.Background())
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.Run(actx) }()
	select {
	case <-a.Ready():
	case err := <-agentDone:
		acancel()
		return nil, fmt.Errorf("agent: %v", err)
	case <-ctx.Done():
		acancel()
		return nil, ctx.Err()
	}
	g := &gantry{srv: srv, srvDocker: dc, api: api, ref: ref}
	g.close = func() {
		acancel()
		<-agentDone
		rt.Close()
		srv.Close()
		removeContainers(dc, runID)
		os.RemoveAll(dir)
	}
	return g, nil
}

// taskDefinition registers the family a service's containers are found
// by (the agent labels them with it), running sleep arg.
func (g *gantry) taskDefinition(ctx context.Context, name, arg string) (string, error) {
	td, err := g.api.RegisterTaskDefinition(ctx, &awsecs.RegisterTaskDefinitionInput{
		Family: aws.String("bench-" + name),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String(g.ref), Memory: aws.Int32(32), Essential: aws.Bool(true),
			Command: []string{"sleep", arg},
		}},
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(td.TaskDefinition.TaskDefinitionArn), nil
}

func (g *gantry) label(name string) string {
	return "com.amazonaws.ecs.task-definition-family=bench-" + name
}

func (g *gantry) create(ctx context.Context, name string, n int) error {
	td, err := g.taskDefinition(ctx, name, "3600")
	if err != nil {
		return err
	}
	_, err = g.api.CreateService(ctx, &awsecs.CreateServiceInput{Cluster: aws.String(cluster), ServiceName: aws.String(name),
		TaskDefinition: aws.String(td), DesiredCount: aws.Int32(int32(n))})
	return err
}

func (g *gantry) wait(ctx context.Context, name string, ok func(types.Service) bool) error {
	deadline := time.Now().Add(*timeout)
	for {
		out, err := g.api.DescribeServices(ctx, &awsecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{name}})
		if err != nil {
			return err
		}
		if len(out.Services) == 1 && ok(out.Services[0]) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("service %s: timed out", name)
		}
		if !sleep(ctx, *poll) {
			return ctx.Err()
		}
	}
}

func (g *gantry) remove(ctx context.Context, name string) error {
	if _, err := g.api.DeleteService(ctx, &awsecs.DeleteServiceInput{Cluster: aws.String(cluster), Service: aws.String(name), Force: aws.Bool(true)}); err != nil {
		return err
	}
	if err := g.wait(ctx, name, func(s types.Service) bool { return aws.ToString(s.Status) == "INACTIVE" }); err != nil {
		return err
	}
	// INACTIVE comes once every task is STOPPING: wait for the containers
	// to stop too, or a service created next under the same name would
	// count them (Swarm's remove waits for its containers to go).
	_, err := waitContainers(ctx, g.srvDocker, g.label(name), 0)
	return err
}

func (g *gantry) running(ctx context.Context, name string) (map[string]bool, error) {
	list, err := g.api.ListTasks(ctx, &awsecs.ListTasksInput{Cluster: aws.String(cluster), ServiceName: aws.String(name)})
	if err != nil || len(list.TaskArns) == 0 {
		return map[string]bool{}, err
	}
	out := map[string]bool{}
	for arns := range slices.Chunk(list.TaskArns, 100) {
		d, err := g.api.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns})
		if err != nil {
			return nil, err
		}
		for _, t := range d.Tasks {
			if aws.ToString(t.LastStatus) == "RUNNING" {
				out[aws.ToString(t.TaskArn)] = true
			}
		}
	}
	return out, nil
}

func (g *gantry) update(ctx context.Context, name string, oneAtATime bool) error {
	td, err := g.taskDefinition(ctx, name, "3601")
	if err != nil {
		return err
	}
	max := int32(200)
	if oneAtATime {
		// One task above desiredCount: floor(n * max / 100) = n + 1.
		max = int32(100 + (100+*updateN-1) / *updateN)
	}
	_, err = g.api.UpdateService(ctx, &awsecs.UpdateServiceInput{Cluster: aws.String(cluster), Service: aws.String(name),
		TaskDefinition:          aws.String(td),
		DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(100), MaximumPercent: aws.Int32(max)}})
	if err != nil {
		return err
	}
	return g.wait(ctx, name, func(s types.Service) bool {
		return len(s.Deployments) == 1 && aws.ToString(s.Deployments[0].TaskDefinition) == td &&
			s.Deployments[0].RolloutState == types.DeploymentRolloutStateCompleted
	})
}

// timeline prints, for the service's tasks created or stopped since t0,
// when each reached the milestones the server and the engine record,
// counted from t0: p10, p50, p90 and max over the tasks.
func (g *gantry) timeline(ctx context.Context, dc *client.Client, name string, t0 time.Time) {
	var arns []string
	for _, st := range []types.DesiredStatus{types.DesiredStatusRunning, types.DesiredStatusStopped} {
		list, err := g.api.ListTasks(ctx, &awsecs.ListTasksInput{Cluster: aws.String(cluster), ServiceName: aws.String(name), DesiredStatus: st})
		if err != nil {
			log.Printf("timeline: %v", err)
			return
		}
		arns = append(arns, list.TaskArns...)
	}
	ms := map[string][]time.Duration{}
	var order []string
	add := func(k string, at time.Time) {
		if at.IsZero() || at.Before(t0) {
			return
		}
		if _, ok := ms[k]; !ok {
			order = append(order, k)
		}
		ms[k] = append(ms[k], at.Sub(t0))
	}
	for arns := range slices.Chunk(arns, 100) {
		d, err := g.api.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns})
		if err != nil {
			log.Printf("timeline: %v", err)
			return
		}
		for _, t := range d.Tasks {
			if at := aws.ToTime(t.CreatedAt); at.After(t0) {
				add("task placed (createdAt)", at)
				add("agent pulls (pullStartedAt)", aws.ToTime(t.PullStartedAt))
				if len(t.Containers) > 0 && t.Containers[0].RuntimeId != nil {
					if c, err := dc.ContainerInspect(ctx, *t.Containers[0].RuntimeId); err == nil {
						created, _ := time.Parse(time.RFC3339Nano, c.Created)
						started, _ := time.Parse(time.RFC3339Nano, c.State.StartedAt)
						add("engine created the container", created)
						add("engine started it", started)
					}
				}
				add("server hears RUNNING (startedAt)", aws.ToTime(t.StartedAt))
			}
			add("old task: stopping (stoppingAt)", aws.ToTime(t.StoppingAt))
			add("old task: exited (executionStoppedAt)", aws.ToTime(t.ExecutionStoppedAt))
			add("old task: STOPPED (stoppedAt)", aws.ToTime(t.StoppedAt))
		}
	}
	fmt.Printf("timeline of %s from the create/update call (%d tasks):\n", name, len(arns))
	for _, k := range order {
		d := ms[k]
		fmt.Printf("  %-40s p10 %s  p50 %s  p90 %s  max %s  (%d)\n", k, secs(pct(d, 10)), secs(pct(d, 50)), secs(pct(d, 90)), secs(slices.Max(d)), len(d))
	}
}

// --- Swarm ----------------------------------------------------------------

type swarmMode struct {
	dc           *client.Client
	ref, runID   string
	restartDelay time.Duration
}

func (s *swarmMode) name() string {
	return fmt.Sprintf("swarm (restart delay %v)", s.restartDelay)
}

// setRestartDelay: variant 0 is Swarm's default (5 s), 1 is delay 0.
func (s *swarmMode) setRestartDelay(v int) (string, bool) {
	switch v {
	case 0:
		s.restartDelay = 5 * time.Second
		return "", true
	case 1:
		s.restartDelay = 0
		return " (restart delay 0)", true
	}
	s.restartDelay = 5 * time.Second
	return "", false
}

// startSwarm initialises Swarm mode on an engine that is in no swarm; leave
// (docker swarm leave --force) must be called on every way out.
func startSwarm(ctx context.Context, dc *client.Client, ref, runID string) (*swarmMode, func(), error) {
	info, err := dc.Info(ctx)
	if err != nil {
		return nil, nil, err
	}
	if st := info.Swarm.LocalNodeState; st != swarm.LocalNodeStateInactive {
		return nil, nil, fmt.Errorf("the engine is already in a swarm (%s); refusing to touch it", st)
	}
	if _, err := dc.SwarmInit(ctx, swarm.InitRequest{ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1"}); err != nil {
		return nil, nil, fmt.Errorf("docker swarm init: %w", err)
	}
	var once sync.Once
	leave := func() {
		once.Do(func() {
			lctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := dc.SwarmLeave(lctx, true); err != nil {
				log.Printf("docker swarm leave --force: %v (leave it by hand!)", err)
			}
		})
	}
	// A signal must not leave the swarm behind: this trap runs even if a
	// phase is stuck in a Docker call.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sig:
			leave()
			os.Exit(1)
		case <-done:
		}
	}()
	return &swarmMode{dc: dc, ref: ref, runID: runID, restartDelay: 5 * time.Second}, func() {
		close(done)
		signal.Stop(sig)
		leave()
	}, nil
}

func (s *swarmMode) spec(name string, n int, args []string, oneAtATime bool) swarm.ServiceSpec {
	replicas := uint64(n)
	delay := s.restartDelay
	par := uint64(1)
	if !oneAtATime {
		par = uint64(n)
	}
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "bench-" + name, Labels: map[string]string{benchLabel: s.runID}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: s.ref, Args: args, Labels: map[string]string{benchLabel: s.runID}},
			Resources:     &swarm.ResourceRequirements{Limits: &swarm.Limit{MemoryBytes: 32 << 20}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: &delay},
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		// The docker CLI's defaults: one at a time, stop-first, pause on
		// failure, 5 s monitor.
		UpdateConfig: &swarm.UpdateConfig{Parallelism: par, Order: swarm.UpdateOrderStopFirst, FailureAction: swarm.UpdateFailureActionPause, Monitor: 5 * time.Second},
	}
}

func (s *swarmMode) create(ctx context.Context, name string, n int) error {
	_, err := s.dc.ServiceCreate(ctx, s.spec(name, n, []string{"sleep", "3600"}, true), swarm.ServiceCreateOptions{QueryRegistry: false})
	return err
}

func (s *swarmMode) label(name string) string { return "com.docker.swarm.service.name=bench-" + name }

func (s *swarmMode) remove(ctx context.Context, name string) error {
	if err := s.dc.ServiceRemove(ctx, "bench-"+name); err != nil {
		return err
	}
	deadline := time.Now().Add(*timeout)
	for {
		list, err := s.dc.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.name=bench-"+name))})
		if err != nil {
			return err
		}
		if len(list) == 0 || time.Now().After(deadline) {
			return nil
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func (s *swarmMode) running(ctx context.Context, name string) (map[string]bool, error) {
	ts, err := s.dc.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", "bench-"+name), filters.Arg("desired-state", "running"))})
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, t := range ts {
		if t.Status.State == swarm.TaskStateRunning {
			out[t.ID] = true
		}
	}
	return out, nil
}

func (s *swarmMode) update(ctx context.Context, name string, oneAtATime bool) error {
	svc, _, err := s.dc.ServiceInspectWithRaw(ctx, "bench-"+name, swarm.ServiceInspectOptions{})
	if err != nil {
		return err
	}
	spec := s.spec(name, int(*svc.Spec.Mode.Replicated.Replicas), []string{"sleep", "3601"}, oneAtATime)
	if _, err := s.dc.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{QueryRegistry: false}); err != nil {
		return err
	}
	deadline := time.Now().Add(*timeout)
	for {
		svc, _, err := s.dc.ServiceInspectWithRaw(ctx, svc.ID, swarm.ServiceInspectOptions{})
		if err != nil {
			return err
		}
		if u := svc.UpdateStatus; u != nil && u.State == swarm.UpdateStateCompleted {
			return nil
		}
		if u := svc.UpdateStatus; u != nil && (u.State == swarm.UpdateStatePaused || u.State == swarm.UpdateStateRollbackCompleted) {
			return fmt.Errorf("update %s: %s", u.State, u.Message)
		}
		if time.Now().After(deadline) {
			return errors.New("update timed out")
		}
		if !sleep(ctx, *poll) {
			return ctx.Err()
		}
	}
}

// --- helpers --------------------------------------------------------------

// floor creates and starts n containers of the benchmark's image, command
// and memory limit through the Engine API in parallel (at most limit at
// once, if limit > 0), and removes them.
func floor(ctx context.Context, dc *client.Client, ref, runID string, n, limit int) (time.Duration, error) {
	defer removeContainers(dc, runID)
	if limit <= 0 {
		limit = n
	}
	sem := make(chan struct{}, limit)
	start := time.Now()
	errs := make(chan error, n)
	for i := range n {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			resp, err := dc.ContainerCreate(ctx, &container.Config{Image: ref, Cmd: []string{"sleep", "3600"}, Labels: map[string]string{benchLabel: runID}},
				&container.HostConfig{Resources: container.Resources{Memory: 32 << 20}}, nil, nil, fmt.Sprintf("bench-floor-%s-%d", runID, i))
			if err == nil {
				err = dc.ContainerStart(ctx, resp.ID, container.StartOptions{})
			}
			errs <- err
		}()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return time.Since(start), first
}

func removeContainers(dc *client.Client, runID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	list, err := dc.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", benchLabel+"="+runID))})
	if err != nil {
		return
	}
	for _, c := range list {
		dc.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
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

func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }
