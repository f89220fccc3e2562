package agent_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	dcontainer "github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"

	"github.com/gantry-dev/gantry/agent"
	"github.com/gantry-dev/gantry/agent/runtime"
	"github.com/gantry-dev/gantry/agentapi"
	"github.com/gantry-dev/gantry/internal/testcluster"
	"github.com/gantry-dev/gantry/internal/testimage"
)

// End-to-end tests of restart safety, cleanup and logs.

func runtimeIDs(task types.Task) map[string]string {
	ids := map[string]string{}
	for _, c := range task.Containers {
		ids[aws.ToString(c.Name)] = aws.ToString(c.RuntimeId)
	}
	return ids
}

// containersOf counts the test's containers of a task, in any state.
func containersOf(t *testing.T, d *testcluster.DockerCluster, arn string) int {
	n := 0
	for _, c := range d.Containers(t) {
		if c.Labels[agent.LabelTaskARN] == arn {
			n++
		}
	}
	return n
}

// A restarted agent (nothing survives but its data dir, as after kill -9)
// adopts the containers it finds by their labels: a running task keeps its
// containers and is never started a second time (an exited container stays
// exited), a task stopped while the agent was down is stopped, a container
// killed meanwhile is reported.
func TestE2EAgentRestartAdoptsContainers(t *testing.T) {
	t.Parallel()
	d := testcluster.StartDocker(t)
	ctx := context.Background()
	docker := testimage.Client(t)
	a := runTask(t, d, register(t, d, "e2e-restart-a", nil, testapp(d, "web", true, "serve"), testapp(d, "once", false, "exit", "0")), nil)
	b := runTask(t, d, register(t, d, "e2e-restart-b", nil, testapp(d, "web", true, "serve")), nil)
	c := runTask(t, d, register(t, d, "e2e-restart-c", nil, testapp(d, "web", true, "serve")), nil)
	ta := d.WaitTask(t, a, startDeadline, func(t types.Task) bool {
		return aws.ToString(t.LastStatus) == "RUNNING" && find(t, "once").ExitCode != nil
	})
	d.WaitTask(t, b, startDeadline, status("RUNNING"))
	tc := d.WaitTask(t, c, startDeadline, status("RUNNING"))
	before := runtimeIDs(ta)
	onceStarted := inspect(t, ta, "once").State.StartedAt

	d.StopAgent(t)
	stopTask(t, d, b, "stopped while the agent was down")
	if err := docker.ContainerKill(ctx, aws.ToString(container(t, tc, "web").RuntimeId), "KILL"); err != nil {
		t.Fatal(err)
	}
	d.StartAgent(t)

	tb := d.WaitTask(t, b, stopDeadline, status("STOPPED"))
	if tb.StopCode != types.TaskStopCodeUserInitiated || *container(t, tb, "web").ExitCode != 0 {
		t.Errorf("b: %s", testcluster.Describe(tb))
	}
	tc = d.WaitTask(t, c, stopDeadline, status("STOPPED"))
	if tc.StopCode != types.TaskStopCodeEssentialContainerExited || *container(t, tc, "web").ExitCode != 137 {
		t.Errorf("c: %s", testcluster.Describe(tc))
	}
	ta = d.WaitTask(t, a, time.Second, status("RUNNING"))
	if after := runtimeIDs(ta); after["web"] != before["web"] || after["once"] != before["once"] {
		t.Errorf("a's containers changed: %v, then %v", before, after)
	}
	if st := inspect(t, ta, "once").State; st.StartedAt != onceStarted || st.Running {
		t.Errorf("the exited container was started again: %+v", st)
	}
	for arn, want := range map[string]int{a: 2, b: 1, c: 1} {
		if n := containersOf(t, d, arn); n != want {
			t.Errorf("task %s has %d containers, want %d", arn, n, want)
		}
	}
	// The new agent drives a's containers: it stops them.
	stopTask(t, d, a, "done")
	ta = d.WaitTask(t, a, stopDeadline, status("STOPPED"))
	if st := inspect(t, ta, "web").State; st.Running || runtimeIDs(ta)["web"] != before["web"] {
		t.Errorf("a after StopTask: %s", testcluster.Describe(ta))
	}
}

