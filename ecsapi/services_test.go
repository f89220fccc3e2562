package ecsapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/gantry-dev/gantry/agent/protocol"
	gecs "github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/testcluster"
	"github.com/gantry-dev/gantry/state"
)

// Service tests run a real control plane (its service controller included)
// with fake agents that run tasks as the test says (pilot), and look at
// the result through the AWS SDK. Deadlines are generous: the machine is
// shared; what is fast belongs in bench/services.

const svcWait = 30 * time.Second

type svcEnv struct {
	c       *testcluster.Cluster
	api     *ecs.Client
	ctx     context.Context
	cluster string
}

func newSvcEnv(t *testing.T, opts ...testcluster.Options) *svcEnv {
	t.Helper()
	c := testcluster.Start(t, opts...)
	e := &svcEnv{c: c, api: c.ECS(), ctx: context.Background(), cluster: "svc"}
	if _, err := e.api.CreateCluster(e.ctx, &ecs.CreateClusterInput{ClusterName: aws.String(e.cluster)}); err != nil {
		t.Fatal(err)
	}
	return e
}

// taskDef registers a one-container task definition of family (image is
// only a name: fake agents run nothing).
func (e *svcEnv) taskDef(t *testing.T, family, image string) string {
	t.Helper()
	out, err := e.api.RegisterTaskDefinition(e.ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String(image), Cpu: 128, Memory: aws.Int32(128), Essential: aws.Bool(true),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

// behaviour says what a pilot does with a task desired RUNNING: run it
// (report RUNNING), fail it (report STOPPED as an agent that could not
// pull its image does), or leave it PENDING.
type behaviour int

const (
	run behaviour = iota
	failToStart
	hold
	crash // run, then exit at once
)

// pilot is a fake agent's instance, driven like FakeAgent.Autopilot but
// with a per-task behaviour, and able to go silent (a killed agent) and
// come back.
type pilot struct {
	t      *testing.T
	a      *testcluster.FakeAgent
	url    string
	decide func(taskDefinitionARN string) behaviour

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

func (e *svcEnv) pilot(t *testing.T, zone string, decide func(string) behaviour) *pilot {
	t.Helper()
	a := e.c.RegisterAgent(t, e.cluster, testcluster.AgentOptions{
		CPU: 4096, Memory: 8192,
		Attributes: []gecs.Attribute{{Name: gecs.AttributeAvailabilityZone, Value: zone}},
	})
	if decide == nil {
		decide = func(string) behaviour { return run }
	}
	p := &pilot{t: t, a: a, url: e.c.Server.URL(), decide: decide}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *pilot) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	p.a.Heartbeat()
	stopBeats := p.a.KeepAlive()
	msgs := p.a.Assignments(ctx)
	go func() {
		defer close(p.done)
		defer stopBeats()
		for m := range msgs {
			for _, at := range m.Tasks {
				for _, ch := range p.report(at.Task) {
					p.post(ctx, ch)
				}
			}
		}
	}()
}

// stop silences the agent: no heartbeats, no reports (its tasks keep
// "running" on it, as a killed agent's containers do).
func (p *pilot) stop() {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (p *pilot) report(t gecs.Task) []protocol.TaskStateChange {
	change := func(status string, cs string, code *int32) protocol.TaskStateChange {
		ch := protocol.TaskStateChange{SubmitTaskStateChangeRequest: gecs.SubmitTaskStateChangeRequest{Task: t.TaskARN, Status: status}}
		for i, c := range t.Containers {
			ch.Containers = append(ch.Containers, gecs.ContainerStateChange{ContainerName: c.Name, Status: cs, ExitCode: code,
				RuntimeID: fmt.Sprintf("fake-%d-%s", i, t.TaskARN[len(t.TaskARN)-8:])})
		}
		return ch
	}
	zero, one := int32(0), int32(1)
	b := p.decide(t.TaskDefinitionARN)
	switch {
	case t.DesiredStatus == gecs.TaskStatusStopped:
		return []protocol.TaskStateChange{change(gecs.TaskStatusStopped, gecs.ContainerStatusStopped, &zero)}
	case t.LastStatus != gecs.TaskStatusPending || b == hold:
		return nil
	case b == failToStart:
		ch := change(gecs.TaskStatusStopped, gecs.ContainerStatusStopped, nil)
		ch.StopCode = gecs.TaskStopCodeTaskFailedToStart
		ch.Reason = "CannotPullContainerError: pull access denied"
		return []protocol.TaskStateChange{ch}
	case b == crash:
		exit := change(gecs.TaskStatusStopped, gecs.ContainerStatusStopped, &one)
		exit.StopCode = gecs.TaskStopCodeEssentialContainerExited
		return []protocol.TaskStateChange{change(gecs.TaskStatusRunning, gecs.ContainerStatusRunning, nil), exit}
	}
	return []protocol.TaskStateChange{change(gecs.TaskStatusRunning, gecs.ContainerStatusRunning, nil)}
}

// exit makes a running task's essential container exit, as if killed.
func (p *pilot) exit(t *testing.T, taskARN string) {
	t.Helper()
	code := int32(137)
	p.a.MustReport(protocol.TaskStateChange{SubmitTaskStateChangeRequest: gecs.SubmitTaskStateChangeRequest{
		Task: taskARN, Status: gecs.TaskStatusStopped,
		Containers: []gecs.ContainerStateChange{{ContainerName: "app", Status: gecs.ContainerStatusStopped, ExitCode: &code}},
	}, StopCode: gecs.TaskStopCodeEssentialContainerExited})
}

func (p *pilot) post(ctx context.Context, ch protocol.TaskStateChange) {
	b, _ := json.Marshal(ch)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.url+protocol.PathTaskState, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+p.a.Token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}

func (e *svcEnv) describe(t *testing.T, name string) types.Service {
	t.Helper()
	out, err := e.api.DescribeServices(e.ctx, &ecs.DescribeServicesInput{Cluster: aws.String(e.cluster), Services: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Services) != 1 {
		t.Fatalf("DescribeServices %s: %+v", name, out.Failures)
	}
	return out.Services[0]
}

// waitService polls DescribeServices until ok holds.
func (e *svcEnv) waitService(t *testing.T, name, what string, ok func(types.Service) bool) types.Service {
	t.Helper()
	deadline := time.Now().Add(svcWait)
	for {
		s := e.describe(t, name)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("service %s: timed out after %v waiting for %s; last:\n%s", name, svcWait, what, summary(s))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func summary(s types.Service) string {
	var b strings.Builder
	fmt.Fprintf(&b, "status=%s desired=%d running=%d pending=%d\n", aws.ToString(s.Status), s.DesiredCount, s.RunningCount, s.PendingCount)
	for _, d := range s.Deployments {
		fmt.Fprintf(&b, "  deployment %s %s %s desired=%d running=%d pending=%d failed=%d %s %q\n", aws.ToString(d.Id), aws.ToString(d.Status),
			aws.ToString(d.TaskDefinition), d.DesiredCount, d.RunningCount, d.PendingCount, d.FailedTasks, d.RolloutState, aws.ToString(d.RolloutStateReason))
	}
	for i, ev := range s.Events {
		if i == 8 {
			break
		}
		fmt.Fprintf(&b, "  event %s\n", aws.ToString(ev.Message))
	}
	return b.String()
}

func stable(s types.Service) bool {
	return len(s.Deployments) == 1 && s.RunningCount == s.DesiredCount
}

func completed(s types.Service) bool {
	return stable(s) && s.Deployments[0].RolloutState == types.DeploymentRolloutStateCompleted
}

// tasks lists the service's tasks desired RUNNING, described.
func (e *svcEnv) tasks(t *testing.T, service string) []types.Task {
	t.Helper()
	in := &ecs.ListTasksInput{Cluster: aws.String(e.cluster)}
	if service != "" {
		in.ServiceName = aws.String(service)
	}
	list, err := e.api.ListTasks(e.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.TaskArns) == 0 {
		return nil
	}
	out, err := e.api.DescribeTasks(e.ctx, &ecs.DescribeTasksInput{Cluster: aws.String(e.cluster), Tasks: list.TaskArns})
	if err != nil {
		t.Fatal(err)
	}
	return out.Tasks
}

func hasEvent(s types.Service, substr string) bool {
	return slices.ContainsFunc(s.Events, func(ev types.ServiceEvent) bool { return strings.Contains(aws.ToString(ev.Message), substr) })
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestServiceLifecycle(t *testing.T) {
	t.Parallel()
	e := newSvcEnv(t)
	for _, z := range []string{"us-east-1a", "us-east-1b"} {
		e.pilot(t, z, nil)
	}
	td := e.taskDef(t, "web", "nginx:1")

	out, err := e.api.CreateService(e.ctx, &ecs.CreateServiceInput{
		Cluster: aws.String(e.cluster), ServiceName: aws.String("web"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(3),
	})
	if err != nil {
		t.Fatal(err)
	}
	s := out.Service
	if aws.ToString(s.Status) != "ACTIVE" || len(s.Deployments) != 1 || aws.ToString(s.Deployments[0].Status) != "PRIMARY" ||
		s.Deployments[0].RolloutState != types.DeploymentRolloutStateInProgress || aws.ToString(s.ServiceArn) != "arn:aws:ecs:us-east-1:123456789012:service/svc/web" {
		t.Fatalf("CreateService answered:\n%s", summary(*s))
	}
	if dc := s.DeploymentConfiguration; dc == nil || aws.ToInt32(dc.MaximumPercent) != 200 || aws.ToInt32(dc.MinimumHealthyPercent) != 100 {
		t.Errorf("deploymentConfiguration = %+v, want ECS's defaults 100/200", dc)
	}
	s2 := e.waitService(t, "web", "3 running, steady", func(s types.Service) bool {
		return completed(s) && s.RunningCount == 3 && hasEvent(s, "has reached a steady state.")
	})
	if !hasEvent(s2, "(service web) has started 3 tasks: (task ") {
		t.Errorf("events lack the start:\n%s", summary(s2))
	}
	tasks := e.tasks(t, "web")
	zones := map[string]int{}
	for _, tk := range tasks {
		if aws.ToString(tk.Group) != "service:web" || !strings.HasPrefix(aws.ToString(tk.StartedBy), "ecs-svc/") {
			t.Errorf("task group %q startedBy %q", aws.ToString(tk.Group), aws.ToString(tk.StartedBy))
		}
		zones[aws.ToString(tk.AvailabilityZone)]++
	}
	if len(tasks) != 3 || zones["us-east-1a"] < 1 || zones["us-east-1b"] < 1 {
		t.Errorf("tasks %d by zone %v: want 3 spread over both zones", len(tasks), zones)
	}

	// ListServices, tags.
	list, err := e.api.ListServices(e.ctx, &ecs.ListServicesInput{Cluster: aws.String(e.cluster)})
	if err != nil || len(list.ServiceArns) != 1 {
		t.Fatalf("ListServices = %v, %v", list, err)
	}
	if _, err := e.api.TagResource(e.ctx, &ecs.TagResourceInput{ResourceArn: s.ServiceArn, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}}); err != nil {
		t.Fatal(err)
	}
	tags, err := e.api.ListTagsForResource(e.ctx, &ecs.ListTagsForResourceInput{ResourceArn: s.ServiceArn})
	if err != nil || len(tags.Tags) != 1 {
		t.Fatalf("tags = %v, %v", tags, err)
	}

	// Scale out and in: no deployment.
	up, err := e.api.UpdateService(e.ctx, &ecs.UpdateServiceInput{Cluster: aws.String(e.cluster), Service: aws.String("web"), DesiredCount: aws.Int32(5)})
	if err != nil {
		t.Fatal(err)
	}
	if len(up.Service.Deployments) != 1 || up.Service.DesiredCount != 5 {
		t.Fatalf("scaling started a deployment:\n%s", summary(*up.Service))
	}
	e.waitService(t, "web", "5 running", func(s types.Service) bool { return stable(s) && s.RunningCount == 5 })
	if _, err := e.api.UpdateService(e.ctx, &ecs.UpdateServiceInput{Cluster: aws.String(e.cluster), Service: aws.String("web"), DesiredCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	s3 := e.waitService(t, "web", "2 running", func(s types.Service) bool { return stable(s) && s.RunningCount == 2 })
	if !hasEvent(s3, "has stopped 3 running tasks") {
		t.Errorf("no scale-in event:\n%s", summary(s3))
	}
	// Balanced after scale-in: one task per zone.
	zones = map[string]int{}
	for _, tk := range e.tasks(t, "web") {
		zones[aws.ToString(tk.AvailabilityZone)]++
	}
	if zones["us-east-1a"] != 1 || zones["us-east-1b"] != 1 {
		t.Errorf("after scale-in, tasks by zone %v: want one in each", zones)
	}

	// A task stopped by hand is replaced.
	victim := e.tasks(t, "web")[0]
	if _, err := e.api.StopTask(e.ctx, &ecs.StopTaskInput{Cluster: aws.String(e.cluster), Task: victim.TaskArn}); err != nil {
		t.Fatal(err)
	}
	e.waitService(t, "web", "a replacement", func(s types.Service) bool {
		ts := e.tasks(t, "web")
		return stable(s) && len(ts) == 2 && !slices.ContainsFunc(ts, func(x types.Task) bool { return aws.ToString(x.TaskArn) == aws.ToString(victim.TaskArn) })
	})

	// Delete: refused while scaled above 0, then with force.
	_, err = e.api.DeleteService(e.ctx, &ecs.DeleteServiceInput{Cluster: aws.String(e.cluster), Service: aws.String("web")})
	if apiCode(err) != "InvalidParameterException" {
		t.Fatalf("DeleteService of a scaled service: %v", err)
	}
	del, err := e.api.DeleteService(e.ctx, &ecs.DeleteServiceInput{Cluster: aws.String(e.cluster), Service: aws.String("web"), Force: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(del.Service.Status) != "DRAINING" {
		t.Errorf("DeleteService status %s, want DRAINING", aws.ToString(del.Service.Status))
	}
	list, _ = e.api.ListServices(e.ctx, &ecs.ListServicesInput{Cluster: aws.String(e.cluster)})
	if len(list.ServiceArns) != 0 {
		t.Errorf("ListServices lists a DRAINING service: %v", list.ServiceArns)
	}
	if d, err := e.api.DescribeClusters(e.ctx, &ecs.DescribeClustersInput{Clusters: []string{e.cluster}}); err != nil || d.Clusters[0].ActiveServicesCount != 0 {
		t.Errorf("activeServicesCount counts a deleted service: %+v %v", d, err)
	}
	e.waitService(t, "web", "INACTIVE", func(s types.Service) bool { return aws.ToString(s.Status) == "INACTIVE" })
	if ts := e.tasks(t, ""); len(ts) != 0 {
		t.Errorf("%d tasks still running after the service was deleted", len(ts))
	}
	// The cluster can go, and the name can be used again.
	if _, err := e.api.CreateService(e.ctx, &ecs.CreateServiceInput{Cluster: aws.String(e.cluster), ServiceName: aws.String("web"),
		TaskDefinition: aws.String(td), DesiredCount: aws.Int32(0)}); err != nil {
		t.Fatalf("CreateService after delete: %v", err)
	}
}

func (e *svcEnv) create(t *testing.T, in *ecs.CreateServiceInput) *types.Service {
	t.Helper()
	in.Cluster = aws.String(e.cluster)
	out, err := e.api.CreateService(e.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	return out.Service
}

func (e *svcEnv) update(t *testing.T, in *ecs.UpdateServiceInput) *types.Service {
	t.Helper()
	in.Cluster = aws.String(e.cluster)
	out, err := e.api.UpdateService(e.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	return out.Service
}

// healthyTasks counts the service's tasks RUNNING and desired RUNNING, by
// task definition, read from the store at one revision.
func (e *svcEnv) healthyTasks(t *testing.T, service string) map[string]int {
	t.Helper()
	tasks, err := e.c.Server.Store().ServiceTasks(e.ctx, e.cluster, service)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, tk := range tasks {
		if tk.LastStatus == gecs.TaskStatusRunning && tk.DesiredStatus == gecs.TaskStatusRunning {
			out[tk.TaskDefinitionARN]++
		}
	}
	return out
}

func TestServiceUpdateRules(t *testing.T) {
	t.Parallel()
	e := newSvcEnv(t)
	e.pilot(t, "us-east-1a", nil)
	v1 := e.taskDef(t, "api", "api:1")
	e.create(t, &ecs.CreateServiceInput{ServiceName: aws.String("api"), TaskDefinition: aws.String(v1), DesiredCount: aws.Int32(1)})
	e.waitService(t, "api", "steady", completed)

	// desiredCount and deploymentConfiguration alone start no deployment.
	s := e.update(t, &ecs.UpdateServiceInput{Service: aws.String("api"), DesiredCount: aws.Int32(2),
		DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(50), MaximumPercent: aws.Int32(150)}})
	if len(s.Deployments) != 1 || aws.ToInt32(s.DeploymentConfiguration.MinimumHealthyPercent) != 50 || aws.ToInt32(s.DeploymentConfiguration.MaximumPercent) != 150 {
		t.Fatalf("UpdateService(desiredCount, deploymentConfiguration):\n%s", summary(*s))
	}
	// The same task definition is no change either.
	if s = e.update(t, &ecs.UpdateServiceInput{Service: aws.String("api"), TaskDefinition: aws.String("api:1")}); len(s.Deployments) != 1 {
		t.Fatalf("UpdateService(same taskDefinition) started a deployment:\n%s", summary(*s))
	}
	// forceNewDeployment does, and the answer shows it PRIMARY.
	s = e.update(t, &ecs.UpdateServiceInput{Service: aws.String("api"), ForceNewDeployment: true})
	if len(s.Deployments) != 2 || aws.ToString(s.Deployments[0].Status) != "PRIMARY" || aws.ToString(s.Deployments[1].Status) != "ACTIVE" ||
		aws.ToString(s.Deployments[0].TaskDefinition) != v1 || s.Deployments[0].RolloutState != types.DeploymentRolloutStateInProgress {
		t.Fatalf("UpdateService(forceNewDeployment):\n%s", summary(*s))
	}
	e.waitService(t, "api", "the forced deployment done", completed)
	// A placement change does.
	s = e.update(t, &ecs.UpdateServiceInput{Service: aws.String("api"), PlacementStrategy: []types.PlacementStrategy{{Type: types.PlacementStrategyTypeBinpack, Field: aws.String("memory")}}})
	if len(s.Deployments) != 2 {
		t.Fatalf("UpdateService(placementStrategy) started no deployment:\n%s", summary(*s))
	}
	e.waitService(t, "api", "the placement deployment done", completed)

	// Deregistered task definitions keep running and scaling.
	if _, err := e.api.DeregisterTaskDefinition(e.ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(v1)}); err != nil {
		t.Fatal(err)
	}
	e.update(t, &ecs.UpdateServiceInput{Service: aws.String("api"), DesiredCount: aws.Int32(3)})
	e.waitService(t, "api", "3 tasks of the deregistered revision", func(s types.Service) bool { return stable(s) && s.RunningCount == 3 })
	if got := e.healthyTasks(t, "api"); got[v1] != 3 {
		t.Errorf("tasks by task definition %v, want 3 of %s", got, v1)
	}
	// Naming the service's own (deregistered) revision is fine; a
	// service cannot move to another INACTIVE one, as in ECS.
	if _, err := e.api.UpdateService(e.ctx, &ecs.UpdateServiceInput{Cluster: aws.String(e.cluster), Service: aws.String("api"),
		TaskDefinition: aws.String("api:1"), ForceNewDeployment: true}); err != nil {
		t.Errorf("forceNewDeployment on the service's own deregistered revision: %v", err)
	}
	other := e.taskDef(t, "other", "x")
	if _, err := e.api.DeregisterTaskDefinition(e.ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(other)}); err != nil {
		t.Fatal(err)
	}
	_, err := e.api.UpdateService(e.ctx, &ecs.UpdateServiceInput{Cluster: aws.String(e.cluster), Service: aws.String("api"), TaskDefinition: aws.String(other)})
	if apiCode(err) != "ClientException" {
		t.Errorf("UpdateService to an INACTIVE revision: %v", err)
	}
}

func TestServiceErrors(t *testing.T) {
	t.Parallel()
	e := newSvcEnv(t)
	td := e.taskDef(t, "web", "web")
	e.create(t, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(0)})
	c := aws.String(e.cluster)
	cases := []struct {
		name string
		call func() error
		code string
		msg  string
	}{
		{"BadName", func() error {
			_, err := e.api.CreateService(e.ctx, &ecs.CreateServiceInput{Cluster: c, ServiceName: aws.String("a b"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(1)})
			return err
		}, "InvalidParameterException", "Invalid service name"},
		{"NoDesiredCount", func() error {
			_, err := e.api.CreateService(e.ctx, &ecs.CreateServiceInput{Cluster: c, ServiceName: aws.String("x"), TaskDefinition: aws.String(td)})
			return err
		}, "InvalidParameterException", "desiredCount"},
		{"DaemonWithDesiredCount", func() error {
			_, err := e.api.CreateService(e.ctx, &ecs.CreateServiceInput{Cluster: c, ServiceName: aws.String("x"), TaskDefinition: aws.String(td),
				SchedulingStrategy: types.SchedulingStrategyDaemon, DesiredCount: aws.Int32(1)})
			return err
		}, "InvalidParameterException", "desired count"},
		{"NotIdempotent", func() error {
			_, err := e.api.CreateService(e.ctx, &ecs.CreateServiceInput{Cluster: c, ServiceName: aws.String("web"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(2)})
			return err
		}, "InvalidParameterException", "Creation of service was not idempotent."},
		{"LoadBalancers", func() error {
			_, err := e.api.CreateService(e.ctx, &ecs.CreateServiceInput{Cluster: c, ServiceName: aws.String("x"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(1),
				LoadBalancers: []types.LoadBalancer{{ContainerName: aws.String("app"), ContainerPort: aws.Int32(80)}}})
			return err
		}, "UnsupportedFeatureException", "Load balancers"},
		{"MinimumHealthyPercent", func() error {
			_, err := e.api.CreateService(e.ctx, &ecs.CreateServiceInput{Cluster: c, ServiceName: aws.String("x"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(1),
				DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(150)}})
			return err
		}, "InvalidParameterException", "minimumHealthyPercent"},
		{"UnknownTaskDefinition", func() error {
			_, err := e.api.CreateService(e.ctx, &ecs.CreateServiceInput{Cluster: c, ServiceName: aws.String("x"), TaskDefinition: aws.String("nope"), DesiredCount: aws.Int32(1)})
			return err
		}, "ClientException", "TaskDefinition not found."},
		{"ClusterNotFound", func() error {
			_, err := e.api.CreateService(e.ctx, &ecs.CreateServiceInput{Cluster: aws.String("nope"), ServiceName: aws.String("x"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(1)})
			return err
		}, "ClusterNotFoundException", ""},
		{"UpdateServiceNotFound", func() error {
			_, err := e.api.UpdateService(e.ctx, &ecs.UpdateServiceInput{Cluster: c, Service: aws.String("nope"), DesiredCount: aws.Int32(1)})
			return err
		}, "ServiceNotFoundException", "Service not found."},
		{"DeleteServiceNotFound", func() error {
			_, err := e.api.DeleteService(e.ctx, &ecs.DeleteServiceInput{Cluster: c, Service: aws.String("nope")})
			return err
		}, "ServiceNotFoundException", ""},
		{"ListTasksUnknownService", func() error {
			_, err := e.api.ListTasks(e.ctx, &ecs.ListTasksInput{Cluster: c, ServiceName: aws.String("nope")})
			return err
		}, "ServiceNotFoundException", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if apiCode(err) != tc.code || !strings.Contains(fmt.Sprint(err), tc.msg) {
				t.Errorf("got %v, want %s %q", err, tc.code, tc.msg)
			}
		})
	}
	t.Run("DescribeMissing", func(t *testing.T) {
		out, err := e.api.DescribeServices(e.ctx, &ecs.DescribeServicesInput{Cluster: c, Services: []string{"web", "nope"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Services) != 1 || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "MISSING" ||
			aws.ToString(out.Failures[0].Arn) != "arn:aws:ecs:us-east-1:123456789012:service/svc/nope" {
			t.Errorf("DescribeServices = %+v, failures %+v", out.Services, out.Failures)
		}
	})
	t.Run("DeleteClusterWithService", func(t *testing.T) {
		_, err := e.api.DeleteCluster(e.ctx, &ecs.DeleteClusterInput{Cluster: c})
		if apiCode(err) != "ClusterContainsServicesException" {
			t.Errorf("DeleteCluster = %v", err)
		}
	})
}

// TestServiceRollingUpdate: v1 -> v2 at 100/200 keeps at least
// desiredCount healthy tasks at every sample, and the old deployment
// leaves the list only once its tasks are stopped.
func TestServiceRollingUpdate(t *testing.T) {
	t.Parallel()
	e := newSvcEnv(t)
	for _, z := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
		e.pilot(t, z, nil)
	}
	v1, v2 := e.taskDef(t, "web", "web:1"), e.taskDef(t, "web", "web:2")
	const n = 6
	e.create(t, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: aws.String(v1), DesiredCount: aws.Int32(n)})
	e.waitService(t, "web", "v1 steady", completed)

	s := e.update(t, &ecs.UpdateServiceInput{Service: aws.String("web"), TaskDefinition: aws.String(v2)})
	if len(s.Deployments) != 2 || aws.ToString(s.Deployments[0].TaskDefinition) != v2 || aws.ToString(s.TaskDefinition) != v2 {
		t.Fatalf("UpdateService answer:\n%s", summary(*s))
	}
	deadline := time.Now().Add(svcWait)
	samples, sawBoth := 0, false
	for {
		s := e.describe(t, "web")
		h := e.healthyTasks(t, "web")
		samples++
		if h[v1]+h[v2] < n {
			t.Fatalf("sample %d: %d healthy tasks (%v), fewer than desiredCount %d", samples, h[v1]+h[v2], h, n)
		}
		sawBoth = sawBoth || (h[v1] > 0 && h[v2] > 0)
		if len(s.Deployments) == 1 {
			left, err := e.c.Server.Store().ServiceTasks(e.ctx, e.cluster, "web")
			if err != nil {
				t.Fatal(err)
			}
			if slices.ContainsFunc(left, func(tk *state.TaskRecord) bool { return tk.TaskDefinitionARN == v1 }) ||
				s.RunningCount != n || aws.ToString(s.Deployments[0].TaskDefinition) != v2 {
				t.Fatalf("the old deployment left while its tasks remain:\n%s", summary(s))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rolling update not done within %v:\n%s", svcWait, summary(s))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !sawBoth {
		t.Logf("note: no sample saw both versions (the update was quick)")
	}
	done := e.waitService(t, "web", "v2 completed", completed)
	if !hasEvent(done, "deployment completed.") || !hasEvent(done, "has stopped") {
		t.Errorf("events:\n%s", summary(done))
	}
	t.Logf("%d samples", samples)
}

// TestServiceCircuitBreaker: a task definition whose tasks fail to start
// trips the breaker, which fails the deployment and rolls back to the
// last completed one; without rollback the failed deployment stays and
// stops launching.
func TestServiceCircuitBreaker(t *testing.T) {
	t.Parallel()
	for _, rollback := range []bool{true, false} {
		t.Run(fmt.Sprintf("rollback=%v", rollback), func(t *testing.T) {
			t.Parallel()
			e := newSvcEnv(t)
			var bad string
			decide := func(td string) behaviour {
				if td == bad {
					return failToStart
				}
				return run
			}
			e.pilot(t, "us-east-1a", decide)
			e.pilot(t, "us-east-1b", decide)
			good := e.taskDef(t, "web", "web:good")
			bad = e.taskDef(t, "web", "web:missing-image")
			e.create(t, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: aws.String(good), DesiredCount: aws.Int32(2),
				DeploymentConfiguration: &types.DeploymentConfiguration{DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: rollback}}})
			first := e.waitService(t, "web", "steady", completed).Deployments[0]

			failed := aws.ToString(e.update(t, &ecs.UpdateServiceInput{Service: aws.String("web"), TaskDefinition: aws.String(bad)}).Deployments[0].Id)
			var s types.Service
			if rollback {
				s = e.waitService(t, "web", "rolled back and steady", func(s types.Service) bool {
					return completed(s) && aws.ToString(s.Deployments[0].TaskDefinition) == good
				})
				if aws.ToString(s.Deployments[0].Id) != aws.ToString(first.Id) || aws.ToString(s.TaskDefinition) != good {
					t.Errorf("rolled back to %s (%s), want %s (%s)", aws.ToString(s.Deployments[0].Id), aws.ToString(s.TaskDefinition), aws.ToString(first.Id), good)
				}
				for _, want := range []string{"(deployment " + failed + ") deployment failed: tasks failed to start.", "rolling back to deployment " + aws.ToString(first.Id) + "."} {
					if !hasEvent(s, want) {
						t.Errorf("no event %q:\n%s", want, summary(s))
					}
				}
			} else {
				s = e.waitService(t, "web", "the deployment FAILED", func(s types.Service) bool {
					return s.Deployments[0].RolloutState == types.DeploymentRolloutStateFailed
				})
				d := s.Deployments[0]
				if aws.ToString(d.Id) != failed || aws.ToString(d.RolloutStateReason) != "ECS deployment circuit breaker: tasks failed to start." || d.FailedTasks < 3 {
					t.Errorf("failed deployment:\n%s", summary(s))
				}
				if len(s.Deployments) != 2 || s.Deployments[1].RunningCount != 2 {
					t.Errorf("the old deployment should keep its tasks:\n%s", summary(s))
				}
			}
			if h := e.healthyTasks(t, "web"); h[good] != 2 {
				t.Errorf("healthy tasks %v, want 2 of the good revision", h)
			}
		})
	}
}

// TestServiceCrashLoop: tasks that exit as soon as they start are
// restarted with a growing delay, and an event says so.
func TestServiceCrashLoop(t *testing.T) {
	t.Parallel()
	e := newSvcEnv(t)
	e.pilot(t, "us-east-1a", func(string) behaviour { return crash })
	td := e.taskDef(t, "loop", "loop")
	e.create(t, &ecs.CreateServiceInput{ServiceName: aws.String("loop"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(1)})
	s := e.waitService(t, "loop", "the throttle event", func(s types.Service) bool {
		return hasEvent(s, "(service loop) is unable to consistently start tasks successfully.")
	})
	// From the third crash on, starts are spaced by the backoff (1 s, 2 s,
	// ...): far fewer than the fake agent could crash in the time.
	time.Sleep(2 * time.Second)
	s = e.describe(t, "loop")
	starts := 0
	for _, ev := range s.Events {
		if strings.Contains(aws.ToString(ev.Message), "has started") {
			starts++
		}
	}
	if starts > 8 {
		t.Errorf("%d starts: no backoff?\n%s", starts, summary(s))
	}
	if s.Deployments[0].FailedTasks < 3 {
		t.Errorf("failedTasks %d, want at least 3", s.Deployments[0].FailedTasks)
	}
}

// TestServiceDaemon: one task on each eligible instance, including one
// that registers later; a draining instance's task is stopped.
func TestServiceDaemon(t *testing.T) {
	t.Parallel()
	e := newSvcEnv(t)
	a := e.pilot(t, "us-east-1a", nil)
	e.pilot(t, "us-east-1b", nil)
	td := e.taskDef(t, "agentd", "agentd")
	e.create(t, &ecs.CreateServiceInput{ServiceName: aws.String("agentd"), TaskDefinition: aws.String(td), SchedulingStrategy: types.SchedulingStrategyDaemon})
	e.waitService(t, "agentd", "2 tasks", func(s types.Service) bool { return completed(s) && s.DesiredCount == 2 })

	c := e.pilot(t, "us-east-1c", nil)
	e.waitService(t, "agentd", "a task on the new instance", func(s types.Service) bool { return stable(s) && s.DesiredCount == 3 })
	on := map[string]int{}
	for _, tk := range e.tasks(t, "agentd") {
		on[aws.ToString(tk.ContainerInstanceArn)]++
	}
	if len(on) != 3 || on[c.a.ARN] != 1 {
		t.Errorf("tasks by instance %v, want one on each of 3", on)
	}

	if _, err := e.api.UpdateContainerInstancesState(e.ctx, &ecs.UpdateContainerInstancesStateInput{Cluster: aws.String(e.cluster),
		ContainerInstances: []string{a.a.ARN}, Status: types.ContainerInstanceStatusDraining}); err != nil {
		t.Fatal(err)
	}
	e.waitService(t, "agentd", "the draining instance's task stopped", func(s types.Service) bool {
		return stable(s) && s.DesiredCount == 2 && !slices.ContainsFunc(e.tasks(t, "agentd"), func(tk types.Task) bool { return aws.ToString(tk.ContainerInstanceArn) == a.a.ARN })
	})

	// A deployment replaces each instance's task in place.
	v2 := e.taskDef(t, "agentd", "agentd:2")
	e.update(t, &ecs.UpdateServiceInput{Service: aws.String("agentd"), TaskDefinition: aws.String(v2)})
	e.waitService(t, "agentd", "v2 on both", func(s types.Service) bool { return completed(s) && e.healthyTasks(t, "agentd")[v2] == 2 })
}

// TestServiceInstanceLoss: when an agent stops heartbeating, its service
// tasks are replaced elsewhere; when it comes back, it stops the copies
// that were replaced.
func TestServiceInstanceLoss(t *testing.T) {
	t.Parallel()
	e := newSvcEnv(t, testcluster.Options{HeartbeatTimeout: time.Second})
	pilots := []*pilot{e.pilot(t, "us-east-1a", nil), e.pilot(t, "us-east-1b", nil), e.pilot(t, "us-east-1c", nil)}
	td := e.taskDef(t, "web", "web")
	e.create(t, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(2)})
	e.waitService(t, "web", "steady", completed)
	victim := e.tasks(t, "web")[0]
	var lost *pilot
	for _, p := range pilots {
		if p.a.ARN == aws.ToString(victim.ContainerInstanceArn) {
			lost = p
		}
	}
	lost.stop()
	e.waitService(t, "web", "a replacement elsewhere", func(s types.Service) bool {
		ts := e.tasks(t, "web")
		return stable(s) && len(ts) == 2 && !slices.ContainsFunc(ts, func(tk types.Task) bool { return aws.ToString(tk.ContainerInstanceArn) == lost.a.ARN })
	})
	st, err := e.c.Server.Store().GetTask(e.ctx, e.cluster, lastSegment(aws.ToString(victim.TaskArn)))
	if err != nil {
		t.Fatal(err)
	}
	if st.DesiredStatus != "STOPPED" || st.LastStatus != "RUNNING" || st.StoppedReason != gecs.StoppedReasonInstanceLost {
		t.Errorf("lost task: desired %s last %s reason %q", st.DesiredStatus, st.LastStatus, st.StoppedReason)
	}

	lost.start() // the agent comes back and stops the replaced copy
	testcluster.WaitFor(t, svcWait, "the returning agent to stop the replaced task", func() bool {
		tk, err := e.c.Server.Store().GetTask(e.ctx, e.cluster, lastSegment(aws.ToString(victim.TaskArn)))
		return err == nil && tk.LastStatus == "STOPPED"
	})
	s := e.describe(t, "web")
	if !stable(s) || s.RunningCount != 2 {
		t.Errorf("after the agent came back:\n%s", summary(s))
	}
}

func lastSegment(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

// TestServiceWaiters: the AWS CLI's own waiters. services-stable returns
// once the service is steady, and the SDK's (same acceptors) does not
// while a deployment is still rolling; services-inactive returns after
// DeleteService.
func TestServiceWaiters(t *testing.T) {
	t.Parallel()
	e := newSvcEnv(t)
	var v2 string
	e.pilot(t, "us-east-1a", func(td string) behaviour {
		if td == v2 {
			return hold // the new revision's tasks never start
		}
		return run
	})
	v1 := e.taskDef(t, "web", "web:1")
	v2 = e.taskDef(t, "web", "web:2")
	e.create(t, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: aws.String(v1), DesiredCount: aws.Int32(2)})
	cli := testcluster.AWSCLI(t)
	if out, err := e.awsRun(t, cli, "ecs", "wait", "services-stable", "--cluster", e.cluster, "--services", "web"); err != nil {
		t.Fatalf("aws ecs wait services-stable: %v: %s", err, out)
	}
	if s := e.describe(t, "web"); !stable(s) || s.RunningCount != 2 {
		t.Fatalf("services-stable returned on:\n%s", summary(s))
	}

	e.update(t, &ecs.UpdateServiceInput{Service: aws.String("web"), TaskDefinition: aws.String(v2)})
	w := ecs.NewServicesStableWaiter(e.api, func(o *ecs.ServicesStableWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 200*time.Millisecond
	})
	err := w.Wait(e.ctx, &ecs.DescribeServicesInput{Cluster: aws.String(e.cluster), Services: []string{"web"}}, 2*time.Second)
	if err == nil {
		t.Fatalf("services-stable succeeded while the new deployment's tasks are PENDING:\n%s", summary(e.describe(t, "web")))
	}

	if _, err := e.api.DeleteService(e.ctx, &ecs.DeleteServiceInput{Cluster: aws.String(e.cluster), Service: aws.String("web"), Force: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if out, err := e.awsRun(t, cli, "ecs", "wait", "services-inactive", "--cluster", e.cluster, "--services", "web"); err != nil {
		t.Fatalf("aws ecs wait services-inactive: %v: %s", err, out)
	}
}

// awsRun runs the AWS CLI against the test server and returns its output.
func (e *svcEnv) awsRun(t *testing.T, cli string, args ...string) ([]byte, error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(cli, append(args, "--endpoint-url", e.c.Server.URL(), "--region", testcluster.Region)...)
	cmd.Env = []string{
		"HOME=" + home, "PATH=" + os.Getenv("PATH"),
		"AWS_ACCESS_KEY_ID=" + testcluster.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + testcluster.SecretAccessKey,
		"AWS_CONFIG_FILE=" + filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=",
	}
	return cmd.CombinedOutput()
}
