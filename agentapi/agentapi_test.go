package agentapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/agentapi"
	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/testcluster"
	"github.com/gantry-dev/gantry/state"
)

func setup(t *testing.T, opts ...testcluster.Options) (*testcluster.Cluster, *awsecs.Client) {
	t.Helper()
	c := testcluster.Start(t, opts...)
	api := c.ECS()
	ctx := context.Background()
	if _, err := api.CreateCluster(ctx, &awsecs.CreateClusterInput{ClusterName: aws.String("c")}); err != nil {
		t.Fatal(err)
	}
	_, err := api.RegisterTaskDefinition(ctx, &awsecs.RegisterTaskDefinitionInput{
		Family: aws.String("app"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("main"), Image: aws.String("gantry-testapp:latest"), Memory: aws.Int32(64), Essential: aws.Bool(true),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, api
}

func runTask(t *testing.T, api *awsecs.Client) *awsecs.RunTaskOutput {
	t.Helper()
	out, err := api.RunTask(context.Background(), &awsecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String("app")})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func describeInstance(t *testing.T, api *awsecs.Client, arn string) types.ContainerInstance {
	t.Helper()
	out, err := api.DescribeContainerInstances(context.Background(), &awsecs.DescribeContainerInstancesInput{Cluster: aws.String("c"), ContainerInstances: []string{arn}})
	if err != nil || len(out.ContainerInstances) != 1 {
		t.Fatalf("describe: %v %+v", err, out)
	}
	return out.ContainerInstances[0]
}

func report(task, status string) protocol.TaskStateChange {
	return protocol.TaskStateChange{SubmitTaskStateChangeRequest: ecs.SubmitTaskStateChangeRequest{Task: task, Status: status}}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	c, _ := setup(t)
	url := c.Server.URL()
	a := c.RegisterAgent(t, "c", testcluster.AgentOptions{})
	for _, tc := range []struct {
		name, path, token string
		want              int
	}{
		{"RegisterNoToken", protocol.PathRegister, "", 401},
		{"RegisterBadToken", protocol.PathRegister, "nope", 401},
		{"RegisterInstanceToken", protocol.PathRegister, a.Token, 401},
		{"HeartbeatJoinToken", protocol.PathHeartbeat, c.Server.JoinToken(), 401},
		{"HeartbeatForged", protocol.PathHeartbeat, a.Token[:len(a.Token)-2] + "xx", 401},
		{"HeartbeatOK", protocol.PathHeartbeat, a.Token, 200},
		{"TaskStateNoToken", protocol.PathTaskState, "", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := testcluster.AgentCall(t, url, http.MethodPost, tc.path, tc.token, map[string]string{"cluster": "c"})
			if status != tc.want {
				t.Errorf("status %d, want %d: %s", status, tc.want, body)
			}
			if status != 200 {
				var e protocol.Error
				if json.Unmarshal(body, &e) != nil || e.Code == "" {
					t.Errorf("error body: %s", body)
				}
			}
		})
	}
	if _, status, _ := c.TryRegisterAgent(t, "ghost", testcluster.AgentOptions{}); status != http.StatusNotFound {
		t.Errorf("register into a missing cluster: %d", status)
	}
}

func TestRegisterAndReregister(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	a := c.RegisterAgent(t, "c", testcluster.AgentOptions{CPU: 2048, Memory: 1024,
		Attributes: []ecs.Attribute{{Name: "ecs.capability.x", Value: ""}, {Name: "stack", Value: "blue"}}})
	ci := describeInstance(t, api, a.ARN)
	if aws.ToString(ci.Status) != "ACTIVE" || !ci.AgentConnected || !strings.HasPrefix(aws.ToString(ci.Ec2InstanceId), "i-") ||
		len(aws.ToString(ci.Ec2InstanceId)) != 19 || aws.ToString(ci.VersionInfo.AgentVersion) != "fake" || len(ci.RegisteredResources) != 4 {
		t.Errorf("registered: %+v", ci)
	}
	if a.Resp.HeartbeatTimeoutMillis != 10000 || a.Resp.HeartbeatIntervalMillis <= 0 {
		t.Errorf("heartbeat settings: %+v", a.Resp)
	}
	// A custom attribute set later survives re-registration; a capability
	// the agent no longer reports goes.
	if _, err := api.PutAttributes(context.Background(), &awsecs.PutAttributesInput{Cluster: aws.String("c"),
		Attributes: []types.Attribute{{Name: aws.String("team"), Value: aws.String("red"), TargetId: aws.String(a.ARN)}}}); err != nil {
		t.Fatal(err)
	}
	task := runTask(t, api).Tasks[0]

	again := c.RegisterAgent(t, "c", testcluster.AgentOptions{CPU: 4096, Memory: 1024, ContainerInstanceARN: a.ARN, InstanceToken: a.Token})
	if again.ARN != a.ARN || again.Token != a.Token {
		t.Fatalf("re-registration got a new identity: %s", again.ARN)
	}
	ci = describeInstance(t, api, a.ARN)
	names := map[string]bool{}
	for _, at := range ci.Attributes {
		names[aws.ToString(at.Name)] = true
	}
	if !names["team"] || names["ecs.capability.x"] || names["stack"] || ci.RunningTasksCount != 1 {
		t.Errorf("after re-registration: attributes %v, running %d", names, ci.RunningTasksCount)
	}
	if cpu := ci.RegisteredResources[0].IntegerValue; cpu != 4096 {
		t.Errorf("registered CPU after re-registration: %d", cpu)
	}
	_ = task

	// A token that does not match the ARN registers a new instance.
	other := c.RegisterAgent(t, "c", testcluster.AgentOptions{ContainerInstanceARN: a.ARN, InstanceToken: "gi.c.0123456789abcdef0123456789abcdef.x"})
	if other.ARN == a.ARN {
		t.Error("a forged token revived the instance")
	}
}

// TestNotYourTask: an agent may only report on tasks placed on its own
// instance.
func TestNotYourTask(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	a := c.RegisterAgent(t, "c", testcluster.AgentOptions{})
	task := aws.ToString(runTask(t, api).Tasks[0].TaskArn) // first-fit: on a
	b := c.RegisterAgent(t, "c", testcluster.AgentOptions{})
	for _, ref := range []string{task, task[strings.LastIndexByte(task, '/')+1:], "0123456789abcdef0123456789abcdef"} {
		status, _ := b.Report(report(ref, "RUNNING"))
		if status != http.StatusForbidden {
			t.Errorf("agent B reporting on %s: %d, want 403", ref, status)
		}
	}
	status, body := testcluster.AgentCall(t, c.Server.URL(), http.MethodPost, protocol.PathTaskState, b.Token, report(task, "RUNNING"))
	var e protocol.Error
	if json.Unmarshal(body, &e); status != 403 || e.Code != "NotYourTask" {
		t.Errorf("got %d %s", status, body)
	}
	a.MustReport(report(task, "RUNNING"))
	// Naming another cluster is not a way in either.
	ch := report(task, "STOPPED")
	ch.Cluster = "default"
	if status, _ := a.Report(ch); status != http.StatusForbidden {
		t.Errorf("report naming another cluster: %d", status)
	}
}

func TestBackwardTransitionsIgnored(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	a := c.RegisterAgent(t, "c", testcluster.AgentOptions{})
	task := aws.ToString(runTask(t, api).Tasks[0].TaskArn)
	a.MustReport(report(task, "RUNNING"))
	status, resp := a.Report(report(task, "PENDING"))
	if status != 200 || resp.Accepted || !strings.Contains(resp.Reason, "backwards") {
		t.Errorf("RUNNING -> PENDING: %d %+v", status, resp)
	}
	// A container does not move backwards either, and a repeat changes nothing.
	code := int32(0)
	a.MustReport(protocol.TaskStateChange{SubmitTaskStateChangeRequest: ecs.SubmitTaskStateChangeRequest{Task: task,
		Containers: []ecs.ContainerStateChange{{ContainerName: "main", Status: "STOPPED", ExitCode: &code}}}})
	a.MustReport(protocol.TaskStateChange{SubmitTaskStateChangeRequest: ecs.SubmitTaskStateChangeRequest{Task: task,
		Containers: []ecs.ContainerStateChange{{ContainerName: "main", Status: "RUNNING"}}}})
	out, _ := api.DescribeTasks(context.Background(), &awsecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: []string{task}})
	if got := out.Tasks[0]; aws.ToString(got.LastStatus) != "RUNNING" || aws.ToString(got.Containers[0].LastStatus) != "STOPPED" {
		t.Errorf("after backward reports: task %s container %s", aws.ToString(got.LastStatus), aws.ToString(got.Containers[0].LastStatus))
	}
	for _, bad := range []protocol.TaskStateChange{
		report(task, "SLEEPING"),
		{SubmitTaskStateChangeRequest: ecs.SubmitTaskStateChangeRequest{Task: task, Containers: []ecs.ContainerStateChange{{ContainerName: "ghost", Status: "RUNNING"}}}},
	} {
		if status, _ := a.Report(bad); status != http.StatusBadRequest {
			t.Errorf("malformed report %+v: %d", bad, status)
		}
	}
	a.MustReport(report(task, "STOPPED"))
	status, resp = a.Report(report(task, "RUNNING"))
	if status != 200 || resp.Accepted {
		t.Errorf("STOPPED -> RUNNING: %d %+v", status, resp)
	}
}

// TestHeartbeatExpiry: an agent that stops heartbeating shows
// agentConnected false after the timeout and gets no new tasks; its next
// heartbeat connects it again.
func TestHeartbeatExpiry(t *testing.T) {
	t.Parallel()
	c, api := setup(t, testcluster.Options{HeartbeatTimeout: time.Second})
	a := c.RegisterAgent(t, "c", testcluster.AgentOptions{})
	if !describeInstance(t, api, a.ARN).AgentConnected {
		t.Fatal("not connected after registering")
	}
	testcluster.WaitFor(t, 10*time.Second, "agentConnected false", func() bool { return !describeInstance(t, api, a.ARN).AgentConnected })
	out := runTask(t, api)
	if len(out.Tasks) != 0 || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "AGENT" {
		t.Errorf("run on a disconnected instance: %+v", out)
	}
	if status := a.Heartbeat(); status != "ACTIVE" {
		t.Errorf("heartbeat status %s", status)
	}
	if !describeInstance(t, api, a.ARN).AgentConnected {
		t.Error("not connected after a heartbeat")
	}
	if out := runTask(t, api); len(out.Tasks) != 1 {
		t.Errorf("run after reconnecting: %+v", out)
	}
}

// TestAssignmentsKeepaliveAndShutdown: a quiet stream carries keepalives,
// and ends when the server shuts down.
func TestAssignmentsKeepaliveAndShutdown(t *testing.T) {
	t.Parallel()
	c, _ := setup(t)
	a := c.RegisterAgent(t, "c", testcluster.AgentOptions{})
	h := agentapi.New(agentapi.Config{Store: c.Server.Store(), Scope: ecs.Scope{Partition: "aws", Region: testcluster.Region, AccountID: testcluster.AccountID},
		Keepalive: 50 * time.Millisecond})
	srv := httptest.NewServer(h)
	defer srv.Close()
	fast := *a
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+protocol.PathAssignments, nil)
	req.Header.Set("Authorization", "Bearer "+fast.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("stream: %v %+v", err, resp)
	}
	dec := json.NewDecoder(resp.Body)
	var keepalives int
	for range 4 {
		var m protocol.Assignment
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		if m.Keepalive {
			keepalives++
		}
	}
	if keepalives != 3 {
		t.Errorf("keepalives: %d of 4 messages, want 3 after the snapshot", keepalives)
	}
	h.Shutdown()
	done := make(chan error, 1)
	go func() {
		for {
			var m protocol.Assignment
			if err := dec.Decode(&m); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open after Shutdown")
	}

	// The real server ends its streams on Close, promptly.
	msgs := a.Assignments(context.Background())
	<-msgs
	start := time.Now()
	c.Server.Close()
	for range msgs {
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("server close took %v with a stream open", d)
	}
}

// TestDeregisteredAgent: a deregistered instance's agent hears INACTIVE
// and cannot open a stream.
func TestDeregisteredAgent(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	a := c.RegisterAgent(t, "c", testcluster.AgentOptions{})
	if _, err := api.DeregisterContainerInstance(context.Background(), &awsecs.DeregisterContainerInstanceInput{Cluster: aws.String("c"), ContainerInstance: aws.String(a.ARN)}); err != nil {
		t.Fatal(err)
	}
	if s := a.Heartbeat(); s != "INACTIVE" {
		t.Errorf("heartbeat after deregistration: %s", s)
	}
	status, _ := testcluster.AgentCall(t, c.Server.URL(), http.MethodGet, protocol.PathAssignments, a.Token, nil)
	if status != http.StatusGone {
		t.Errorf("stream after deregistration: %d", status)
	}
	again := c.RegisterAgent(t, "c", testcluster.AgentOptions{ContainerInstanceARN: a.ARN, InstanceToken: a.Token})
	if again.ARN == a.ARN {
		t.Error("a deregistered instance was revived")
	}

	// Once the INACTIVE record expires, the token admits no one, though
	// the server checked it before.
	id := a.ARN[strings.LastIndexByte(a.ARN, '/')+1:]
	if _, err := c.Server.Store().Client().Delete(context.Background(), state.Prefix+"inactive-instances/c/"+id); err != nil {
		t.Fatal(err)
	}
	if status, body := testcluster.AgentCall(t, c.Server.URL(), http.MethodPost, protocol.PathHeartbeat, a.Token, protocol.HeartbeatRequest{}); status != http.StatusUnauthorized {
		t.Errorf("heartbeat after the record expired: %d %s", status, body)
	}
}
