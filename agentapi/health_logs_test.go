package agentapi_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/agentapi"
	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/testcluster"
)

// Container and task health travel with the agent's reports to the task
// record, as DescribeTasks shows them.
func TestHealthReports(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	ctx := context.Background()
	if _, err := api.RegisterTaskDefinition(ctx, &awsecs.RegisterTaskDefinitionInput{Family: aws.String("checked"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("main"), Image: aws.String("x"), Memory: aws.Int32(64),
			HealthCheck: &types.HealthCheck{Command: []string{"CMD", "true"}}}}}); err != nil {
		t.Fatal(err)
	}
	a := c.RegisterAgent(t, "c", testcluster.AgentOptions{Attributes: []ecs.Attribute{{Name: "ecs.capability.container-health-check"}}})
	out, err := api.RunTask(ctx, &awsecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String("checked")})
	if err != nil || len(out.Tasks) != 1 {
		t.Fatalf("RunTask: %v %+v", err, out)
	}
	task := aws.ToString(out.Tasks[0].TaskArn)
	describe := func() types.Task {
		out, err := api.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: []string{task}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Tasks[0]
	}
	if d := describe(); d.HealthStatus != types.HealthStatusUnknown || d.Containers[0].HealthStatus != types.HealthStatusUnknown {
		t.Errorf("new task: %q %q", d.HealthStatus, d.Containers[0].HealthStatus)
	}
	rep := report(task, "RUNNING")
	rep.ContainerHealth = map[string]ecs.HealthStatus{"main": ecs.HealthStatusHealthy}
	rep.HealthStatus = ecs.HealthStatusHealthy
	a.MustReport(rep)
	d := describe()
	if d.HealthStatus != types.HealthStatusHealthy || d.Containers[0].HealthStatus != types.HealthStatusHealthy {
		t.Errorf("healthy: %q %q", d.HealthStatus, d.Containers[0].HealthStatus)
	}
	// A change of health alone is a change (the version moves).
	rep.ContainerHealth["main"], rep.HealthStatus = ecs.HealthStatusUnhealthy, ecs.HealthStatusUnhealthy
	a.MustReport(rep)
	if d2 := describe(); d2.HealthStatus != types.HealthStatusUnhealthy || d2.Containers[0].HealthStatus != types.HealthStatusUnhealthy ||
		d2.Version <= d.Version {
		t.Errorf("unhealthy: %q %q, version %d after %d", d2.HealthStatus, d2.Containers[0].HealthStatus, d2.Version, d.Version)
	}
	for name, bad := range map[string]protocol.TaskStateChange{
		"UnknownContainer": {SubmitTaskStateChangeRequest: ecs.SubmitTaskStateChangeRequest{Task: task},
			ContainerHealth: map[string]ecs.HealthStatus{"ghost": ecs.HealthStatusHealthy}},
		"UnknownStatus": {SubmitTaskStateChangeRequest: ecs.SubmitTaskStateChangeRequest{Task: task}, HealthStatus: "GREAT"},
	} {
		if status, _ := a.Report(bad); status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, status)
		}
	}
}

// signedGet calls the logs endpoint as a user.
func signedGet(t *testing.T, c *testcluster.Cluster, q url.Values, secret string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.Server.URL()+agentapi.LogsPath+"?"+q.Encode(), nil)
	sum := sha256.Sum256(nil)
	creds := aws.Credentials{AccessKeyID: testcluster.AccessKeyID, SecretAccessKey: secret}
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

func errorOf(t *testing.T, resp *http.Response) string {
	t.Helper()
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &e)
	return e.Type + ": " + e.Message
}

