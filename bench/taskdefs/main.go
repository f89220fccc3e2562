// Command taskdefs measures task definition calls end to end through the
// AWS SDK for Go v2 (SigV4 signing included) against a real Gantry server on
// embedded etcd:
//
//	register           RegisterTaskDefinition, each worker its own family
//	register-1family   RegisterTaskDefinition, every worker the same family
//	                   (all contend for the family's revision counter)
//	describe-latest    DescribeTaskDefinition by family (latest ACTIVE)
//	describe-revision  DescribeTaskDefinition by family:revision
//
// The task definition is a realistic Fargate service (two containers,
// secrets, health check, awslogs, tags). Results are in
// docs/task-definitions.md; run with
//
//	go run ./bench/taskdefs -duration 10s -concurrency 8 -runs 5
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gantry-dev/gantry/server"
)

const (
	accessKey = "GKIABENCHACCESSKEY00"
	secretKey = "bench/secret/key/for/gantry/taskdefs/000"
	region    = "us-east-1"
)

var (
	duration    = flag.Duration("duration", 10*time.Second, "measured time per target per round")
	concurrency = flag.Int("concurrency", 8, "concurrent callers, each with its own client")
	runs        = flag.Int("runs", 5, "rounds; targets rotate order each round")
)

// A target is one thing measured; newCaller runs once per worker (w is the
// worker's number) and returns the call the worker repeats.
type target struct {
	name      string
	newCaller func(w int) func(context.Context) error
}

type result struct {
	reqs          float64 // per second
	p50, p90, p99 time.Duration
	errs          int
	firstErr      error
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	ctx := context.Background()

	dir, err := os.MkdirTemp("", "gantry-bench-taskdefs-")
	check(err)
	defer os.RemoveAll(dir)
	srv, err := server.New(server.Config{
		Listen: "127.0.0.1:0", DataDir: dir, Region: region, AccountID: "123456789012",
		AccessKeyID: accessKey, SecretAccessKey: secretKey,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	check(err)
	check(srv.Start(ctx))
	defer srv.Close()

	// The describe targets read a family with a few revisions.
	setup := client(srv.URL())
	for range 5 {
		_, err := setup.RegisterTaskDefinition(ctx, taskDefinition("orders-api"))
		check(err)
	}

	register := func(family func(w int) string) func(w int) func(context.Context) error {
		return func(w int) func(context.Context) error {
			c, in := client(srv.URL()), taskDefinition(family(w))
			return func(ctx context.Context) error {
				out, err := c.RegisterTaskDefinition(ctx, in)
				if err == nil && out.TaskDefinition.Revision < 1 {
					err = fmt.Errorf("registered revision %d", out.TaskDefinition.Revision)
				}
				return err
			}
		}
	}
	describe := func(ref string) func(w int) func(context.Context) error {
		return func(int) func(context.Context) error {
			c := client(srv.URL())
			in := &awsecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(ref), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}}
			return func(ctx context.Context) error {
				out, err := c.DescribeTaskDefinition(ctx, in)
				if err == nil && (len(out.TaskDefinition.ContainerDefinitions) != 2 || len(out.Tags) != 2) {
					err = fmt.Errorf("unexpected answer: %d containers, %d tags", len(out.TaskDefinition.ContainerDefinitions), len(out.Tags))
				}
				return err
			}
		}
	}
	targets := []target{
		{"register", register(func(w int) string { return fmt.Sprintf("bench-%d", w) })},
		{"register-1family", register(func(int) string { return "bench-shared" })},
		{"describe-latest", describe("orders-api")},
		{"describe-revision", describe("orders-api:3")},
	}

	all := map[string][]result{}
	fmt.Printf("Task definitions, concurrency %d, %s per target, %d rounds, GOMAXPROCS=%d\n",
		*concurrency, *duration, *runs, runtime.GOMAXPROCS(0))
	for round := range *runs {
		order := append(slices.Clone(targets[round%len(targets):]), targets[:round%len(targets)]...)
		for _, t := range order {
			r := measure(t, *concurrency, *duration)
			all[t.name] = append(all[t.name], r)
			fmt.Printf("round %d  %-17s %7.0f req/s  p50 %-9v p90 %-9v p99 %-9v errors %d\n",
				round+1, t.name, r.reqs, r.p50, r.p90, r.p99, r.errs)
			if r.firstErr != nil {
				fmt.Printf("    first error: %v\n", r.firstErr)
			}
		}
	}
	report(targets, all)
	for _, rs := range all {
		for _, r := range rs {
			if r.errs > 0 {
				log.Fatal("FAIL: some calls returned errors")
			}
		}
	}
}

