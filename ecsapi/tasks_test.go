package ecsapi_test

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gantry-dev/gantry/agent/protocol"
	gecs "github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/testcluster"
)

// env is a control plane with one cluster, for task and instance tests.
type env struct {
	c       *testcluster.Cluster
	api     *ecs.Client
	ctx     context.Context
	cluster string
}

func newEnv(t *testing.T, opts ...testcluster.Options) *env {
	t.Helper()
	c := testcluster.Start(t, opts...)
	e := &env{c: c, api: c.ECS(), ctx: context.Background(), cluster: "work"}
	if _, err := e.api.CreateCluster(e.ctx, &ecs.CreateClusterInput{ClusterName: aws.String(e.cluster)}); err != nil {
		t.Fatal(err)
	}
	return e
}

// taskDef registers a one-container bridge-mode task definition: cpu CPU
// units, memory MiB, and the given host ports (0 for a dynamic one).
func (e *env) taskDef(t *testing.T, family string, cpu, memory int32, hostPorts ...int32) string {
	t.Helper()
	cd := types.ContainerDefinition{
		Name: aws.String("app"), Image: aws.String("gantry-testapp:latest"),
		Cpu: cpu, Memory: aws.Int32(memory), Essential: aws.Bool(true),
	}
	for i, p := range hostPorts {
		cd.PortMappings = append(cd.PortMappings, types.PortMapping{ContainerPort: aws.Int32(8080 + int32(i)), HostPort: aws.Int32(p)})
	}
	out, err := e.api.RegisterTaskDefinition(e.ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family), ContainerDefinitions: []types.ContainerDefinition{cd},
		Tags: []types.Tag{{Key: aws.String("from"), Value: aws.String("taskdef")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

// agent registers a fake agent that keeps heartbeating.
func (e *env) agent(t *testing.T, cpu, memory int64) *testcluster.FakeAgent {
	t.Helper()
	a := e.c.RegisterAgent(t, e.cluster, testcluster.AgentOptions{CPU: cpu, Memory: memory})
	a.KeepAlive()
	return a
}

func (e *env) run(t *testing.T, in *ecs.RunTaskInput) *ecs.RunTaskOutput {
	t.Helper()
	if in.Cluster == nil {
		in.Cluster = aws.String(e.cluster)
	}
	out, err := e.api.RunTask(e.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) instance(t *testing.T, arn string) types.ContainerInstance {
	t.Helper()
	out, err := e.api.DescribeContainerInstances(e.ctx, &ecs.DescribeContainerInstancesInput{
		Cluster: aws.String(e.cluster), ContainerInstances: []string{arn}, Include: []types.ContainerInstanceField{types.ContainerInstanceFieldTags},
	})
	if err != nil || len(out.ContainerInstances) != 1 {
		t.Fatalf("describe %s: %v %+v", arn, err, out)
	}
	return out.ContainerInstances[0]
}

func (e *env) task(t *testing.T, arn string) types.Task {
	t.Helper()
	out, err := e.api.DescribeTasks(e.ctx, &ecs.DescribeTasksInput{
		Cluster: aws.String(e.cluster), Tasks: []string{arn}, Include: []types.TaskField{types.TaskFieldTags},
	})
	if err != nil || len(out.Tasks) != 1 {
		t.Fatalf("describe %s: %v %+v", arn, err, out)
	}
	return out.Tasks[0]
}

// remaining returns an instance's remaining CPU and memory and its taken
// TCP ports.
func remaining(ci types.ContainerInstance) (cpu, mem int32, ports []string) {
	for _, r := range ci.RemainingResources {
		switch aws.ToString(r.Name) {
		case "CPU":
			cpu = r.IntegerValue
		case "MEMORY":
			mem = r.IntegerValue
		case "PORTS":
			ports = r.StringSetValue
		}
	}
	return cpu, mem, ports
}

func failureReasons(fs []types.Failure) []string {
	var out []string
	for _, f := range fs {
		out = append(out, aws.ToString(f.Reason))
	}
	sort.Strings(out)
	return out
}

func TestRunTaskLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.agent(t, 1024, 2048)
	td := e.taskDef(t, "web", 256, 512, 8080, 0)

	out := e.run(t, &ecs.RunTaskInput{
		TaskDefinition: aws.String("web"), StartedBy: aws.String("me"),
		Tags:          []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}},
		PropagateTags: types.PropagateTagsTaskDefinition,
		Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{
			Name: aws.String("app"), Command: []string{"serve"}, Environment: []types.KeyValuePair{{Name: aws.String("A"), Value: aws.String("1")}},
		}}},
	})
	if len(out.Tasks) != 1 || len(out.Failures) != 0 {
		t.Fatalf("run: %+v", out)
	}
	task := out.Tasks[0]
	arn := aws.ToString(task.TaskArn)
	if !strings.HasPrefix(arn, "arn:aws:ecs:us-east-1:123456789012:task/work/") || len(arn) != len("arn:aws:ecs:us-east-1:123456789012:task/work/")+32 {
		t.Errorf("task ARN %s", arn)
	}
	if aws.ToString(task.LastStatus) != "PENDING" || aws.ToString(task.DesiredStatus) != "RUNNING" || task.Version != 1 ||
		aws.ToString(task.Group) != "family:web" || aws.ToString(task.StartedBy) != "me" || task.LaunchType != types.LaunchTypeEc2 ||
		aws.ToString(task.TaskDefinitionArn) != td || aws.ToString(task.ContainerInstanceArn) != a.ARN ||
		aws.ToString(task.AvailabilityZone) != "us-east-1a" || aws.ToString(task.Cpu) != "256" || aws.ToString(task.Memory) != "512" ||
		task.CreatedAt == nil || len(task.Tags) != 2 {
		t.Errorf("new task: %+v", task)
	}
	if len(task.Containers) != 1 || aws.ToString(task.Containers[0].LastStatus) != "PENDING" || aws.ToString(task.Containers[0].Cpu) != "256" ||
		aws.ToString(task.Containers[0].Memory) != "512" || !strings.HasPrefix(aws.ToString(task.Containers[0].ContainerArn), "arn:aws:ecs:us-east-1:123456789012:container/work/") {
		t.Errorf("new task's containers: %+v", task.Containers)
	}
	if ov := task.Overrides; ov == nil || len(ov.ContainerOverrides) != 1 || len(ov.ContainerOverrides[0].Command) != 1 {
		t.Errorf("overrides echo: %+v", task.Overrides)
	}

	ci := e.instance(t, a.ARN)
	cpu, mem, ports := remaining(ci)
	if cpu != 1024-256 || mem != 2048-512 || !slices.Contains(ports, "8080") || !slices.Contains(ports, "22") || slices.Contains(ports, "0") {
		t.Errorf("remaining after placement: cpu %d mem %d ports %v", cpu, mem, ports)
	}
	if ci.RunningTasksCount != 1 || ci.PendingTasksCount != 1 || !ci.AgentConnected {
		t.Errorf("instance counts: running %d pending %d connected %v", ci.RunningTasksCount, ci.PendingTasksCount, ci.AgentConnected)
	}

	a.MustReport(protocol.TaskStateChange{SubmitTaskStateChangeRequest: gecs.SubmitTaskStateChangeRequest{
		Task: arn, Status: "RUNNING", PullStartedAt: ts(time.Now()), PullStoppedAt: ts(time.Now()),
		Containers: []gecs.ContainerStateChange{{ContainerName: "app", Status: "RUNNING", RuntimeID: "abc123",
			NetworkBindings: []gecs.NetworkBinding{{BindIP: "0.0.0.0", ContainerPort: aws.Int32(8080), HostPort: aws.Int32(8080), Protocol: "tcp"},
				{BindIP: "0.0.0.0", ContainerPort: aws.Int32(8081), HostPort: aws.Int32(32768), Protocol: "tcp"}}}},
	}})
	got := e.task(t, arn)
	if aws.ToString(got.LastStatus) != "RUNNING" || got.StartedAt == nil || got.PullStartedAt == nil || got.Version != 2 ||
		aws.ToString(got.Containers[0].RuntimeId) != "abc123" || len(got.Containers[0].NetworkBindings) != 2 {
		t.Errorf("running task: %+v", got)
	}
	if ci := e.instance(t, a.ARN); ci.PendingTasksCount != 0 || ci.RunningTasksCount != 1 {
		t.Errorf("instance counts once running: %+v", ci)
	}
	cl, _ := e.api.DescribeClusters(e.ctx, &ecs.DescribeClustersInput{Clusters: []string{e.cluster}})
	if c := cl.Clusters[0]; c.RunningTasksCount != 1 || c.PendingTasksCount != 0 || c.RegisteredContainerInstancesCount != 1 {
		t.Errorf("cluster counts: %+v", c)
	}

	stop, err := e.api.StopTask(e.ctx, &ecs.StopTaskInput{Cluster: aws.String(e.cluster), Task: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if s := stop.Task; aws.ToString(s.DesiredStatus) != "STOPPED" || aws.ToString(s.LastStatus) != "RUNNING" || s.StopCode != types.TaskStopCodeUserInitiated ||
		aws.ToString(s.StoppedReason) != "Task stopped by user" || s.StoppingAt == nil {
		t.Errorf("stop answer: %+v", s)
	}
	if ci := e.instance(t, a.ARN); ci.RunningTasksCount != 0 {
		t.Errorf("runningTasksCount counts desired RUNNING: %d", ci.RunningTasksCount)
	}
	if cpu, _, _ := remaining(e.instance(t, a.ARN)); cpu != 1024-256 {
		t.Errorf("resources freed before the task stopped: cpu %d", cpu)
	}
	exit := int32(143)
	a.MustReport(protocol.TaskStateChange{SubmitTaskStateChangeRequest: gecs.SubmitTaskStateChangeRequest{
		Task: arn, Status: "STOPPED", ExecutionStoppedAt: ts(time.Now()),
		Containers: []gecs.ContainerStateChange{{ContainerName: "app", Status: "STOPPED", ExitCode: &exit}},
	}})
	got = e.task(t, arn)
	if aws.ToString(got.LastStatus) != "STOPPED" || got.StopCode != types.TaskStopCodeUserInitiated || aws.ToString(got.StoppedReason) != "Task stopped by user" ||
		got.StoppedAt == nil || got.ExecutionStoppedAt == nil || aws.ToInt32(got.Containers[0].ExitCode) != 143 || len(got.Tags) != 2 {
		t.Errorf("stopped task: %+v", got)
	}
	ci = e.instance(t, a.ARN)
	if cpu, mem, ports := remaining(ci); cpu != 1024 || mem != 2048 || slices.Contains(ports, "8080") {
		t.Errorf("remaining after stop: cpu %d mem %d ports %v", cpu, mem, ports)
	}
	status, resp := a.Report(protocol.TaskStateChange{SubmitTaskStateChangeRequest: gecs.SubmitTaskStateChangeRequest{Task: arn, Status: "RUNNING"}})
	if status != http.StatusOK || resp.Accepted {
		t.Errorf("report after STOPPED: %d %+v", status, resp)
	}
}

func ts(t time.Time) awsTimestamp { return awsTimestamp{Time: t} }

func TestEssentialExitAndFailedStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.agent(t, 1024, 2048)
	e.taskDef(t, "job", 0, 64)
	out := e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("job"), Count: aws.Int32(3)})
	if len(out.Tasks) != 3 {
		t.Fatalf("run: %+v", out)
	}
	exit := int32(3)
	arns := []string{aws.ToString(out.Tasks[0].TaskArn), aws.ToString(out.Tasks[1].TaskArn), aws.ToString(out.Tasks[2].TaskArn)}

	t.Run("EssentialContainerExited", func(t *testing.T) {
		a.MustReport(change(arns[0], "RUNNING", "", gecs.ContainerStateChange{ContainerName: "app", Status: "RUNNING"}))
		a.MustReport(change(arns[0], "STOPPED", "", gecs.ContainerStateChange{ContainerName: "app", Status: "STOPPED", ExitCode: &exit, Reason: "exited"}))
		got := e.task(t, arns[0])
		if got.StopCode != types.TaskStopCodeEssentialContainerExited || aws.ToString(got.StoppedReason) != "Essential container in task exited" ||
			aws.ToString(got.DesiredStatus) != "STOPPED" || got.StoppingAt == nil || aws.ToInt32(got.Containers[0].ExitCode) != 3 {
			t.Errorf("%+v", got)
		}
	})
	t.Run("TaskFailedToStart", func(t *testing.T) {
		a.MustReport(change(arns[1], "STOPPED", "CannotPullContainerError: pull access denied",
			gecs.ContainerStateChange{ContainerName: "app", Status: "STOPPED", Reason: "CannotPullContainerError: pull access denied"}))
		got := e.task(t, arns[1])
		if got.StopCode != types.TaskStopCodeTaskFailedToStart || !strings.HasPrefix(aws.ToString(got.StoppedReason), "CannotPullContainerError") || got.StartedAt != nil {
			t.Errorf("%+v", got)
		}
	})
	t.Run("AgentStopCode", func(t *testing.T) {
		ch := change(arns[2], "STOPPING", "", gecs.ContainerStateChange{ContainerName: "app", Status: "STOPPED", ExitCode: &exit})
		ch.StopCode = gecs.TaskStopCodeEssentialContainerExited
		a.MustReport(ch)
		got := e.task(t, arns[2])
		if got.StopCode != types.TaskStopCodeEssentialContainerExited || aws.ToString(got.LastStatus) != "STOPPING" || aws.ToString(got.StoppedReason) != "Essential container in task exited" {
			t.Errorf("%+v", got)
		}
	})
}

