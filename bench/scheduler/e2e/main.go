// Command e2e measures placement end to end: a Gantry control plane on
// embedded etcd, 1,000 simulated container instances, and concurrent
// clients calling RunTask (count 10) through the AWS SDK for Go v2 until
// 10,000 tasks are placed, each persisted in etcd before RunTask answers.
// It reports placed tasks per second of wall time and RunTask latency
// percentiles, then how long the agents took to report every task RUNNING.
//
// The instances are either real node agents on the simulated runtime (the
// code `gantry agent --runtime sim` runs; testcluster.StartSimFleet), which
// also receive, start and report their tasks while RunTasks go on, on the
// same two cores; or, with -agents heartbeat, instances that register and
// heartbeat over the agent protocol and do nothing else, which isolates the
// control plane's placement path.
//
// Everything shares one process; -cpuprofile profiles all of it. Results
// and commands are in docs/benchmarks.md:
//
//	go run ./bench/scheduler/e2e
//	go run ./bench/scheduler/e2e -agents heartbeat -cpuprofile /tmp/e2e.prof
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/bench/internal/rusage"
	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/testcluster"
	"github.com/gantry-dev/gantry/server"
)

const (
	accessKey = "GKIABENCHACCESSKEY00"
	secretKey = "bench/secret/key/for/gantry/e2e/000000"
	region    = "us-east-1"
	cluster   = "bench"
)

