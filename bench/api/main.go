// Command api measures a cheap ECS call, DescribeClusters, end to end through
// the AWS SDK for Go v2 (SigV4 signing included) against a real Gantry server
// on embedded etcd, next to peers measured in the same process and rounds:
//
//	floor     a bare net/http handler answering Gantry's own response bytes
//	sigv4     the same handler after sigv4.Verifier.Verify (the auth cost)
//	etcd      one Get of the cluster key on the server's etcd client
//	etcd×3    that Get plus the two prefix counts DescribeClusters makes
//	etcd txn  the same three reads in one etcd transaction (one read index)
//
// Results and how to read the profile are in docs/benchmarks.md:
//
//	go run ./bench/api -duration 10s -concurrency 8 -runs 5 -cpuprofile /tmp/api.prof
package main

import (
	"bytes"
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gantry-dev/gantry/bench/internal/rusage"
	"github.com/gantry-dev/gantry/internal/sigv4"
	"github.com/gantry-dev/gantry/server"
	"github.com/gantry-dev/gantry/state"
)

const (
	accessKey = "GKIABENCHACCESSKEY00"
	secretKey = "bench/secret/key/for/gantry/api/bench0000"
	region    = "us-east-1"
	cluster   = "bench"
)

var (
	duration    = flag.Duration("duration", 10*time.Second, "measured time per target per round")
	concurrency = flag.Int("concurrency", 8, "concurrent callers, each reusing its own client")
	runs        = flag.Int("runs", 5, "rounds; the order of targets rotates each round")
	cpuprofile  = flag.String("cpuprofile", "", "write a CPU profile of the Gantry phases only")
)

// A call makes one request. A target's newCall runs once per worker, so each
// worker reuses its own client (and connection).
type call func(context.Context) error

type target struct {
	name    string
	newCall func() call
}

type result struct {
	reqs          float64 // per second
	p50, p90, p99 time.Duration
	cpu           time.Duration // process CPU (user+sys) per call: steadier than req/s on a shared machine
	errs          int
	firstErr      error
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	ctx := context.Background()

	dir, err := os.MkdirTemp("", "gantry-bench-api-")
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

	tag := func(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }
	_, err = sdkClient(srv.URL(), nil).CreateCluster(ctx, &awsecs.CreateClusterInput{
		ClusterName: aws.String(cluster),
		Tags:        []types.Tag{tag("team", "platform"), tag("env", "bench"), tag("cost-center", "1234")},
		Settings:    []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("enabled")}},
	})
	check(err)

	// The peers answer exactly the bytes Gantry answers, so the SDK's
	// client-side work is the same.
	rec := &recorder{}
	_, err = sdkClient(srv.URL(), rec).DescribeClusters(ctx, describeInput())
	check(err)
	verifier := &sigv4.Verifier{Region: region, Credentials: sigv4.StaticCredentials{accessKey: secretKey}}

	// Keys as in docs/state.md: what state.GetCluster and CountCluster read.
	// The embedded store's client is in-process (v3client): no gRPC socket.
	etcd := srv.Store().Client()
	clusterKey := state.Prefix + "clusters/" + cluster
	counted := []string{state.Prefix + "instances/" + cluster + "/", state.Prefix + "services/" + cluster + "/"}
	etcdGet := func(ctx context.Context) error {
		resp, err := etcd.Get(ctx, clusterKey)
		if err == nil && len(resp.Kvs) != 1 {
			err = fmt.Errorf("cluster key %s: %d kvs", clusterKey, len(resp.Kvs))
		}
		return err
	}
	etcdGetCount := func(ctx context.Context) error {
		err := etcdGet(ctx)
		for _, p := range counted {
			if err == nil {
				_, err = etcd.Get(ctx, p, clientv3.WithPrefix(), clientv3.WithCountOnly())
			}
		}
		return err
	}
	etcdTxn := func(ctx context.Context) error {
		ops := []clientv3.Op{clientv3.OpGet(clusterKey)}
		for _, p := range counted {
			ops = append(ops, clientv3.OpGet(p, clientv3.WithPrefix(), clientv3.WithCountOnly()))
		}
		_, err := etcd.Txn(ctx).Then(ops...).Commit()
		return err
	}

	targets := []target{
		{"gantry", sdkCall(srv.URL())},
		{"floor", sdkCall(serve(cannedHandler(rec.body, nil)))},
		{"sigv4", sdkCall(serve(cannedHandler(rec.body, verifier)))},
		{"etcd", func() call { return etcdGet }},
		{"etcd×3", func() call { return etcdGetCount }},
		{"etcd txn", func() call { return etcdTxn }},
	}

	fmt.Printf("DescribeClusters, concurrency %d, %s per target, %d rounds, GOMAXPROCS=%d\n",
		*concurrency, *duration, *runs, runtime.GOMAXPROCS(0))
	all := map[string][]result{}
	var profiles []string
	failed := false
	for round := range *runs {
		order := append(slices.Clone(targets[round%len(targets):]), targets[:round%len(targets)]...)
		for _, t := range order {
			stop := func() {}
			if t.name == "gantry" && *cpuprofile != "" {
				profiles = append(profiles, fmt.Sprintf("%s.round%d", *cpuprofile, round+1))
				stop = startProfile(profiles[len(profiles)-1])
			}
			r := measure(t, *concurrency, *duration)
			stop()
			all[t.name] = append(all[t.name], r)
			fmt.Printf("round %d  %-8s %8.0f req/s  p50 %-9v p90 %-9v p99 %-9v cpu/call %-9v errors %d\n",
				round+1, t.name, r.reqs, r.p50, r.p90, r.p99, r.cpu, r.errs)
			if r.errs > 0 {
				failed = true
				fmt.Printf("    first error: %v\n", r.firstErr)
			}
		}
	}
	report(targets, all)
	if len(profiles) > 0 {
		mergeProfiles(*cpuprofile, profiles)
	}
	if failed {
		log.Fatal("FAIL: some calls returned errors")
	}
}