func change(task, status, reason string, cs ...gecs.ContainerStateChange) protocol.TaskStateChange {
	return protocol.TaskStateChange{SubmitTaskStateChangeRequest: gecs.SubmitTaskStateChangeRequest{Task: task, Status: status, Reason: reason, Containers: cs}}
}

func TestRunTaskFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	e.taskDef(t, "small", 128, 128)
	_, err := e.api.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String(e.cluster), TaskDefinition: aws.String("small")})
	wantCode(t, err, "InvalidParameterException")
	if !strings.Contains(err.Error(), "No Container Instances were found in your cluster.") {
		t.Errorf("no instances: %v", err)
	}

	a := e.agent(t, 1024, 1024)
	e.taskDef(t, "big-memory", 128, 2048)
	e.taskDef(t, "big-cpu", 4096, 128)
	e.taskDef(t, "port", 128, 128, 80)
	e.taskDef(t, "ssh", 128, 128, 22)

	for _, tc := range []struct {
		family string
		count  int32
		placed int
		reason string
	}{
		{"big-memory", 1, 0, "RESOURCE:MEMORY"},
		{"big-cpu", 1, 0, "RESOURCE:CPU"},
		{"ssh", 1, 0, "RESOURCE:PORTS"},
		{"port", 3, 1, "RESOURCE:PORTS"}, // the second wants port 80 again
	} {
		t.Run(tc.family, func(t *testing.T) {
			out := e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String(tc.family), Count: aws.Int32(tc.count)})
			if len(out.Tasks) != tc.placed || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != tc.reason ||
				aws.ToString(out.Failures[0].Arn) != a.ARN {
				t.Errorf("got %d tasks, failures %+v", len(out.Tasks), out.Failures)
			}
		})
	}

	refused := []struct {
		name string
		in   *ecs.RunTaskInput
		code string
		msg  string
	}{
		{"Fargate", &ecs.RunTaskInput{TaskDefinition: aws.String("small"), LaunchType: types.LaunchTypeFargate}, "UnsupportedFeatureException", "FARGATE"},
		{"CountTooBig", &ecs.RunTaskInput{TaskDefinition: aws.String("small"), Count: aws.Int32(11)}, "InvalidParameterException", "count"},
		{"UnknownTaskDefinition", &ecs.RunTaskInput{TaskDefinition: aws.String("nope")}, "ClientException", "TaskDefinition not found."},
		{"UnknownContainerOverride", &ecs.RunTaskInput{TaskDefinition: aws.String("small"), Overrides: &types.TaskOverride{
			ContainerOverrides: []types.ContainerOverride{{Name: aws.String("ghost"), Command: []string{"x"}}}}},
			"InvalidParameterException", "Override for container named ghost is not a container in the TaskDefinition."},
		{"MemoryBelowReservation", &ecs.RunTaskInput{TaskDefinition: aws.String("small"), Overrides: &types.TaskOverride{
			ContainerOverrides: []types.ContainerOverride{{Name: aws.String("app"), MemoryReservation: aws.Int32(512)}}}},
			"InvalidParameterException", "memoryReservation"},
		{"BadTaskCPU", &ecs.RunTaskInput{TaskDefinition: aws.String("small"), Overrides: &types.TaskOverride{Cpu: aws.String("lots")}},
			"InvalidParameterException", "cpu override"},
		{"NegativeCPU", &ecs.RunTaskInput{TaskDefinition: aws.String("small"), Overrides: &types.TaskOverride{
			ContainerOverrides: []types.ContainerOverride{{Name: aws.String("app"), Cpu: aws.Int32(-1)}}}}, "InvalidParameterException", "cpu"},
		{"PlacementStrategy", &ecs.RunTaskInput{TaskDefinition: aws.String("small"), PlacementStrategy: []types.PlacementStrategy{{Type: types.PlacementStrategyTypeBinpack, Field: aws.String("disk")}}},
			"InvalidParameterException", "placementStrategy"},
		{"BadStartedBy", &ecs.RunTaskInput{TaskDefinition: aws.String("small"), StartedBy: aws.String("has space")}, "InvalidParameterException", "startedBy"},
		{"ClusterNotFound", &ecs.RunTaskInput{Cluster: aws.String("ghost"), TaskDefinition: aws.String("small")}, "ClusterNotFoundException", ""},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in.Cluster == nil {
				tc.in.Cluster = aws.String(e.cluster)
			}
			_, err := e.api.RunTask(e.ctx, tc.in)
			if errCode(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %v, want %s containing %q", err, tc.code, tc.msg)
			}
		})
	}
	// Nothing was started by the refused requests: only the one "port" task.
	l, err := e.api.ListTasks(e.ctx, &ecs.ListTasksInput{Cluster: aws.String(e.cluster)})
	if err != nil || len(l.TaskArns) != 1 {
		t.Errorf("tasks after refusals: %v %v", l.TaskArns, err)
	}

	t.Run("InactiveTaskDefinition", func(t *testing.T) {
		td := e.taskDef(t, "retired", 128, 128)
		if _, err := e.api.DeregisterTaskDefinition(e.ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(td)}); err != nil {
			t.Fatal(err)
		}
		_, err := e.api.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String(e.cluster), TaskDefinition: aws.String(td)})
		wantCode(t, err, "ClientException")
	})
}

