package registry_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gantry-dev/gantry/agent"
	"github.com/gantry-dev/gantry/ecr"
	"github.com/gantry-dev/gantry/internal/testcluster"
)

// resolvingRuntime does what the agent must do with task images (issue 8):
// resolve ECR-style references to the built-in registry (ecr.Registry.Resolve)
// and pull them with the registry's credentials. Once the agent does this
// itself, images reach this wrapper resolved and with credentials, and it
// passes them through unchanged.
// TestRunTaskFromRegistry: an image pushed with the docker CLI, then
// removed from the engine, runs as a task whose definition names it
// ECR-style (<account>.dkr.ecr.<region>.amazonaws.com/app:v1): the engine
// pulls it from Gantry.
func TestRunTaskFromRegistry(t *testing.T) {
	t.Parallel()
	d := newDocker(t)
	var host string
	// The agent itself resolves the ECR-style name to the built-in registry,
	// pulls with its instance token and advertises ecr-auth.
	dc := testcluster.StartDocker(t, testcluster.DockerOptions{Agent: func(cfg *agent.Config) {
		reg, err := ecr.RegistryFor(cfg.Server, "arn:aws:ecs:"+testcluster.Region+":"+testcluster.AccountID+":container-instance/default/x")
		if err != nil {
			t.Fatal(err)
		}
		host = reg.Host
		cfg.PullBehavior = agent.PullAlways
	}})
	if host != dc.Server.RegistryHost() {
		t.Fatalf("the agent reaches the registry at %s, the server advertises %s", host, dc.Server.RegistryHost())
	}
	ctx := context.Background()
	if _, err := dc.ECR().CreateRepository(ctx, &awsecr.CreateRepositoryInput{RepositoryName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	e := &env{Cluster: dc.Cluster, api: dc.ECR(), host: host}
	e.token = e.login(t)

	// An image the engine has never had: the test image with a unique label.
	ref := host + "/app:v1"
	b := make([]byte, 8)
	rand.Read(b)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+dc.Image+"\nLABEL unique="+hex.EncodeToString(b)+"\n"), 0o644)
	d.must("build", "-q", "-t", ref, dir)
	t.Cleanup(func() { d.run("", "rmi", "--force", ref) })
	if out, err := d.run(e.token, "login", "--username", "AWS", "--password-stdin", host); err != nil {
		t.Fatal(out, err)
	}
	d.must("push", ref)
	d.must("rmi", ref)
	if _, err := d.run("", "image", "inspect", ref); err == nil {
		t.Fatal("the pushed image is still in the engine")
	}

	td, err := dc.ECS().RegisterTaskDefinition(ctx, &awsecs.RegisterTaskDefinitionInput{
		Family: aws.String("from-registry"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name:    aws.String("app"),
			Image:   aws.String(testcluster.AccountID + ".dkr.ecr." + testcluster.Region + ".amazonaws.com/app:v1"),
			Memory:  aws.Int32(64),
			Command: []string{"sleep", "3600"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	run, err := dc.ECS().RunTask(ctx, &awsecs.RunTaskInput{Cluster: aws.String(dc.ClusterName), TaskDefinition: td.TaskDefinition.TaskDefinitionArn})
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Tasks) != 1 {
		t.Fatalf("RunTask placed nothing: %s", aws.ToString(run.Failures[0].Reason))
	}
	task := dc.WaitTask(t, *run.Tasks[0].TaskArn, 2*time.Minute, func(tk types.Task) bool {
		return aws.ToString(tk.LastStatus) == "RUNNING" || aws.ToString(tk.LastStatus) == "STOPPED"
	})
	if aws.ToString(task.LastStatus) != "RUNNING" {
		t.Fatalf("task %s: %s", aws.ToString(task.LastStatus), aws.ToString(task.StoppedReason))
	}
	if out := d.must("image", "inspect", "--format", "{{index .Config.Labels \"unique\"}}", ref); strings.TrimSpace(out) != hex.EncodeToString(b) {
		t.Fatalf("the engine runs %q, not the pushed image", out)
	}
	// The agent reports the pulled image's digest, the registry's.
	imgs, err := dc.ECR().DescribeImages(ctx, &awsecr.DescribeImagesInput{RepositoryName: aws.String("app"), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("v1")}}})
	if err != nil || len(imgs.ImageDetails) != 1 {
		t.Fatalf("DescribeImages: %+v, %v", imgs, err)
	}
	want := aws.ToString(imgs.ImageDetails[0].ImageDigest)
	if got := aws.ToString(task.Containers[0].ImageDigest); got != want || !strings.HasPrefix(got, "sha256:") {
		t.Errorf("container imageDigest %q, want the registry's %q", got, want)
	}
	dc.ECS().StopTask(ctx, &awsecs.StopTaskInput{Cluster: aws.String(dc.ClusterName), Task: run.Tasks[0].TaskArn})
}
