package ecsapi_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gantry-dev/gantry/agent"
	"github.com/gantry-dev/gantry/agent/runtime/sim"
	"github.com/gantry-dev/gantry/internal/testcluster"
)

func gpuRequirement(n string) []types.ResourceRequirement {
	return []types.ResourceRequirement{{Type: types.ResourceTypeGpu, Value: aws.String(n)}}
}

// remainingGPUs is an instance's GPU remainingResources.
func remainingGPUs(ci types.ContainerInstance) []string {
	for _, r := range ci.RemainingResources {
		if aws.ToString(r.Name) == "GPU" {
			return r.StringSetValue
		}
	}
	return nil
}

// TestRunTaskGPUs runs GPU tasks on sim agents, one with two GPUs and one
// with none: GPUs are counted and pinned to containers by ID (gpuIds), the
// agent runs the task with them, a task that finds too few is RESOURCE:GPU,
// and a stopped task's GPUs are free again.
func TestRunTaskGPUs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	gpus := []string{"GPU-0", "GPU-1"}
	fleet, err := testcluster.StartSimFleet(e.ctx, testcluster.SimFleetConfig{Server: e.c.Server.URL(), Cluster: e.cluster,
		Token: e.c.Server.JoinToken(), N: 2, Configure: func(i int, c *agent.Config) {
			if i == 0 {
				c.GPUs = gpus
				c.Runtime = sim.New(sim.Options{GPUs: gpus})
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fleet.Close)
	gpuARN, plainARN := fleet.Agents[0].ContainerInstanceARN(), fleet.Agents[1].ContainerInstanceARN()
	if got := remainingGPUs(e.instance(t, gpuARN)); !slices.Equal(got, gpus) {
		t.Fatalf("remaining GPUs of a fresh instance: %q", got)
	}

	_, err = e.api.RegisterTaskDefinition(e.ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("cuda"),
		ContainerDefinitions: []types.ContainerDefinition{
			{Name: aws.String("train"), Image: aws.String("gantry-testapp:latest"), Memory: aws.Int32(64), ResourceRequirements: gpuRequirement("1")},
			{Name: aws.String("log"), Image: aws.String("gantry-testapp:latest"), Memory: aws.Int32(16), Essential: aws.Bool(false)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("cuda"), Count: aws.Int32(3)})
	if len(out.Tasks) != 2 {
		t.Fatalf("placed %d tasks, want 2 (failures %+v)", len(out.Tasks), out.Failures)
	}
	var got []string
	var arns []string
	for _, task := range out.Tasks {
		if aws.ToString(task.ContainerInstanceArn) != gpuARN {
			t.Errorf("a GPU task on %s", aws.ToString(task.ContainerInstanceArn))
		}
		if n := len(task.Containers[0].GpuIds); n != 1 || task.Containers[1].GpuIds != nil {
			t.Errorf("gpuIds %q and %q", task.Containers[0].GpuIds, task.Containers[1].GpuIds)
		}
		got = append(got, task.Containers[0].GpuIds...)
		arns = append(arns, aws.ToString(task.TaskArn))
	}
	if slices.Sort(got); !slices.Equal(got, gpus) {
		t.Errorf("assigned GPUs %q, want each of %q once", got, gpus)
	}
	if reasons := failureReasons(out.Failures); !slices.Equal(reasons, []string{"RESOURCE:GPU", "RESOURCE:GPU"}) {
		t.Errorf("failures %+v", out.Failures)
	}
	if left := remainingGPUs(e.instance(t, gpuARN)); len(left) != 0 {
		t.Errorf("remaining GPUs with both taken: %q", left)
	}
	testcluster.WaitFor(t, 20*time.Second, "the agent to run the GPU tasks", func() bool {
		d, err := e.api.DescribeTasks(e.ctx, &ecs.DescribeTasksInput{Cluster: aws.String(e.cluster), Tasks: arns})
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range d.Tasks {
			if s := aws.ToString(task.LastStatus); s == "STOPPED" {
				t.Fatalf("task stopped: %s", aws.ToString(task.StoppedReason))
			} else if s != "RUNNING" {
				return false
			}
		}
		return true
	})

	// An override asking for more GPUs than any instance has fails to place.
	out = e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("cuda"), Overrides: &types.TaskOverride{
		ContainerOverrides: []types.ContainerOverride{{Name: aws.String("train"), ResourceRequirements: gpuRequirement("3")}}}})
	if len(out.Tasks) != 0 || len(out.Failures) != 2 {
		t.Errorf("three GPUs: %+v", out)
	}

	// Stopping a task frees its GPU for the next.
	stopped, err := e.api.StopTask(e.ctx, &ecs.StopTaskInput{Cluster: aws.String(e.cluster), Task: aws.String(arns[0])})
	if err != nil {
		t.Fatal(err)
	}
	free := stopped.Task.Containers[0].GpuIds
	testcluster.WaitFor(t, 20*time.Second, "the stopped task's GPU to be free", func() bool {
		return slices.Equal(remainingGPUs(e.instance(t, gpuARN)), free)
	})
	out = e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("cuda")})
	if len(out.Tasks) != 1 || !slices.Equal(out.Tasks[0].Containers[0].GpuIds, free) {
		t.Fatalf("after a stop: %+v (freed %q)", out, free)
	}

	// StartTask checks and assigns GPUs as RunTask does.
	if _, err := e.api.StopTask(e.ctx, &ecs.StopTaskInput{Cluster: aws.String(e.cluster), Task: out.Tasks[0].TaskArn}); err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 20*time.Second, "a GPU to be free", func() bool { return len(remainingGPUs(e.instance(t, gpuARN))) == 1 })
	st, err := e.api.StartTask(e.ctx, &ecs.StartTaskInput{Cluster: aws.String(e.cluster), TaskDefinition: aws.String("cuda"),
		ContainerInstances: []string{plainARN, gpuARN}})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Tasks) != 1 || len(st.Tasks[0].Containers[0].GpuIds) != 1 || len(st.Failures) != 1 ||
		aws.ToString(st.Failures[0].Arn) != plainARN || aws.ToString(st.Failures[0].Reason) != "RESOURCE:GPU" {
		t.Errorf("StartTask: %+v", st)
	}
	if err := fleet.Err(); err != nil {
		t.Error(err)
	}
}

