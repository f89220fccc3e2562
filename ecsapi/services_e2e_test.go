package ecsapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/docker/docker/api/types/container"

	"github.com/gantry-dev/gantry/internal/testcluster"
	"github.com/gantry-dev/gantry/internal/testimage"
)

// Services on the local Docker engine (skipped without one, failed with
// GANTRY_REQUIRE_E2E=1): the real agent runs the tasks.

func dockerSvcEnv(t *testing.T) (*svcEnv, *testcluster.DockerCluster) {
	d := testcluster.StartDocker(t, testcluster.DockerOptions{Cluster: "svc"})
	return &svcEnv{c: d.Cluster, api: d.ECS(), ctx: context.Background(), cluster: "svc"}, d
}

func (e *svcEnv) dockerTaskDef(t *testing.T, family, image string, command ...string) string {
	t.Helper()
	out, err := e.api.RegisterTaskDefinition(e.ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String(image), Memory: aws.Int32(32), Essential: aws.Bool(true),
			Command: command, StopTimeout: aws.Int32(2),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

// TestE2EServiceKilledContainer: `aws ecs wait services-stable` returns
// for a service on Docker, and a container killed behind Gantry's back is
// replaced.
func TestE2EServiceKilledContainer(t *testing.T) {
	e, d := dockerSvcEnv(t)
	cli := testcluster.AWSCLI(t)
	td := e.dockerTaskDef(t, "web", d.Image, "sleep", "3600")
	e.create(t, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(2)})
	if out, err := e.awsRun(t, cli, "ecs", "wait", "services-stable", "--cluster", e.cluster, "--services", "web"); err != nil {
		t.Fatalf("aws ecs wait services-stable: %v: %s", err, out)
	}
	if s := e.describe(t, "web"); !stable(s) || s.RunningCount != 2 {
		t.Fatalf("services-stable returned on:\n%s", summary(s))
	}

	victim := e.tasks(t, "web")[0]
	id := aws.ToString(victim.Containers[0].RuntimeId)
	start := time.Now()
	if err := testimage.Client(t).ContainerKill(e.ctx, id, "KILL"); err != nil {
		t.Fatal(err)
	}
	var replacement types.Task
	testcluster.WaitFor(t, 60*time.Second, "a replacement RUNNING", func() bool {
		for _, tk := range e.tasks(t, "web") {
			if aws.ToString(tk.TaskArn) != aws.ToString(victim.TaskArn) && aws.ToString(tk.LastStatus) == "RUNNING" &&
				tk.StartedAt != nil && tk.StartedAt.After(start.Add(-time.Second)) {
				replacement = tk
				return true
			}
		}
		return false
	})
	t.Logf("kill to replacement RUNNING: %v", time.Since(start))
	stopped := d.WaitTask(t, aws.ToString(victim.TaskArn), 30*time.Second, func(tk types.Task) bool { return aws.ToString(tk.LastStatus) == "STOPPED" })
	if stopped.StopCode != types.TaskStopCodeEssentialContainerExited {
		t.Errorf("killed task: %s", testcluster.Describe(stopped))
	}
	insp, err := testimage.Client(t).ContainerInspect(e.ctx, aws.ToString(replacement.Containers[0].RuntimeId))
	if err != nil || !insp.State.Running {
		t.Errorf("replacement container: %v %+v", err, insp.State)
	}
	e.waitService(t, "web", "steady again", func(s types.Service) bool { return stable(s) && s.RunningCount == 2 })
}

// TestE2EServiceDeployments: a rolling update on Docker keeps desiredCount
// healthy tasks at every sample; then an image that does not exist trips
// the circuit breaker, which rolls back.
func TestE2EServiceDeployments(t *testing.T) {
	e, d := dockerSvcEnv(t)
	v1 := e.dockerTaskDef(t, "web", d.Image, "sleep", "3600")
	v2 := e.dockerTaskDef(t, "web", d.Image, "sleep", "3601")
	bad := e.dockerTaskDef(t, "web", "gantry-test/no-such-image:never", "sleep", "1")
	e.create(t, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: aws.String(v1), DesiredCount: aws.Int32(2),
		DeploymentConfiguration: &types.DeploymentConfiguration{DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}}})
	e.waitService(t, "web", "v1 steady", completed)

	e.update(t, &ecs.UpdateServiceInput{Service: aws.String("web"), TaskDefinition: aws.String(v2)})
	deadline := time.Now().Add(90 * time.Second)
	for {
		s := e.describe(t, "web")
		h := e.healthyTasks(t, "web")
		if h[v1]+h[v2] < 2 {
			t.Fatalf("%v healthy tasks during the update, fewer than 2", h)
		}
		if completed(s) && aws.ToString(s.TaskDefinition) == v2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("update not done:\n%s", summary(s))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range d.Containers(t) {
		if c.Labels["com.amazonaws.ecs.task-definition-version"] == "1" && c.State == container.StateRunning {
			t.Errorf("a v1 container still runs: %s", c.ID)
		}
	}

	e.update(t, &ecs.UpdateServiceInput{Service: aws.String("web"), TaskDefinition: aws.String(bad)})
	s := e.waitService(t, "web", "rolled back", func(s types.Service) bool {
		return completed(s) && aws.ToString(s.TaskDefinition) == v2 && hasEvent(s, "rolling back to deployment")
	})
	if !hasEvent(s, "deployment failed: tasks failed to start.") {
		t.Errorf("events:\n%s", summary(s))
	}
	if h := e.healthyTasks(t, "web"); h[v2] != 2 {
		t.Errorf("after the rollback: %v", h)
	}
}
