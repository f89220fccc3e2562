package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/gantry-dev/gantry/agent"
	"github.com/gantry-dev/gantry/internal/testimage"
)

// agentProc is a `gantry agent` process.
type agentProc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	exited chan error
}

func startAgent(t *testing.T, endpoint, dataDir, tokenFile string) *agentProc {
	t.Helper()
	p := &agentProc{exited: make(chan error, 1)}
	p.cmd = exec.Command(gantryBin, "agent", "--server", endpoint, "--cluster", "default", "--token-file", tokenFile,
		"--data-dir", dataDir, "--metadata-address", "off", "--log-level", "warn")
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
		}
	})
	return p
}

// kill9 kills the agent as kill -9 does: no chance to clean anything up.
func (p *agentProc) kill9(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent survived SIGKILL")
	}
}

// agentContainers lists the containers of the agent whose data dir is
// dataDir (by its container instance label).
func agentContainers(t *testing.T, dataDir string) []container.Summary {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "identity.json"))
	if err != nil {
		return nil
	}
	var id struct{ ContainerInstanceArn string }
	if json.Unmarshal(b, &id) != nil || id.ContainerInstanceArn == "" {
		return nil
	}
	list, err := testimage.Client(t).ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", agent.LabelContainerInstance+"="+id.ContainerInstanceArn))})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// TestAgentKill9AndLogs runs tasks on a real `gantry agent` process, kills
// it with SIGKILL, starts it again on the same data dir, and checks that it
// adopted its containers (none duplicated, none orphaned, a task stopped
// meanwhile stopped), then reads a task's output with `gantry logs`.
func TestAgentKill9AndLogs(t *testing.T) {
	img := testimage.Build(t, "gantry-testapp:latest") // skips without Docker
	dataDir, agentDir := t.TempDir(), t.TempDir()
	t.Cleanup(func() {
		c := testimage.Client(t)
		for _, ct := range agentContainers(t, agentDir) {
			c.ContainerRemove(context.Background(), ct.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		}
	})
	const key, secret = "GKIAKILL9TESTKEY0000", "kill9/test/secret/0000000000000000000000"
	p := startGantry(t, freePort(t), "server", "--data-dir", dataDir, "--access-key-id", key, "--secret-access-key", secret)
	api := ecsClient(p.endpoint, key, secret)
	ctx := context.Background()
	if _, err := api.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("default")}); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dataDir, "join-token")
	a := startAgent(t, p.endpoint, agentDir, tokenFile)
	instance := func() string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, err := api.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String("default")})
			if err == nil && len(out.ContainerInstanceArns) == 1 {
				return out.ContainerInstanceArns[0]
			}
			if time.Now().After(deadline) {
				t.Fatalf("no agent registered: %v %+v\n%s", err, out, a.stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	inst := instance()

	if _, err := api.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("kill9"),
		ContainerDefinitions: []types.ContainerDefinition{
			{Name: aws.String("web"), Image: aws.String(img), Memory: aws.Int32(64), Command: []string{"serve"}},
			{Name: aws.String("once"), Image: aws.String(img), Memory: aws.Int32(16), Essential: aws.Bool(false), Command: []string{"exit", "0"}},
		}}); err != nil {
		t.Fatal(err)
	}
	run := func() string {
		out, err := api.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("default"), TaskDefinition: aws.String("kill9")})
		if err != nil || len(out.Tasks) != 1 {
			t.Fatalf("RunTask: %v %+v", err, out)
		}
		return aws.ToString(out.Tasks[0].TaskArn)
	}
	describe := func(arn string) types.Task {
		out, err := api.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("default"), Tasks: []string{arn}})
		if err != nil || len(out.Tasks) != 1 {
			t.Fatalf("DescribeTasks: %v", err)
		}
		return out.Tasks[0]
	}
	wait := func(arn string, ok func(types.Task) bool) types.Task {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			tk := describe(arn)
			if ok(tk) {
				return tk
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %s: %s %s %s\nagent:\n%s", arn, aws.ToString(tk.LastStatus), tk.StopCode, aws.ToString(tk.StoppedReason), a.stderr.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	settled := func(tk types.Task) bool {
		if aws.ToString(tk.LastStatus) != "RUNNING" {
			return false
		}
		for _, c := range tk.Containers {
			if aws.ToString(c.Name) == "once" && c.ExitCode == nil {
				return false
			}
		}
		return true
	}
	ids := func(tk types.Task) string {
		var s []string
		for _, c := range tk.Containers {
			s = append(s, aws.ToString(c.Name)+"="+aws.ToString(c.RuntimeId))
		}
		return strings.Join(s, ",")
	}
	keep, stopMe := run(), run()
	before := ids(wait(keep, settled))
	wait(stopMe, settled)

	a.kill9(t)
	if _, err := api.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("default"), Task: aws.String(stopMe)}); err != nil {
		t.Fatal(err)
	}
	a = startAgent(t, p.endpoint, agentDir, tokenFile)
	if again := instance(); again != inst {
		t.Fatalf("the restarted agent registered as %s, not %s", again, inst)
	}
	wait(stopMe, func(tk types.Task) bool { return aws.ToString(tk.LastStatus) == "STOPPED" })
	if after := ids(wait(keep, settled)); after != before {
		t.Errorf("containers changed across the restart: %s, then %s", before, after)
	}
	perTask := map[string]int{}
	for _, c := range agentContainers(t, agentDir) {
		perTask[c.Labels[agent.LabelTaskARN]]++
		if c.Labels[agent.LabelTaskARN] == stopMe && c.State == "running" {
			t.Errorf("a container of the stopped task runs: %s", c.Names)
		}
	}
	if perTask[keep] != 2 || perTask[stopMe] != 2 || len(perTask) != 2 {
		t.Errorf("containers per task: %v", perTask)
	}

	// gantry logs, with the user's credentials in the environment.
	logs := exec.Command(gantryBin, "logs", agent.TaskID(keep), "--container", "web", "--endpoint-url", p.endpoint, "--region", "us-east-1")
	logs.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+key, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true")
	out, err := logs.CombinedOutput()
	if err != nil || string(out) != "serving on :8080\n" {
		t.Errorf("gantry logs: %v: %q", err, out)
	}
	logs = exec.Command(gantryBin, "logs", agent.TaskID(keep), "--endpoint-url", p.endpoint, "--region", "us-east-1")
	logs.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+key, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true")
	if out, err := logs.CombinedOutput(); err == nil || !strings.Contains(string(out), "InvalidParameterException: task "+agent.TaskID(keep)+" has 2 containers (web, once): name one") {
		t.Errorf("gantry logs without --container: %v: %q", err, out)
	}
}