// An engine restart, simulated by cutting the agent's connection to the
// engine (the machine's engine is shared with other tests): a container
// that survives it (live restore) is still the task's, one that died with
// the engine is reported, a task placed during the outage starts once the
// engine is back, and nothing fails merely because the engine was away.
func TestE2EEngineRestart(t *testing.T) {
	t.Parallel()
	d := testcluster.StartDocker(t, testcluster.DockerOptions{EngineProxy: true})
	ctx := context.Background()
	td := register(t, d, "e2e-engine", nil, testapp(d, "web", true, "serve"))
	a, b := runTask(t, d, td, nil), runTask(t, d, td, nil)
	ta := d.WaitTask(t, a, startDeadline, status("RUNNING"))
	tb := d.WaitTask(t, b, startDeadline, status("RUNNING"))

	d.Proxy.Cut()
	if err := testimage.Client(t).ContainerKill(ctx, aws.ToString(container(t, tb, "web").RuntimeId), "KILL"); err != nil {
		t.Fatal(err)
	}
	c := runTask(t, d, td, nil)
	time.Sleep(3 * time.Second) // the outage
	if tc := d.WaitTask(t, c, time.Second, status("PENDING")); tc.StopCode != "" {
		t.Errorf("c during the outage: %s", testcluster.Describe(tc))
	}
	d.Proxy.Restore()

	tb = d.WaitTask(t, b, stopDeadline, status("STOPPED"))
	if tb.StopCode != types.TaskStopCodeEssentialContainerExited || *container(t, tb, "web").ExitCode != 137 {
		t.Errorf("b: %s", testcluster.Describe(tb))
	}
	if tc := d.WaitTask(t, c, startDeadline, status("RUNNING")); tc.StopCode != "" {
		t.Errorf("c: %s", testcluster.Describe(tc))
	}
	if after := d.WaitTask(t, a, time.Second, status("RUNNING")); runtimeIDs(after)["web"] != runtimeIDs(ta)["web"] {
		t.Errorf("a's container changed")
	}
	for _, arn := range []string{a, b, c} {
		if n := containersOf(t, d, arn); n != 1 {
			t.Errorf("task %s has %d containers", arn, n)
		}
	}
}

// A stopped task's containers and task volume stay (with their logs) for
// the cleanup wait, then go; a running container of a task this instance
// does not run is stopped, then removed.
func TestE2ECleanupAfterRetention(t *testing.T) {
	t.Parallel()
	const wait = 3 * time.Second
	d := testcluster.StartDocker(t, testcluster.DockerOptions{Agent: func(cfg *agent.Config) { cfg.TaskCleanupWait = wait }})
	ctx := context.Background()
	docker := testimage.Client(t)
	web := mount(testapp(d, "web", true, "serve"), "scratch", "/scratch", false)
	td := register(t, d, "e2e-cleanup", func(in *awsecs.RegisterTaskDefinitionInput) {
		in.Volumes = []types.Volume{{Name: aws.String("scratch")}}
	}, web)
	arn := runTask(t, d, td, nil)
	task := d.WaitTask(t, arn, startDeadline, status("RUNNING"))
	id := aws.ToString(container(t, task, "web").RuntimeId)
	vol := "ecs-e2e-cleanup-1-scratch-" + agent.TaskID(arn)
	if _, err := docker.VolumeInspect(ctx, vol); err != nil {
		t.Fatalf("task volume: %v", err)
	}

	// A container of some other task, labelled as this instance's.
	spec := runtime.ContainerSpec{Image: d.Image, Command: []string{"serve"}, Labels: map[string]string{
		agent.LabelContainerInstance: d.Agent.ContainerInstanceARN(), testcluster.TestLabel: d.Label,
		agent.LabelTaskARN: "arn:aws:ecs:us-east-1:123456789012:task/default/00000000000000000000000000000000"}}
	orphan, err := d.Runtime.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Runtime.Start(ctx, orphan); err != nil {
		t.Fatal(err)
	}

	stopTask(t, d, arn, "done")
	d.WaitTask(t, arn, stopDeadline, status("STOPPED"))
	// The wait runs from when the container stopped, by the engine's clock
	// (this host's): the test may see STOPPED late under load.
	st, err := d.Runtime.Inspect(ctx, id)
	if err != nil {
		t.Fatalf("the stopped task's container is gone at once: %v", err)
	}
	stopped := st.FinishedAt
	if stopped.IsZero() {
		t.Fatalf("the stopped task's container has no finish time: %+v", st)
	}
	gone := func(id string) bool {
		_, err := d.Runtime.Inspect(ctx, id)
		return errors.Is(err, runtime.ErrNotFound)
	}
	deadline := time.Now().Add(90 * time.Second)
	for !gone(id) || !gone(orphan) {
		if time.Now().After(deadline) {
			t.Fatalf("not cleaned up: task container gone %v, orphan gone %v", gone(id), gone(orphan))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if since := time.Since(stopped); since < wait {
		t.Errorf("removed %v after the task stopped, before the cleanup wait of %v", since, wait)
	}
	for time.Now().Before(deadline) {
		if _, err := docker.VolumeInspect(ctx, vol); err != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if vs, _ := docker.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(filters.Arg("name", vol))}); len(vs.Volumes) != 0 {
		t.Errorf("the task volume %s is still there", vol)
	}
	if list, _ := docker.ContainerList(ctx, dcontainer.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", testcluster.TestLabel+"="+d.Label))}); len(list) != 0 {
		t.Errorf("%d containers left", len(list))
	}
}

// getLogs calls the logs endpoint signed as a user.
func getLogs(t *testing.T, d *testcluster.DockerCluster, q url.Values) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, d.Server.URL()+agentapi.LogsPath+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	creds, _ := d.AWSConfig().Credentials.Retrieve(context.Background())
	sum := sha256.Sum256(nil)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ecs", testcluster.Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func awsError(t *testing.T, resp *http.Response) string {
	t.Helper()
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("%s: %s", resp.Status, b)
	}
	return strconv.Itoa(resp.StatusCode) + " " + e.Type + ": " + e.Message
}