// The logs relay: the server sends a user's request down the agent's log
// request stream, and streams the agent's answer back.
func TestLogsRelay(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	a := c.RegisterAgent(t, "c", testcluster.AgentOptions{})
	task := aws.ToString(runTask(t, api).Tasks[0].TaskArn)
	q := url.Values{"cluster": {"c"}, "task": {task}}

	if resp := signedGet(t, c, q, "wrong secret"); resp.StatusCode != 400 || !strings.HasPrefix(errorOf(t, resp), "InvalidSignatureException") {
		t.Errorf("bad signature: %d", resp.StatusCode)
	}
	// No agent connected to the stream yet.
	if e := errorOf(t, signedGet(t, c, q, testcluster.SecretAccessKey)); !strings.HasPrefix(e, "TargetNotConnectedException: ") {
		t.Errorf("no agent: %s", e)
	}

	// The agent's side: the stream of requests, answered by POSTs.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.Server.URL()+protocol.PathLogRequests, nil)
	req.Header.Set("Authorization", "Bearer "+a.Token)
	stream, err := http.DefaultClient.Do(req)
	if err != nil || stream.StatusCode != 200 {
		t.Fatalf("log request stream: %v %v", err, stream.Status)
	}
	defer stream.Body.Close()
	requests, connected := make(chan protocol.LogRequest, 4), make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stream.Body)
		first := true
		for sc.Scan() {
			var r protocol.LogRequest
			if json.Unmarshal(sc.Bytes(), &r) != nil {
				continue
			}
			if first {
				// The server registers the stream before its first
				// keepalive: from now on requests reach it.
				close(connected)
				first = false
			}
			if !r.Keepalive {
				requests <- r
			}
		}
	}()
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("no keepalive on the log request stream")
	}
	answer := func(id string, body io.Reader, code, msg string) {
		req, _ := http.NewRequest(http.MethodPost, c.Server.URL()+protocol.PathLogs+id, body)
		req.Header.Set("Authorization", "Bearer "+a.Token)
		if code != "" {
			req.Header.Set(protocol.HeaderLogError, code)
			req.Header.Set(protocol.HeaderLogMessage, msg)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}

	go func() {
		r := <-requests
		if r.Task != task || r.Container != "main" || !r.Follow || r.Tail != 5 || !r.Timestamps {
			t.Errorf("request %+v", r)
		}
		answer(r.ID, strings.NewReader("line 1\nline 2\n"), "", "")
	}()
	q2 := url.Values{"cluster": {"c"}, "task": {task[strings.LastIndexByte(task, '/')+1:]}, "container": {"main"},
		"follow": {"true"}, "tail": {"5"}, "timestamps": {"1"}}
	resp := signedGet(t, c, q2, testcluster.SecretAccessKey)
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "line 1\nline 2\n" || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("logs: %s %q", resp.Status, b)
	}

	go func() {
		r := <-requests
		answer(r.ID, nil, protocol.LogErrUnsupported, "logs: the syslog driver cannot be read back")
	}()
	if e := errorOf(t, signedGet(t, c, q, testcluster.SecretAccessKey)); e != "UnsupportedFeatureException: logs: the syslog driver cannot be read back" {
		t.Errorf("unsupported: %s", e)
	}
	for name, tc := range map[string]struct {
		q    url.Values
		want string
	}{
		"UnknownTask":      {url.Values{"cluster": {"c"}, "task": {"0123456789abcdef0123456789abcdef"}}, "InvalidParameterException: The referenced task was not found."},
		"UnknownContainer": {url.Values{"cluster": {"c"}, "task": {task}, "container": {"ghost"}}, `has no container named "ghost" (it has main)`},
		"NoTask":           {url.Values{"cluster": {"c"}}, "InvalidParameterException: task is required"},
		"BadTail":          {url.Values{"cluster": {"c"}, "task": {task}, "tail": {"-1"}}, `tail "-1" is not a number of lines`},
	} {
		if e := errorOf(t, signedGet(t, c, tc.q, testcluster.SecretAccessKey)); !strings.Contains(e, tc.want) {
			t.Errorf("%s: %s, want %q", name, e, tc.want)
		}
	}
	// An answer to a request nobody waits for is refused.
	req2, _ := http.NewRequest(http.MethodPost, c.Server.URL()+protocol.PathLogs+"nope", strings.NewReader("x"))
	req2.Header.Set("Authorization", "Bearer "+a.Token)
	if resp, err := http.DefaultClient.Do(req2); err != nil || resp.StatusCode != 404 {
		t.Errorf("stray answer: %v %v", err, resp.Status)
	}
}
