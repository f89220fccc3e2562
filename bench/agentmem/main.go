// Command agentmem measures the node agent's memory: the resident set
// size (VmRSS) of a `gantry agent` process, idle (registered, no tasks) and
// running N tasks, on a real Docker engine (or the simulated runtime). The
// control plane runs in this process on embedded etcd; the agent is this
// same binary re-executed as `gantry agent` (cli.Main), a separate process
// whose RSS is its own.
//
// The test image is built as the tests build it (internal/testimage).
// Results are in docs/agent.md; run with
//
//	go run ./bench/agentmem -n 50
//	go run ./bench/agentmem -n 500 -runtime sim
//	go build -o /tmp/gantry-agent ./cmd/gantry-agent && go run ./bench/agentmem -n 50 -agent-binary /tmp/gantry-agent
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/gantry-dev/gantry/agent"
	"github.com/gantry-dev/gantry/cli"
	"github.com/gantry-dev/gantry/internal/testimage"
	"github.com/gantry-dev/gantry/server"
)

const (
	accessKey = "GKIABENCHAGENTMEM000"
	secretKey = "bench/secret/key/for/gantry/agentmem/00"
	region    = "us-east-1"
	cluster   = "bench"
	image     = "gantry-testapp:latest"
)

var (
	n       = flag.Int("n", 50, "tasks to run")
	rtName  = flag.String("runtime", "docker", "the agent's runtime: docker or sim")
	settle  = flag.Duration("settle", 10*time.Second, "wait before sampling, idle and loaded")
	samples = flag.Int("samples", 10, "RSS samples, one per second")
	binary  = flag.String("agent-binary", "", "measure this agent binary (e.g. a built cmd/gantry-agent) instead of `gantry agent`")
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "agent" { // the re-executed child
		os.Exit(cli.Main(os.Args[1:]))
	}
	flag.Parse()
	log.SetFlags(0)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	ref := image
	var dc *client.Client
	metadata := "off"
	if *rtName == "docker" {
		testing.Benchmark(func(b *testing.B) { ref = testimage.Build(b, image) })
		var err error
		if dc, err = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation()); err != nil {
			log.Fatal(err)
		}
		// The metadata endpoint runs as in production, on a free port of
		// the bridge gateway.
		if n, err := dc.NetworkInspect(ctx, "bridge", network.InspectOptions{}); err == nil && len(n.IPAM.Config) > 0 {
			gw := n.IPAM.Config[0].Gateway
			if gw == "" {
				gw = strings.TrimSuffix(strings.Split(n.IPAM.Config[0].Subnet, "/")[0], ".0") + ".1"
			}
			metadata = net.JoinHostPort(gw, "0")
		}
	}
	dir, err := os.MkdirTemp("", "gantry-bench-agentmem-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", DataDir: dir + "/server", Region: region, AccountID: "123456789012",
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
	tokenFile := filepath.Join(dir, "join-token")
	os.WriteFile(tokenFile, []byte(srv.JoinToken()), 0o600)

	args := []string{"--server", srv.URL(), "--cluster", cluster, "--token-file", tokenFile,
		"--data-dir", dir + "/agent", "--runtime", *rtName, "--metadata-address", metadata, "--log-level", "error"}
	child := exec.Command(os.Args[0], append([]string{"agent"}, args...)...)
	if *binary != "" {
		child = exec.Command(*binary, args...)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() {
		child.Process.Signal(syscall.SIGTERM)
		child.Wait()
	}()
	var instance string
	for instance == "" {
		out, err := api.ListContainerInstances(ctx, &awsecs.ListContainerInstancesInput{Cluster: aws.String(cluster)})
		if err == nil && len(out.ContainerInstanceArns) == 1 {
			instance = out.ContainerInstanceArns[0]
		}
		if ctx.Err() != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	if dc != nil {
		defer cleanup(dc, instance)
	}

	idle := sample(ctx, child.Process.Pid)

	if _, err := api.RegisterTaskDefinition(ctx, &awsecs.RegisterTaskDefinitionInput{Family: aws.String("bench"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("web"), Image: aws.String(ref), Memory: aws.Int32(16),
			Command: []string{"serve"}}}}); err != nil {
		log.Fatal(err)
	}
	var arns []string
	for len(arns) < *n && ctx.Err() == nil {
		count := min(10, *n-len(arns))
		out, err := api.RunTask(ctx, &awsecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String("bench"), Count: aws.Int32(int32(count))})
		if err != nil || len(out.Failures) > 0 {
			log.Fatalf("RunTask: %v %+v", err, out)
		}
		for _, t := range out.Tasks {
			arns = append(arns, aws.ToString(t.TaskArn))
		}
	}
	start := time.Now()
	for ctx.Err() == nil {
		running := 0
		for i := 0; i < len(arns); i += 100 {
			out, err := api.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns[i:min(i+100, len(arns))]})
			if err != nil {
				log.Fatal(err)
			}
			for _, t := range out.Tasks {
				if aws.ToString(t.LastStatus) == "RUNNING" {
					running++
				}
			}
		}
		if running == len(arns) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	ready := time.Since(start)
	loaded := sample(ctx, child.Process.Pid)

	fmt.Printf("gantry agent memory, runtime %s, %d samples 1 s apart after %v settling\n\n", *rtName, *samples, *settle)
	fmt.Printf("%-28s %12s %12s %14s\n", "", "VmRSS p50", "VmRSS max", "RssAnon p50")
	row := func(name string, m memSamples) {
		fmt.Printf("%-28s %12s %12s %14s\n", name, mib(pct(m.rss, 50)), mib(pct(m.rss, 100)), mib(pct(m.anon, 50)))
	}
	row("idle (registered, no tasks)", idle)
	row(fmt.Sprintf("%d tasks running", len(arns)), loaded)
	fmt.Printf("\nall %d tasks RUNNING %v after the first RunTask\n", len(arns), ready.Round(10*time.Millisecond))

	for _, arn := range arns {
		api.StopTask(ctx, &awsecs.StopTaskInput{Cluster: aws.String(cluster), Task: aws.String(arn)})
	}
}

// memSamples are VmRSS and its anonymous part (RssAnon: heap, stacks;
// the rest is the binary's file-backed pages, shared and reclaimable).
type memSamples struct{ rss, anon []int64 }

// sample waits for the settle time, then reads the process's memory every
// second.
func sample(ctx context.Context, pid int) memSamples {
	select {
	case <-time.After(*settle):
	case <-ctx.Done():
	}
	var out memSamples
	for i := 0; i < *samples && ctx.Err() == nil; i++ {
		out.rss = append(out.rss, status(pid, "VmRSS"))
		out.anon = append(out.anon, status(pid, "RssAnon"))
		time.Sleep(time.Second)
	}
	return out
}

// status is a size field of /proc/<pid>/status, in bytes.
func status(pid int, field string) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	log.Fatalf("no %s", field)
	return 0
}

func pct(v []int64, p int) int64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(len(s)-1, (len(s)-1)*p/100)]
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// cleanup removes the agent's containers (found by its instance label).
func cleanup(dc *client.Client, instance string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	list, err := dc.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", agent.LabelContainerInstance+"="+instance))})
	if err != nil {
		log.Print(err)
		return
	}
	for _, c := range list {
		dc.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	}
}
