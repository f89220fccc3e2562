package cli_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/gantry-dev/gantry/agent"
	"github.com/gantry-dev/gantry/internal/testimage"
)

// TestDevRunTaskWithAWSCLI runs a real container through `gantry dev`'s
// in-process agent with nothing but the AWS CLI: register-task-definition,
// run-task, describe-tasks (RUNNING, with the host port it answers on),
// stop-task, describe-tasks (STOPPED, UserInitiated, exit code).
func TestDevRunTaskWithAWSCLI(t *testing.T) {
	cli := awsCLI(t)
	img := testimage.Build(t, "gantry-testapp:latest") // skips without Docker
	dataDir := t.TempDir()
	t.Cleanup(func() { removeAgentContainers(t, dataDir) }) // after gantry stops
	addr := freePort(t)
	p := startGantry(t, addr, "dev", "--data-dir", dataDir, "--attribute", "team=blue") // gantry agent's flags work in dev
	if !strings.Contains(p.stdout(), "Agent:    container instance arn:aws:ecs:us-east-1:000000000000:container-instance/default/") {
		t.Fatalf("banner does not show the agent:\n%s", p.stdout())
	}
	env := append(exportedEnv(t, p.stdout()), "PATH="+os.Getenv("PATH"), "HOME="+t.TempDir(), "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=")
	aws := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(cli, append(append([]string{"ecs"}, args...), "--endpoint-url", p.endpoint, "--output", "json")...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws ecs %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	type task struct {
		TaskArn, LastStatus, StopCode, StoppedReason string
		Containers                                   []struct {
			Name, LastStatus, RuntimeId string
			ExitCode                    *int
			NetworkBindings             []struct{ ContainerPort, HostPort int }
		}
	}
	describe := func(arn string) task {
		t.Helper()
		var out struct{ Tasks []task }
		if err := json.Unmarshal(aws("describe-tasks", "--cluster", "default", "--tasks", arn), &out); err != nil || len(out.Tasks) != 1 {
			t.Fatalf("describe-tasks: %v %+v", err, out)
		}
		return out.Tasks[0]
	}
	wait := func(arn, status string) task {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			tk := describe(arn)
			if tk.LastStatus == status {
				return tk
			}
			if time.Now().After(deadline) {
				t.Fatalf("task never %s: %+v", status, tk)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	var attrs struct {
		Attributes []struct{ Name, Value, TargetType string }
	}
	if err := json.Unmarshal(aws("list-attributes", "--cluster", "default", "--target-type", "container-instance", "--attribute-name", "team"), &attrs); err != nil ||
		len(attrs.Attributes) != 1 || attrs.Attributes[0].Value != "blue" {
		t.Errorf("the in-process agent's --attribute: %v %+v", err, attrs)
	}

	aws("register-task-definition", "--family", "cli-web", "--container-definitions",
		`[{"name":"web","image":"`+img+`","memory":64,"command":["serve"],"portMappings":[{"containerPort":8080,"hostPort":0}]}]`)
	var run struct {
		Tasks    []task
		Failures []any
	}
	if err := json.Unmarshal(aws("run-task", "--cluster", "default", "--task-definition", "cli-web"), &run); err != nil || len(run.Tasks) != 1 {
		t.Fatalf("run-task: %v %+v", err, run)
	}
	arn := run.Tasks[0].TaskArn

	tk := wait(arn, "RUNNING")
	if len(tk.Containers) != 1 || len(tk.Containers[0].NetworkBindings) != 1 || tk.Containers[0].RuntimeId == "" {
		t.Fatalf("describe-tasks: %+v", tk)
	}
	port := tk.Containers[0].NetworkBindings[0].HostPort
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("health: %d", resp.StatusCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("host port %d never answered: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	aws("stop-task", "--cluster", "default", "--task", arn, "--reason", "quickstart done")
	tk = wait(arn, "STOPPED")
	if tk.StopCode != "UserInitiated" || tk.StoppedReason != "quickstart done" || tk.Containers[0].ExitCode == nil || *tk.Containers[0].ExitCode != 0 {
		t.Errorf("stopped task: %+v", tk)
	}
}

// TestDevWithoutDocker: with no engine, gantry dev still serves the API and
// says that no agent runs.
func TestDevWithoutDocker(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no-docker.sock"))
	p := startGantry(t, freePort(t), "dev", "--data-dir", t.TempDir())
	if !strings.Contains(p.stdout(), "No agent runs: no Docker engine is reachable at unix://") {
		t.Errorf("banner:\n%s", p.stdout())
	}
	// startGantry waited for /healthz: the API serves.
}

// removeAgentContainers removes the containers the agent of a gantry dev
// data dir created, found by its container instance label.
func removeAgentContainers(t *testing.T, dataDir string) {
	b, err := os.ReadFile(filepath.Join(dataDir, "agent", "identity.json"))
	if err != nil {
		return
	}
	var id struct{ ContainerInstanceArn string }
	if json.Unmarshal(b, &id) != nil || id.ContainerInstanceArn == "" {
		return
	}
	c := testimage.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := c.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", agent.LabelContainerInstance+"="+id.ContainerInstanceArn))})
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	for _, ct := range list {
		c.ContainerRemove(ctx, ct.ID, container.RemoveOptions{Force: true})
	}
}