func describeInput() *awsecs.DescribeClustersInput {
	return &awsecs.DescribeClustersInput{
		Clusters: []string{cluster},
		Include:  []types.ClusterField{types.ClusterFieldTags, types.ClusterFieldSettings},
	}
}

// sdkClient is an ECS client with retries off, so every error is counted.
// A nil httpClient is the SDK's default (a transport per client).
func sdkClient(url string, httpClient awsecs.HTTPClient) *awsecs.Client {
	return awsecs.New(awsecs.Options{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		BaseEndpoint: aws.String(url),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   httpClient,
	})
}

func sdkCall(url string) func() call {
	return func() call {
		c, in := sdkClient(url, nil), describeInput()
		return func(ctx context.Context) error {
			out, err := c.DescribeClusters(ctx, in)
			if err == nil && (len(out.Clusters) != 1 || len(out.Clusters[0].Tags) != 3) {
				err = fmt.Errorf("unexpected answer: %d clusters, %d failures", len(out.Clusters), len(out.Failures))
			}
			return err
		}
	}
}

// cannedHandler answers every request with body, after verifying its
// signature when v is set.
func cannedHandler(body []byte, v *sigv4.Verifier) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in, err := io.ReadAll(r.Body)
		if err == nil && v != nil {
			_, err = v.Verify(r, in, "ecs")
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("x-amzn-RequestId", "00000000-0000-4000-8000-000000000000")
		w.Write(body)
	}
}

// measure runs workers callers for d, after each has made one untimed call
// (which also opens its connection), and records every call's latency.
func measure(t target, workers int, d time.Duration) result {
	ctx := context.Background()
	var res result
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		res.errs++
		res.firstErr = cmp.Or(res.firstErr, err)
		mu.Unlock()
	}
	lat := make([][]time.Duration, workers)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	var deadline time.Time // written before start is closed
	for w := range workers {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			c := t.newCall()
			warm := c(ctx)
			ready.Done()
			<-start
			if warm != nil {
				fail(warm)
			}
			ls := make([]time.Duration, 0, 1<<14)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				err := c(ctx)
				ls = append(ls, time.Since(t0))
				if err != nil {
					fail(err)
				}
			}
			lat[w] = ls
		}()
	}
	ready.Wait()
	cpu0 := rusage.Self()
	t0 := time.Now()
	deadline = t0.Add(d)
	close(start)
	done.Wait()
	elapsed := time.Since(t0)
	cpu := rusage.Self() - cpu0

	all := slices.Concat(lat...)
	if len(all) == 0 {
		return res
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration { return all[min(len(all)-1, int(p*float64(len(all))))] }
	res.reqs = float64(len(all)) / elapsed.Seconds()
	res.p50, res.p90, res.p99 = pct(0.50), pct(0.90), pct(0.99)
	res.cpu = cpu / time.Duration(len(all))
	return res
}

// report prints medians across rounds as a Markdown table. The ratios are
// paired: Gantry ÷ peer within each round (measured seconds apart), then the
// median of those, which cancels more of the machine's drift than a ratio of
// medians would.
func report(targets []target, all map[string][]result) {
	metrics := []func(result) float64{
		func(r result) float64 { return r.reqs },
		func(r result) float64 { return float64(r.p50) / 1e6 },
		func(r result) float64 { return float64(r.p99) / 1e6 },
		func(r result) float64 { return float64(r.cpu) / 1e3 },
	}
	fmt.Printf("\nMedians of %d rounds, concurrency %d:\n\n", *runs, *concurrency)
	fmt.Println("| target | req/s | p50 ms | p99 ms | CPU µs/call | Gantry÷this: req/s | p50 | p99 | CPU |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, t := range targets {
		row := []any{t.name}
		for _, f := range metrics {
			row = append(row, median(all[t.name], func(r result, _ int) float64 { return f(r) }))
		}
		for _, f := range metrics {
			row = append(row, median(all[t.name], func(r result, round int) float64 {
				return f(all["gantry"][round]) / f(r)
			}))
		}
		fmt.Printf("| %s | %.0f | %.2f | %.2f | %.0f | %.2f | %.2f | %.2f | %.2f |\n", row...)
	}
}

// median of f over rounds (the upper one for an even count).
func median(rs []result, f func(r result, round int) float64) float64 {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = f(r, i)
	}
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// recorder is an HTTP client that keeps the last response body.
type recorder struct{ body []byte }

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if r.body, err = io.ReadAll(resp.Body); err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(r.body))
	return resp, nil
}

// serve runs h on a loopback listener and returns its URL.
func serve(h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	go (&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
	return "http://" + ln.Addr().String()
}

func startProfile(path string) (stop func()) {
	f, err := os.Create(path)
	check(err)
	check(pprof.StartCPUProfile(f))
	return func() { pprof.StopCPUProfile(); check(f.Close()) }
}

// mergeProfiles joins the per-round profiles into one with `go tool pprof
// -proto`: runtime/pprof cannot pause a profile while the peers run.
func mergeProfiles(out string, parts []string) {
	args := append([]string{"tool", "pprof", "-proto", "-output", out}, parts...)
	if b, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		log.Printf("merging profiles failed (%v); per-round profiles kept: %s", err, b)
		return
	}
	for _, p := range parts {
		os.Remove(p)
	}
	fmt.Printf("\nCPU profile of the Gantry phases: %s\n", out)
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