// taskDefinition is a Fargate web service as people write them.
func taskDefinition(family string) *awsecs.RegisterTaskDefinitionInput {
	logs := func(prefix string) *types.LogConfiguration {
		return &types.LogConfiguration{LogDriver: types.LogDriverAwslogs, Options: map[string]string{
			"awslogs-group": "/ecs/" + family, "awslogs-region": region, "awslogs-stream-prefix": prefix,
		}}
	}
	return &awsecs.RegisterTaskDefinitionInput{
		Family:                  aws.String(family),
		TaskRoleArn:             aws.String("arn:aws:iam::123456789012:role/orders-api-task"),
		ExecutionRoleArn:        aws.String("arn:aws:iam::123456789012:role/ecsTaskExecutionRole"),
		NetworkMode:             types.NetworkModeAwsvpc,
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		Cpu:                     aws.String("1 vCPU"),
		Memory:                  aws.String("2 GB"),
		ContainerDefinitions: []types.ContainerDefinition{
			{
				Name:         aws.String("app"),
				Image:        aws.String("123456789012.dkr.ecr.us-east-1.amazonaws.com/orders-api:v3.14.0"),
				Essential:    aws.Bool(true),
				PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080), Name: aws.String("http"), AppProtocol: types.ApplicationProtocolHttp}},
				Environment: []types.KeyValuePair{
					{Name: aws.String("PORT"), Value: aws.String("8080")},
					{Name: aws.String("LOG_LEVEL"), Value: aws.String("info")},
				},
				Secrets: []types.Secret{
					{Name: aws.String("DATABASE_URL"), ValueFrom: aws.String("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/orders/db-AbCdEf")},
				},
				HealthCheck:      &types.HealthCheck{Command: []string{"CMD-SHELL", "wget -qO- http://localhost:8080/healthz || exit 1"}},
				DependsOn:        []types.ContainerDependency{{ContainerName: aws.String("xray"), Condition: types.ContainerConditionStart}},
				LogConfiguration: logs("app"),
			},
			{
				Name:              aws.String("xray"),
				Image:             aws.String("public.ecr.aws/xray/aws-xray-daemon:3.3.10"),
				Essential:         aws.Bool(false),
				Cpu:               32,
				MemoryReservation: aws.Int32(64),
				PortMappings:      []types.PortMapping{{ContainerPort: aws.Int32(2000), Protocol: types.TransportProtocolUdp}},
				LogConfiguration:  logs("xray"),
			},
		},
		Tags: []types.Tag{
			{Key: aws.String("env"), Value: aws.String("prod")},
			{Key: aws.String("team"), Value: aws.String("orders")},
		},
	}
}

// client is an ECS client with retries off, so every error is counted.
func client(url string) *awsecs.Client {
	return awsecs.New(awsecs.Options{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		BaseEndpoint: aws.String(url),
		Retryer:      aws.NopRetryer{},
	})
}

// measure runs workers callers for d after each has made one untimed call
// (which also opens its connection), and records every call's latency.
func measure(t target, workers int, d time.Duration) result {
	ctx := context.Background()
	lat := make([][]time.Duration, workers)
	errs := make([]int, workers)
	var firstErr error
	var mu sync.Mutex
	record := func(w int, err error) {
		if err == nil {
			return
		}
		errs[w]++
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	var deadline time.Time
	for w := range workers {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			call := t.newCaller(w)
			record(w, call(ctx))
			ready.Done()
			<-start
			ls := make([]time.Duration, 0, 1<<14)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				err := call(ctx)
				ls = append(ls, time.Since(t0))
				record(w, err)
			}
			lat[w] = ls
		}()
	}
	ready.Wait()
	t0 := time.Now()
	deadline = t0.Add(d)
	close(start)
	done.Wait()
	elapsed := time.Since(t0)

	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(p*float64(len(all))))]
	}
	n := 0
	for _, e := range errs {
		n += e
	}
	return result{reqs: float64(len(all)) / elapsed.Seconds(), p50: pct(0.50), p90: pct(0.90), p99: pct(0.99), errs: n, firstErr: firstErr}
}

// report prints medians across rounds as a Markdown table.
func report(targets []target, all map[string][]result) {
	med := func(name string, f func(result) float64) float64 {
		var xs []float64
		for _, r := range all[name] {
			xs = append(xs, f(r))
		}
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	ms := func(f func(result) time.Duration) func(result) float64 {
		return func(r result) float64 { return float64(f(r)) / 1e6 }
	}
	fmt.Printf("\nMedians of %d rounds, concurrency %d:\n\n", *runs, *concurrency)
	fmt.Println("| call | req/s | p50 ms | p90 ms | p99 ms |")
	fmt.Println("|---|---:|---:|---:|---:|")
	for _, t := range targets {
		n := t.name
		fmt.Printf("| %s | %.0f | %.2f | %.2f | %.2f |\n", n,
			med(n, func(r result) float64 { return r.reqs }),
			med(n, ms(func(r result) time.Duration { return r.p50 })),
			med(n, ms(func(r result) time.Duration { return r.p90 })),
			med(n, ms(func(r result) time.Duration { return r.p99 })))
	}
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