// TestRunTaskConcurrentNeverOversubscribes runs 30 RunTasks at once against
// two instances with room for 10 tasks each: exactly 20 are placed, 10 per
// instance, and the other 10 fail with RESOURCE:MEMORY. Half the requests
// go through a second API on the same store, so the etcd guard (not just
// the server's lock) keeps the two from handing out the same memory.
func TestRunTaskConcurrentNeverOversubscribes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a1, a2 := e.agent(t, 10240, 1000), e.agent(t, 10240, 1000)
	e.taskDef(t, "tenth", 128, 100)
	second := secondAPI(t, e.c)

	var mu sync.Mutex
	placed := map[string]int{}
	var reasons []string
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			api := e.api
			if i%2 == 1 {
				api = second
			}
			out, err := api.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String(e.cluster), TaskDefinition: aws.String("tenth")})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, task := range out.Tasks {
				placed[aws.ToString(task.ContainerInstanceArn)]++
			}
			for _, f := range out.Failures {
				reasons = append(reasons, aws.ToString(f.Reason))
			}
		}()
	}
	wg.Wait()
	if placed[a1.ARN] != 10 || placed[a2.ARN] != 10 {
		t.Errorf("placed %v, want 10 on each instance", placed)
	}
	if len(reasons) != 20 { // two failures (one per instance) for each of the 10 unplaced tasks
		t.Errorf("failures: %v", reasons)
	}
	for _, arn := range []string{a1.ARN, a2.ARN} {
		if _, mem, _ := remaining(e.instance(t, arn)); mem != 0 {
			t.Errorf("%s: remaining memory %d, want 0", arn, mem)
		}
	}
}