var (
	instances   = flag.Int("instances", 1000, "container instances")
	tasks       = flag.Int("tasks", 10000, "tasks to place")
	clients     = flag.Int("clients", 16, "concurrent RunTask callers")
	count       = flag.Int("count", 10, "tasks per RunTask")
	agents      = flag.String("agents", "sim", "sim: node agents on the simulated runtime; heartbeat: instances that only heartbeat")
	strategy    = flag.String("strategy", "default", "default (spread zone, then instance), binpack, or random")
	startDelay  = flag.Duration("start-delay", 0, "simulated container start time (sim agents)")
	cpuprofile  = flag.String("cpuprofile", "", "write a CPU profile of the RunTask phase here")
	waitRunning = flag.Duration("wait-running", 5*time.Minute, "with sim agents, how long to wait for every task to be RUNNING")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	dir, err := os.MkdirTemp("", "gantry-bench-e2e-")
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
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 4 * *clients
	api := awsecs.New(awsecs.Options{Region: region, BaseEndpoint: aws.String(srv.URL()), RetryMaxAttempts: 1,
		HTTPClient:  &http.Client{Transport: tr},
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")})
	if _, err := api.CreateCluster(ctx, &awsecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		log.Fatal(err)
	}

	start := time.Now()
	switch *agents {
	case "sim":
		fleet, err := testcluster.StartSimFleet(ctx, testcluster.SimFleetConfig{Server: srv.URL(), Cluster: cluster, Token: srv.JoinToken(),
			N: *instances, StartDelay: *startDelay, DataDir: dir + "/agents", Logger: quiet})
		if err != nil {
			log.Fatal(err)
		}
		defer fleet.Close()
	case "heartbeat":
		if err := heartbeatFleet(ctx, srv.URL(), srv.JoinToken(), *instances); err != nil {
			log.Fatal(err)
		}
	default:
		log.Fatalf("-agents %q: sim or heartbeat", *agents)
	}
	fmt.Printf("%d %s instances registered in %v\n", *instances, *agents, time.Since(start).Round(time.Millisecond))

	td, err := api.RegisterTaskDefinition(ctx, &awsecs.RegisterTaskDefinitionInput{
		Family: aws.String("bench"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("gantry-testapp:latest"), Cpu: 64, Memory: aws.Int32(128), Essential: aws.Bool(true),
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	in := awsecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: td.TaskDefinition.TaskDefinitionArn, Count: aws.Int32(int32(*count))}
	switch *strategy {
	case "default":
	case "binpack":
		in.PlacementStrategy = []types.PlacementStrategy{{Type: types.PlacementStrategyTypeBinpack, Field: aws.String("memory")}}
	case "random":
		in.PlacementStrategy = []types.PlacementStrategy{{Type: types.PlacementStrategyTypeRandom}}
	default:
		log.Fatalf("-strategy %q", *strategy)
	}

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
	}
	cpu0 := rusage.Self()
	calls := (*tasks + *count - 1) / *count
	var next, placed, failed atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var errs []error
	var wg sync.WaitGroup
	start = time.Now()
	for range *clients {
		wg.Go(func() {
			for next.Add(1) <= int64(calls) {
				call := in
				t0 := time.Now()
				out, err := api.RunTask(ctx, &call)
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
				if err == nil {
					placed.Add(int64(len(out.Tasks)))
					if len(out.Tasks) < *count {
						failed.Add(int64(*count - len(out.Tasks)))
					}
				}
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	cpu := rusage.Self() - cpu0
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	if len(errs) > 0 {
		log.Printf("%d RunTask errors, first: %v", len(errs), errs[0])
	}
	fmt.Printf("RunTask count %d from %d clients, strategy %s, %d instances (%s), GOMAXPROCS %d\n",
		*count, *clients, *strategy, *instances, *agents, runtime.GOMAXPROCS(0))
	fmt.Printf("placed %d tasks (%d not placed) in %v: %.0f tasks/s, %.0f RunTask/s\n", placed.Load(), failed.Load(),
		wall.Round(time.Millisecond), float64(placed.Load())/wall.Seconds(), float64(len(lat))/wall.Seconds())
	fmt.Printf("RunTask latency: p50 %v  p90 %v  p99 %v  max %v\n", pct(lat, 50), pct(lat, 90), pct(lat, 99), pct(lat, 100))
	// CPU per task moves far less with other people's load than wall time.
	fmt.Printf("process CPU %v (user+sys): %.0f µs per placed task, %.2f of %d cores busy\n", cpu.Round(time.Millisecond),
		float64(cpu.Microseconds())/float64(max(placed.Load(), 1)), cpu.Seconds()/wall.Seconds(), runtime.NumCPU())

	if *agents == "sim" {
		t0 := time.Now()
		deadline := t0.Add(*waitRunning)
		for time.Now().Before(deadline) {
			d, err := api.DescribeClusters(ctx, &awsecs.DescribeClustersInput{Clusters: []string{cluster}})
			if err != nil {
				log.Fatal(err)
			}
			if c := d.Clusters[0]; int64(c.RunningTasksCount) >= placed.Load() {
				fmt.Printf("all %d tasks RUNNING %v after the last RunTask answered (%v from the first RunTask)\n",
					c.RunningTasksCount, time.Since(t0).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		fmt.Printf("not every task RUNNING after %v\n", *waitRunning)
	}
}

// heartbeatFleet registers n instances over the agent protocol and keeps
// them heartbeating until ctx ends; they never open an assignments stream
// or report a task.
func heartbeatFleet(ctx context.Context, url, token string, n int) error {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	hc := &http.Client{Transport: tr}
	call := func(path, bearer string, body, out any) error {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", path, resp.Status)
		}
		return json.NewDecoder(resp.Body).Decode(out)
	}
	zones := []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	toks := make([]string, n)
	var interval time.Duration
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var resp protocol.RegisterResponse
			err := call(protocol.PathRegister, token, protocol.RegisterRequest{
				Cluster: cluster, Hostname: fmt.Sprint("hb-", i),
				Resources: []ecs.Resource{ecs.IntegerResource(ecs.ResourceCPU, 2048), ecs.IntegerResource(ecs.ResourceMemory, 4096),
					ecs.PortsResource(ecs.ResourcePorts, ecs.ReservedPorts), ecs.PortsResource(ecs.ResourcePortsUDP, nil)},
				Attributes:  []ecs.Attribute{{Name: ecs.AttributeAvailabilityZone, Value: zones[i%3]}, {Name: "ecs.os-type", Value: "linux"}},
				VersionInfo: ecs.VersionInfo{AgentVersion: "heartbeat"},
			}, &resp)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			toks[i] = resp.InstanceToken
			interval = time.Duration(resp.HeartbeatIntervalMillis) * time.Millisecond
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	go func() {
		tick := time.NewTicker(interval / 2)
		defer tick.Stop()
		for {
			for _, tok := range toks {
				var hb protocol.HeartbeatResponse
				if call(protocol.PathHeartbeat, tok, protocol.HeartbeatRequest{}, &hb) != nil && ctx.Err() != nil {
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return nil
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)].Round(100 * time.Microsecond)
}
