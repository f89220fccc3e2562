package agent_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gantry-dev/gantry/agent"
	"github.com/gantry-dev/gantry/internal/testcluster"
	"github.com/gantry-dev/gantry/internal/testimage"
)

// End-to-end tests: a real control plane, an in-process agent, and the
// local Docker engine, driven through the AWS SDK exactly as a user would.
// They skip without an engine (fail with GANTRY_REQUIRE_E2E=1); every
// container they make carries the test's label and is removed at the end.

// Generous deadlines: a loaded CI machine can be slow, and these assert
// order and outcome, not speed.
const (
	startDeadline = 60 * time.Second
	stopDeadline  = 60 * time.Second
)

func register(t *testing.T, d *testcluster.DockerCluster, family string, edit func(*awsecs.RegisterTaskDefinitionInput), containers ...types.ContainerDefinition) string {
	t.Helper()
	in := &awsecs.RegisterTaskDefinitionInput{Family: aws.String(family), ContainerDefinitions: containers}
	if edit != nil {
		edit(in)
	}
	out, err := d.ECS().RegisterTaskDefinition(context.Background(), in)
	if err != nil {
		t.Fatalf("RegisterTaskDefinition: %v", err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

// testapp is a container of the test image running testapp with args.
func testapp(d *testcluster.DockerCluster, name string, essential bool, args ...string) types.ContainerDefinition {
	return types.ContainerDefinition{
		Name:      aws.String(name),
		Image:     aws.String(d.Image),
		Memory:    aws.Int32(64),
		Essential: aws.Bool(essential),
		Command:   args,
	}
}

func runTask(t *testing.T, d *testcluster.DockerCluster, td string, edit func(*awsecs.RunTaskInput)) string {
	t.Helper()
	in := &awsecs.RunTaskInput{Cluster: aws.String(d.ClusterName), TaskDefinition: aws.String(td)}
	if edit != nil {
		edit(in)
	}
	out, err := d.ECS().RunTask(context.Background(), in)
	if err != nil {
		t.Fatalf("RunTask: %v", err)
	}
	if len(out.Failures) > 0 || len(out.Tasks) != 1 {
		t.Fatalf("RunTask: %d tasks, failures %+v", len(out.Tasks), out.Failures)
	}
	return aws.ToString(out.Tasks[0].TaskArn)
}

func status(s string) func(types.Task) bool {
	return func(t types.Task) bool { return aws.ToString(t.LastStatus) == s }
}

func container(t *testing.T, task types.Task, name string) types.Container {
	t.Helper()
	for _, c := range task.Containers {
		if aws.ToString(c.Name) == name {
			return c
		}
	}
	t.Fatalf("task has no container %q: %s", name, testcluster.Describe(task))
	return types.Container{}
}

// serving waits until the task's container answers on its host port, so a
// test does not signal testapp before it has installed its signal handler
// (a Go program that is PID 1 exits 2 on a SIGTERM that arrives earlier).
func serving(t *testing.T, task types.Task, name string) {
	t.Helper()
	c := container(t, task, name)
	if len(c.NetworkBindings) == 0 {
		t.Fatalf("container %s publishes no port: %s", name, testcluster.Describe(task))
	}
	url := "http://127.0.0.1:" + strconv.Itoa(int(aws.ToInt32(c.NetworkBindings[0].HostPort))) + "/health"
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// published gives a container a dynamic host port for 8080.
func published(c types.ContainerDefinition) types.ContainerDefinition {
	c.PortMappings = []types.PortMapping{{ContainerPort: aws.Int32(8080), HostPort: aws.Int32(0)}}
	return c
}

func stopTask(t *testing.T, d *testcluster.DockerCluster, arn, reason string) {
	t.Helper()
	if _, err := d.ECS().StopTask(context.Background(), &awsecs.StopTaskInput{Cluster: aws.String(d.ClusterName), Task: aws.String(arn), Reason: aws.String(reason)}); err != nil {
		t.Fatalf("StopTask: %v", err)
	}
}

func TestE2ERunTaskReachablePort(t *testing.T) {
	t.Parallel()
	d := testcluster.StartDocker(t)
	web := testapp(d, "web", true, "serve")
	web.PortMappings = []types.PortMapping{{ContainerPort: aws.Int32(8080), HostPort: aws.Int32(0), Protocol: types.TransportProtocolTcp}}
	web.Environment = []types.KeyValuePair{{Name: aws.String("GREETING"), Value: aws.String("hello")}}
	web.DockerLabels = map[string]string{"team": "web"}
	td := register(t, d, "e2e-web", nil, web)
	arn := runTask(t, d, td, func(in *awsecs.RunTaskInput) { in.StartedBy = aws.String("e2e") })

	task := d.WaitTask(t, arn, startDeadline, status("RUNNING"))
	c := container(t, task, "web")
	if len(c.NetworkBindings) != 1 {
		t.Fatalf("network bindings: %s", testcluster.Describe(task))
	}
	nb := c.NetworkBindings[0]
	if aws.ToInt32(nb.ContainerPort) != 8080 || aws.ToInt32(nb.HostPort) == 0 || nb.Protocol != types.TransportProtocolTcp {
		t.Errorf("binding %+v", nb)
	}
	if task.StartedAt == nil || task.PullStartedAt == nil || task.PullStoppedAt == nil || aws.ToString(task.AvailabilityZone) != "us-east-1a" {
		t.Errorf("timestamps or zone missing: startedAt %v pull %v-%v zone %q", task.StartedAt, task.PullStartedAt, task.PullStoppedAt, aws.ToString(task.AvailabilityZone))
	}

	// The port answers, on the host, from inside the container.
	// RUNNING means the process started, not that it listens yet.
	url := "http://127.0.0.1:" + strconv.Itoa(int(aws.ToInt32(nb.HostPort)))
	get := func(path string) (int, string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get(url + path)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp.StatusCode, string(body)
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s%s: %v", url, path, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if code, body := get("/health"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("health: %d %q", code, body)
	}
	if _, body := get("/"); !strings.Contains(body, "GREETING") || !strings.Contains(body, "hello") {
		t.Errorf("environment not passed: %s", body)
	}

	// runtimeId is the Docker container, which carries ECS's labels.
	insp, err := testimage.Client(t).ContainerInspect(context.Background(), aws.ToString(c.RuntimeId))
	if err != nil {
		t.Fatal(err)
	}
	l := insp.Config.Labels
	if l[agent.LabelTaskARN] != arn || l[agent.LabelContainerName] != "web" || l[agent.LabelCluster] != "default" ||
		l[agent.LabelTaskDefinitionFamily] != "e2e-web" || l[agent.LabelTaskDefinitionVersion] != "1" || l["team"] != "web" {
		t.Errorf("labels %v", l)
	}
	if insp.HostConfig.Memory != 64<<20 || insp.HostConfig.CPUShares != 2 {
		t.Errorf("memory %d cpu shares %d", insp.HostConfig.Memory, insp.HostConfig.CPUShares)
	}
	if want := "/ecs-e2e-web-1-web-" + agent.TaskID(arn); insp.Name != want {
		t.Errorf("name %q, want %q", insp.Name, want)
	}
}

func TestE2EEssentialExitStopsTask(t *testing.T) {
	t.Parallel()
	d := testcluster.StartDocker(t)
	td := register(t, d, "e2e-exit", nil,
		testapp(d, "main", true, "exit", "3", "--after", "1s"),
		testapp(d, "sidecar", false, "serve"))
	arn := runTask(t, d, td, nil)
	task := d.WaitTask(t, arn, startDeadline+stopDeadline, status("STOPPED"))
	if task.StopCode != types.TaskStopCodeEssentialContainerExited || aws.ToString(task.StoppedReason) != "Essential container in task exited" {
		t.Errorf("stop: %s", testcluster.Describe(task))
	}
	if c := container(t, task, "main"); c.ExitCode == nil || *c.ExitCode != 3 {
		t.Errorf("main: %s", testcluster.Describe(task))
	}
	if c := container(t, task, "sidecar"); c.ExitCode == nil || aws.ToString(c.LastStatus) != "STOPPED" {
		t.Errorf("sidecar not stopped: %s", testcluster.Describe(task))
	}
	if task.StoppedAt == nil || task.ExecutionStoppedAt == nil {
		t.Errorf("stoppedAt %v executionStoppedAt %v", task.StoppedAt, task.ExecutionStoppedAt)
	}
}

func TestE2ENonEssentialExitKeepsTaskRunning(t *testing.T) {
	t.Parallel()
	d := testcluster.StartDocker(t)
	td := register(t, d, "e2e-nonessential", nil,
		testapp(d, "main", true, "serve"),
		testapp(d, "job", false, "exit", "5"))
	arn := runTask(t, d, td, nil)
	task := d.WaitTask(t, arn, startDeadline, func(task types.Task) bool {
		c := container(t, task, "job")
		return aws.ToString(c.LastStatus) == "STOPPED" && c.ExitCode != nil
	})
	if c := container(t, task, "job"); *c.ExitCode != 5 {
		t.Errorf("job: %s", testcluster.Describe(task))
	}
	time.Sleep(2 * time.Second) // long enough for a wrong stop to show
	task = d.WaitTask(t, arn, time.Second, func(types.Task) bool { return true })
	if aws.ToString(task.LastStatus) != "RUNNING" || aws.ToString(task.DesiredStatus) != "RUNNING" ||
		aws.ToString(container(t, task, "main").LastStatus) != "RUNNING" {
		t.Errorf("a non-essential exit changed the task: %s", testcluster.Describe(task))
	}
}

func TestE2EStopTask(t *testing.T) {
	t.Parallel()
	d := testcluster.StartDocker(t)
	td := register(t, d, "e2e-stop", nil, published(testapp(d, "web", true, "serve")))
	arn := runTask(t, d, td, nil)
	serving(t, d.WaitTask(t, arn, startDeadline, status("RUNNING")), "web")
	stopTask(t, d, arn, "done testing")
	task := d.WaitTask(t, arn, stopDeadline, status("STOPPED"))
	if task.StopCode != types.TaskStopCodeUserInitiated || aws.ToString(task.StoppedReason) != "done testing" {
		t.Errorf("stop: %s", testcluster.Describe(task))
	}
	if c := container(t, task, "web"); c.ExitCode == nil || *c.ExitCode != 0 {
		t.Errorf("testapp exits 0 on SIGTERM: %s", testcluster.Describe(task))
	}
}

// A container that ignores SIGTERM is killed only once its stopTimeout has
// passed: the task stays unstopped for a while after StopTask, then stops
// with 137 (SIGKILL).
func TestE2EStopTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 4 // seconds
	d := testcluster.StartDocker(t)
	stubborn := published(testapp(d, "stubborn", true, "serve", "--ignore-sigterm"))
	stubborn.StopTimeout = aws.Int32(timeout)
	td := register(t, d, "e2e-stoptimeout", nil, stubborn)
	arn := runTask(t, d, td, nil)
	serving(t, d.WaitTask(t, arn, startDeadline, status("RUNNING")), "stubborn")
	asked := time.Now()
	stopTask(t, d, arn, "stop")
	// Well inside the timeout, the container still runs.
	time.Sleep(time.Second)
	task := d.WaitTask(t, arn, time.Second, func(types.Task) bool { return true })
	if aws.ToString(task.LastStatus) == "STOPPED" {
		t.Fatalf("stopped %v after StopTask, before its %ds stopTimeout: %s", time.Since(asked), timeout, testcluster.Describe(task))
	}
	task = d.WaitTask(t, arn, stopDeadline, status("STOPPED"))
	if took := time.Since(asked); took < timeout*time.Second {
		t.Errorf("stopped after %v, before the %ds stopTimeout", took, timeout)
	}
	if c := container(t, task, "stubborn"); c.ExitCode == nil || *c.ExitCode != 137 {
		t.Errorf("want SIGKILL's 137: %s", testcluster.Describe(task))
	}
	if task.StoppingAt == nil || task.StoppedAt == nil || task.StoppedAt.Sub(*task.StoppingAt) < (timeout-1)*time.Second {
		t.Errorf("stoppingAt %v stoppedAt %v", task.StoppingAt, task.StoppedAt)
	}
}

func TestE2EMissingImage(t *testing.T) {
	t.Parallel()
	d := testcluster.StartDocker(t)
	c := testapp(d, "app", true, "serve")
	c.Image = aws.String("gantry-test/no-such-image:never")
	td := register(t, d, "e2e-missing", nil, c)
	arn := runTask(t, d, td, nil)
	task := d.WaitTask(t, arn, startDeadline, status("STOPPED"))
	app := container(t, task, "app")
	if task.StopCode != types.TaskStopCodeTaskFailedToStart ||
		!strings.HasPrefix(aws.ToString(app.Reason), "CannotPullContainerError: ") ||
		!strings.HasPrefix(aws.ToString(task.StoppedReason), "CannotPullContainerError: ") {
		t.Errorf("stop: %s", testcluster.Describe(task))
	}
	if n := len(d.Containers(t)); n != 0 {
		t.Errorf("%d containers created for an image that does not exist", n)
	}
}

func TestE2EBadOverridesStartNothing(t *testing.T) {
	t.Parallel()
	d := testcluster.StartDocker(t)
	td := register(t, d, "e2e-overrides", nil, testapp(d, "app", true, "serve"))
	for name, ov := range map[string]types.ContainerOverride{
		"UnknownContainer":      {Name: aws.String("nope"), Command: []string{"exit", "1"}},
		"NegativeCPU":           {Name: aws.String("app"), Cpu: aws.Int32(-5)},
		"ReservationAboveLimit": {Name: aws.String("app"), Memory: aws.Int32(32), MemoryReservation: aws.Int32(64)},
	} {
		_, err := d.ECS().RunTask(context.Background(), &awsecs.RunTaskInput{
			Cluster: aws.String(d.ClusterName), TaskDefinition: aws.String(td),
			Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{ov}},
		})
		if err == nil {
			t.Errorf("%s: RunTask accepted bad overrides", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	list, err := d.ECS().ListTasks(context.Background(), &awsecs.ListTasksInput{Cluster: aws.String(d.ClusterName)})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.TaskArns) != 0 {
		t.Errorf("tasks created: %v", list.TaskArns)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(d.Containers(t)); n != 0 {
		t.Errorf("%d containers started", n)
	}
}

func TestE2EDrainingInstanceGetsNoNewTasks(t *testing.T) {
	t.Parallel()
	d := testcluster.StartDocker(t)
	td := register(t, d, "e2e-drain", nil, testapp(d, "app", true, "serve"))
	ctx := context.Background()
	if _, err := d.ECS().UpdateContainerInstancesState(ctx, &awsecs.UpdateContainerInstancesStateInput{
		Cluster: aws.String(d.ClusterName), ContainerInstances: []string{d.Agent.ContainerInstanceARN()},
		Status: types.ContainerInstanceStatusDraining,
	}); err != nil {
		t.Fatal(err)
	}
	out, err := d.ECS().RunTask(ctx, &awsecs.RunTaskInput{Cluster: aws.String(d.ClusterName), TaskDefinition: aws.String(td)})
	if err == nil && (len(out.Tasks) != 0 || len(out.Failures) == 0) {
		t.Fatalf("RunTask on a draining instance: %d tasks, failures %+v", len(out.Tasks), out.Failures)
	}
	if err == nil {
		t.Logf("failures: %s: %s", aws.ToString(out.Failures[0].Reason), aws.ToString(out.Failures[0].Detail))
	} else {
		t.Logf("RunTask: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(d.Containers(t)); n != 0 {
		t.Errorf("%d containers started on a draining instance", n)
	}
}

// A member this host cannot honour never runs half-way: RunTask refuses it
// (the instance lacks the capability the task definition's
// requiresAttributes names: failure reason ATTRIBUTE, as in ECS), or the
// task stops before anything is created, with the member named in
// stoppedReason.
func TestE2EUnsupportedMembersAreRefused(t *testing.T) {
	t.Parallel()
	d := testcluster.StartDocker(t)
	base := func() types.ContainerDefinition { return testapp(d, "app", true, "serve") }
	tests := []struct {
		name string
		edit func(*awsecs.RegisterTaskDefinitionInput)
		want string // in the RunTask failure or the stoppedReason
	}{
		{"Secrets", func(in *awsecs.RegisterTaskDefinitionInput) {
			in.ExecutionRoleArn = aws.String("arn:aws:iam::123456789012:role/exec")
			in.ContainerDefinitions[0].Secrets = []types.Secret{{Name: aws.String("PW"), ValueFrom: aws.String("arn:aws:ssm:us-east-1:123456789012:parameter/pw")}}
		}, "ATTRIBUTE"}, // requires ecs.capability.secrets.ssm.environment-variables
		{"EFS", func(in *awsecs.RegisterTaskDefinitionInput) {
			in.Volumes = []types.Volume{{Name: aws.String("efs"), EfsVolumeConfiguration: &types.EFSVolumeConfiguration{FileSystemId: aws.String("fs-12345678")}}}
		}, "ATTRIBUTE"}, // requires ecs.capability.efs
		{"Privileged", func(in *awsecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].Privileged = aws.Bool(true)
		}, "ATTRIBUTE"}, // requires com.amazonaws.ecs.capability.privileged-container
		{"RepositoryCredentials", func(in *awsecs.RegisterTaskDefinitionInput) {
			in.ExecutionRoleArn = aws.String("arn:aws:iam::123456789012:role/exec")
			in.ContainerDefinitions[0].RepositoryCredentials = &types.RepositoryCredentials{
				CredentialsParameter: aws.String("arn:aws:secretsmanager:us-east-1:123456789012:secret:reg")}
		}, "ATTRIBUTE"}, // requires ecs.capability.private-registry-authentication.secretsmanager
		{"Swap", func(in *awsecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].LinuxParameters = &types.LinuxParameters{MaxSwap: aws.Int32(512)}
		}, "container app: linuxParameters.maxSwap: swap settings are not supported by the Gantry agent yet"},
		{"AppArmor", func(in *awsecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].DockerSecurityOptions = []string{"apparmor:docker-default"}
		}, `container app: dockerSecurityOptions[0]: "apparmor:docker-default": this host's engine does not enforce apparmor`},
		{"Interactive", func(in *awsecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].Interactive = aws.Bool(true)
		}, "container app: interactive: stdin is not supported by the Gantry agent yet"},
		{"MissingSharedVolume", func(in *awsecs.RegisterTaskDefinitionInput) {
			in.Volumes = []types.Volume{{Name: aws.String("gantry-e2e-never-created"), DockerVolumeConfiguration: &types.DockerVolumeConfiguration{
				Scope: types.ScopeShared, Autoprovision: aws.Bool(false)}}}
			in.ContainerDefinitions[0].MountPoints = []types.MountPoint{{SourceVolume: aws.String("gantry-e2e-never-created"), ContainerPath: aws.String("/data")}}
		}, "no Docker volume named gantry-e2e-never-created on this host, and dockerVolumeConfiguration.autoprovision is false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td := register(t, d, "e2e-refused-"+strings.ToLower(tt.name), tt.edit, base())
			out, err := d.ECS().RunTask(context.Background(), &awsecs.RunTaskInput{Cluster: aws.String(d.ClusterName), TaskDefinition: aws.String(td)})
			switch {
			case err != nil:
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("RunTask: %v; want it to name %q", err, tt.want)
				}
			case len(out.Failures) > 0:
				f := aws.ToString(out.Failures[0].Reason) + " " + aws.ToString(out.Failures[0].Detail)
				if !strings.Contains(f, tt.want) {
					t.Errorf("RunTask failure %q does not name %q", f, tt.want)
				}
				t.Logf("refused by RunTask: %s", f)
			default:
				task := d.WaitTask(t, aws.ToString(out.Tasks[0].TaskArn), startDeadline, status("STOPPED"))
				if task.StopCode != types.TaskStopCodeTaskFailedToStart || !strings.Contains(aws.ToString(task.StoppedReason), tt.want) {
					t.Errorf("stop: %s\nwant the reason to contain %q", testcluster.Describe(task), tt.want)
				}
				t.Logf("stopped by the agent: %s", aws.ToString(task.StoppedReason))
			}
		})
	}
	if n := len(d.Containers(t)); n != 0 {
		t.Errorf("%d containers created", n)
	}
}