// secondAPI is another ECS API on the same store, as a second gantry
// server on the same etcd would be.
func secondAPI(t *testing.T, c *testcluster.Cluster) *ecs.Client {
	t.Helper()
	srv := newSecondServer(t, c)
	return ecs.NewFromConfig(c.AWSConfig(), func(o *ecs.Options) { o.BaseEndpoint = aws.String(srv) })
}

func TestRunTaskClientToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.agent(t, 4096, 4096)
	e.taskDef(t, "idem", 128, 128)
	in := &ecs.RunTaskInput{TaskDefinition: aws.String("idem"), Count: aws.Int32(2), ClientToken: aws.String("token-1")}
	first := e.run(t, in)
	again := e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("idem"), Count: aws.Int32(2), ClientToken: aws.String("token-1")})
	arns := func(o *ecs.RunTaskOutput) []string {
		var s []string
		for _, task := range o.Tasks {
			s = append(s, aws.ToString(task.TaskArn))
		}
		sort.Strings(s)
		return s
	}
	if len(first.Tasks) != 2 || !slices.Equal(arns(first), arns(again)) {
		t.Errorf("retry with the same clientToken: %v then %v", arns(first), arns(again))
	}
	l, _ := e.api.ListTasks(e.ctx, &ecs.ListTasksInput{Cluster: aws.String(e.cluster)})
	if len(l.TaskArns) != 2 {
		t.Errorf("tasks: %v", l.TaskArns)
	}
	other := e.taskDef(t, "other", 128, 128)
	_, err := e.api.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String(e.cluster), TaskDefinition: aws.String(other), ClientToken: aws.String("token-1")})
	wantCode(t, err, "InvalidParameterException")

	// Concurrent retries of one request still place each task once.
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := e.api.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String(e.cluster), TaskDefinition: aws.String("idem"), Count: aws.Int32(3), ClientToken: aws.String("token-2")})
			if err != nil || len(out.Tasks) != 3 {
				t.Errorf("a concurrent retry: %v, %+v", err, out)
			}
		}()
	}
	wg.Wait()
	l, _ = e.api.ListTasks(e.ctx, &ecs.ListTasksInput{Cluster: aws.String(e.cluster)})
	if len(l.TaskArns) != 5 {
		t.Errorf("tasks after concurrent retries: %d, want 5", len(l.TaskArns))
	}
}

func TestStartTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.agent(t, 1024, 1024)
	b := e.agent(t, 1024, 1024)
	e.taskDef(t, "pinned", 128, 600)
	out, err := e.api.StartTask(e.ctx, &ecs.StartTaskInput{Cluster: aws.String(e.cluster), TaskDefinition: aws.String("pinned"),
		ContainerInstances: []string{a.ARN, b.ARN[strings.LastIndexByte(b.ARN, '/')+1:], "0123456789abcdef0123456789abcdef"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Tasks) != 2 || aws.ToString(out.Tasks[0].ContainerInstanceArn) != a.ARN || aws.ToString(out.Tasks[1].ContainerInstanceArn) != b.ARN ||
		len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "MISSING" {
		t.Errorf("start: %+v", out)
	}
	out, err = e.api.StartTask(e.ctx, &ecs.StartTaskInput{Cluster: aws.String(e.cluster), TaskDefinition: aws.String("pinned"), ContainerInstances: []string{a.ARN}})
	if err != nil || len(out.Tasks) != 0 || failureReasons(out.Failures)[0] != "RESOURCE:MEMORY" {
		t.Errorf("start on a full instance: %+v %v", out, err)
	}
}

func TestStopTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.agent(t, 1024, 1024)
	e.taskDef(t, "s", 128, 128)
	arn := aws.ToString(e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("s")}).Tasks[0].TaskArn)
	out, err := e.api.StopTask(e.ctx, &ecs.StopTaskInput{Cluster: aws.String(e.cluster), Task: aws.String(arn[strings.LastIndexByte(arn, '/')+1:]), Reason: aws.String("maintenance")})
	if err != nil || aws.ToString(out.Task.StoppedReason) != "maintenance" {
		t.Fatalf("stop: %+v %v", out, err)
	}
	again, err := e.api.StopTask(e.ctx, &ecs.StopTaskInput{Cluster: aws.String(e.cluster), Task: aws.String(arn), Reason: aws.String("second")})
	if err != nil || aws.ToString(again.Task.StoppedReason) != "maintenance" || again.Task.Version != out.Task.Version {
		t.Errorf("second stop changed the task: %+v %v", again, err)
	}
	_, err = e.api.StopTask(e.ctx, &ecs.StopTaskInput{Cluster: aws.String(e.cluster), Task: aws.String("0123456789abcdef0123456789abcdef")})
	wantCode(t, err, "InvalidParameterException")
	l, _ := e.api.ListTasks(e.ctx, &ecs.ListTasksInput{Cluster: aws.String(e.cluster), DesiredStatus: types.DesiredStatusStopped})
	if len(l.TaskArns) != 1 || l.TaskArns[0] != arn {
		t.Errorf("desired STOPPED: %v", l.TaskArns)
	}
}

func TestDescribeTasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.agent(t, 1024, 1024)
	e.taskDef(t, "d", 128, 128)
	arn := aws.ToString(e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("d"), Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}}).Tasks[0].TaskArn)
	missing := "arn:aws:ecs:us-east-1:123456789012:task/work/0123456789abcdef0123456789abcdef"
	out, err := e.api.DescribeTasks(e.ctx, &ecs.DescribeTasksInput{Cluster: aws.String(e.cluster), Tasks: []string{arn, missing, "nonsense"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Tasks) != 1 || out.Tasks[0].Tags != nil || len(out.Failures) != 2 || aws.ToString(out.Failures[0].Arn) != missing ||
		aws.ToString(out.Failures[0].Reason) != "MISSING" {
		t.Errorf("describe: %+v", out)
	}
	if got := e.task(t, arn); len(got.Tags) != 1 {
		t.Errorf("include TAGS: %+v", got.Tags)
	}
	tags, err := e.api.ListTagsForResource(e.ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil || len(tags.Tags) != 1 {
		t.Errorf("ListTagsForResource on a task: %+v %v", tags, err)
	}
	if _, err := e.api.TagResource(e.ctx, &ecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{{Key: aws.String("c"), Value: aws.String("d")}}}); err != nil {
		t.Fatal(err)
	}
	if got := e.task(t, arn); len(got.Tags) != 2 {
		t.Errorf("after TagResource: %+v", got.Tags)
	}
}

func TestListTasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.agent(t, 8192, 8192)
	b := e.agent(t, 8192, 8192)
	e.taskDef(t, "alpha", 10, 10)
	e.taskDef(t, "beta", 10, 10)
	// alpha x5 by "ci" (all on a, by a constraint), beta x3 started on b, one stopped.
	onA := "ec2InstanceId == " + aws.ToString(e.instance(t, a.ARN).Ec2InstanceId)
	e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("alpha"), Count: aws.Int32(5), StartedBy: aws.String("ci"),
		PlacementConstraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String(onA)}}})
	var betas []string
	for range 3 {
		out, err := e.api.StartTask(e.ctx, &ecs.StartTaskInput{Cluster: aws.String(e.cluster), TaskDefinition: aws.String("beta"), ContainerInstances: []string{b.ARN}})
		if err != nil || len(out.Tasks) != 1 {
			t.Fatal(out, err)
		}
		betas = append(betas, aws.ToString(out.Tasks[0].TaskArn))
	}
	b.MustReport(change(betas[0], "STOPPED", ""))

	list := func(in *ecs.ListTasksInput) []string {
		t.Helper()
		in.Cluster = aws.String(e.cluster)
		var all []string
		for {
			out, err := e.api.ListTasks(e.ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, out.TaskArns...)
			if out.NextToken == nil {
				return all
			}
			in.NextToken = out.NextToken
		}
	}
	for _, tc := range []struct {
		name string
		in   ecs.ListTasksInput
		want int
	}{
		{"DefaultRunning", ecs.ListTasksInput{}, 7},
		{"Paged", ecs.ListTasksInput{MaxResults: aws.Int32(2)}, 7},
		{"Stopped", ecs.ListTasksInput{DesiredStatus: types.DesiredStatusStopped}, 1},
		{"Pending", ecs.ListTasksInput{DesiredStatus: types.DesiredStatusPending}, 0},
		{"Family", ecs.ListTasksInput{Family: aws.String("beta")}, 2},
		{"StartedBy", ecs.ListTasksInput{StartedBy: aws.String("ci"), MaxResults: aws.Int32(1)}, 5},
		{"Instance", ecs.ListTasksInput{ContainerInstance: aws.String(a.ARN)}, 5},
		{"InstanceStopped", ecs.ListTasksInput{ContainerInstance: aws.String(b.ARN), DesiredStatus: types.DesiredStatusStopped}, 1},
		{"LaunchTypeEC2", ecs.ListTasksInput{LaunchType: types.LaunchTypeEc2}, 7},
		{"LaunchTypeFargate", ecs.ListTasksInput{LaunchType: types.LaunchTypeFargate}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := list(&tc.in)
			seen := map[string]bool{}
			for _, g := range got {
				if seen[g] {
					t.Errorf("%s listed twice", g)
				}
				seen[g] = true
			}
			if len(got) != tc.want {
				t.Errorf("got %d tasks, want %d: %v", len(got), tc.want, got)
			}
		})
	}
	_, err := e.api.ListTasks(e.ctx, &ecs.ListTasksInput{Cluster: aws.String(e.cluster), ServiceName: aws.String("web")})
	wantCode(t, err, "ServiceNotFoundException")
	_, err = e.api.ListTasks(e.ctx, &ecs.ListTasksInput{Cluster: aws.String(e.cluster), NextToken: aws.String("bogus")})
	wantCode(t, err, "InvalidParameterException")
}