// TestRunTaskGPUErrors: ECS's checks of GPU requirements at registration
// and in overrides.
func TestRunTaskGPUErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.agent(t, 1024, 1024)
	register := func(req []types.ResourceRequirement, compat ...types.Compatibility) error {
		in := &ecs.RegisterTaskDefinitionInput{
			Family: aws.String("g"), RequiresCompatibilities: compat, Cpu: aws.String("256"), Memory: aws.String("512"),
			ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("c"), Image: aws.String("gantry-testapp:latest"),
				ResourceRequirements: req}},
		}
		if slices.Contains(compat, types.CompatibilityFargate) {
			in.NetworkMode = types.NetworkModeAwsvpc
		}
		_, err := e.api.RegisterTaskDefinition(e.ctx, in)
		return err
	}
	for _, v := range []string{"0", "-1", "two"} {
		err := register(gpuRequirement(v))
		wantCode(t, err, "ClientException")
		if err == nil || !strings.Contains(err.Error(), "Specify a positive number of GPUs") {
			t.Errorf("GPU %q: %v", v, err)
		}
	}
	err := register(gpuRequirement("1"), types.CompatibilityFargate)
	wantCode(t, err, "ClientException")
	if err == nil || !strings.Contains(err.Error(), "do not support GPU") {
		t.Errorf("Fargate GPU: %v", err)
	}

	e.taskDef(t, "app", 10, 16)
	_, err = e.api.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String(e.cluster), TaskDefinition: aws.String("app"), Overrides: &types.TaskOverride{
		ContainerOverrides: []types.ContainerOverride{{Name: aws.String("app"), ResourceRequirements: gpuRequirement("0")}}}})
	wantCode(t, err, "InvalidParameterException")
}

// TestRegisterContainerInstanceGPUs: ECS's RegisterContainerInstance takes
// GPUs as platformDevices; they become the GPU resource placement counts.
func TestRegisterContainerInstanceGPUs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	register := func(devices ...string) (*ecs.RegisterContainerInstanceOutput, error) {
		in := &ecs.RegisterContainerInstanceInput{Cluster: aws.String(e.cluster), TotalResources: []types.Resource{
			{Name: aws.String("CPU"), Type: aws.String("INTEGER"), IntegerValue: 1024},
			{Name: aws.String("MEMORY"), Type: aws.String("INTEGER"), IntegerValue: 512},
		}}
		for _, d := range devices {
			in.PlatformDevices = append(in.PlatformDevices, types.PlatformDevice{Id: aws.String(d), Type: types.PlatformDeviceTypeGpu})
		}
		return e.api.RegisterContainerInstance(e.ctx, in)
	}
	out, err := register("GPU-a", "GPU-b")
	if err != nil {
		t.Fatal(err)
	}
	if got := remainingGPUs(*out.ContainerInstance); !slices.Equal(got, []string{"GPU-a", "GPU-b"}) {
		t.Errorf("remaining GPUs %q", got)
	}
	_, err = register("GPU-a", "GPU-a")
	wantCode(t, err, "InvalidParameterException")
}