// A task's container output through the logs endpoint: the agent streams
// it to the server it is connected to, on request.
func TestE2ELogs(t *testing.T) {
	t.Parallel()
	d := testcluster.StartDocker(t)
	web := published(testapp(d, "web", true, "serve"))
	env := testapp(d, "env", false, "print-env")
	env.Environment = []types.KeyValuePair{{Name: aws.String("GREETING"), Value: aws.String("hello")}}
	arn := runTask(t, d, register(t, d, "e2e-logs", nil, web, env), nil)
	task := d.WaitTask(t, arn, startDeadline, func(t types.Task) bool {
		return aws.ToString(t.LastStatus) == "RUNNING" && find(t, "env").ExitCode != nil
	})
	serving(t, task, "web")
	q := func(kv ...string) url.Values {
		v := url.Values{"cluster": {d.ClusterName}, "task": {agent.TaskID(arn)}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}

	resp := getLogs(t, d, q("container", "env"))
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "GREETING=hello\n") || !strings.Contains(string(b), "ECS_CONTAINER_METADATA_URI_V4=") {
		t.Errorf("env logs: %s %q", resp.Status, b)
	}
	if e := awsError(t, getLogs(t, d, q())); !strings.Contains(e, "400 InvalidParameterException: task "+agent.TaskID(arn)+" has 2 containers (web, env): name one") {
		t.Errorf("no container named: %s", e)
	}
	if e := awsError(t, getLogs(t, d, q("task", "0123456789abcdef0123456789abcdef"))); !strings.Contains(e, "The referenced task was not found.") {
		t.Errorf("unknown task: %s", e)
	}

	// Follow: the first line now, the rest as written, the end when the
	// container exits.
	resp = getLogs(t, d, q("container", "web", "follow", "true", "timestamps", "true"))
	if resp.StatusCode != 200 {
		t.Fatalf("follow: %s", awsError(t, resp))
	}
	lines := bufio.NewReader(resp.Body)
	first, err := lines.ReadString('\n')
	if err != nil || !strings.HasSuffix(first, " serving on :8080\n") {
		t.Fatalf("first line %q, %v", first, err)
	}
	port := container(t, task, "web").NetworkBindings[0].HostPort
	if r, err := http.Get("http://127.0.0.1:" + strconv.Itoa(int(aws.ToInt32(port))) + "/exit?code=0"); err == nil {
		r.Body.Close()
	}
	rest, err := io.ReadAll(lines)
	if err != nil || !strings.Contains(string(rest), "exiting with code 0") {
		t.Errorf("the rest: %q, %v", rest, err)
	}
	// Stopped: the logs stay until the containers are cleaned up.
	d.WaitTask(t, arn, stopDeadline, status("STOPPED"))
	resp = getLogs(t, d, q("container", "web", "tail", "1"))
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "exiting with code 0\n" {
		t.Errorf("tail of a stopped task: %s %q", resp.Status, b)
	}
}