// TestDeleteClusterWithStoppedTasks: a cluster whose tasks are all STOPPED
// can be deleted once its instances are deregistered, and the stopped
// tasks stay describable.
func TestDeleteClusterWithStoppedTasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.agent(t, 1024, 1024)
	e.taskDef(t, "once", 128, 128)
	arn := aws.ToString(e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("once")}).Tasks[0].TaskArn)

	_, err := e.api.DeregisterContainerInstance(e.ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String(e.cluster), ContainerInstance: aws.String(a.ARN)})
	wantCode(t, err, "InvalidParameterException")
	a.MustReport(change(arn, "RUNNING", ""))
	_, err = e.api.DeleteCluster(e.ctx, &ecs.DeleteClusterInput{Cluster: aws.String(e.cluster)})
	wantCode(t, err, "ClusterContainsContainerInstancesException")

	a.MustReport(change(arn, "STOPPED", ""))
	if _, err := e.api.DeregisterContainerInstance(e.ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String(e.cluster), ContainerInstance: aws.String(a.ARN)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.DeleteCluster(e.ctx, &ecs.DeleteClusterInput{Cluster: aws.String(e.cluster)}); err != nil {
		t.Fatalf("delete a cluster with only stopped tasks: %v", err)
	}
	if got := e.task(t, arn); aws.ToString(got.LastStatus) != "STOPPED" {
		t.Errorf("stopped task after delete: %+v", got)
	}
}

// TestDeleteClusterRefusedWhileTaskRuns: a task that is not STOPPED
// blocks DeleteCluster even after its instance is gone.
func TestDeleteClusterRefusedWhileTaskRuns(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	cli := c.Server.Store().Client()
	api := c.ECS()
	ctx := context.Background()
	if _, err := api.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("busy")}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/gantry/v1/tasks/busy/0123456789abcdef0123456789abcdef", "{}"); err != nil {
		t.Fatal(err)
	}
	_, err := api.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("busy")})
	wantCode(t, err, "ClusterContainsTasksException")
}
