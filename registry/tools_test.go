package registry_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/gantry-dev/gantry/internal/testcluster"
	"github.com/gantry-dev/gantry/internal/testimage"
)

// Tests with the real tools: the docker CLI against the engine on this
// machine, skopeo, and AWS CLI v2. Each skips when its tool is missing, and
// fails instead with GANTRY_REQUIRE_E2E=1 (CI installs docker.io, skopeo
// and awscli).

func lookTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testcluster.SkipOrFail(t, fmt.Sprintf("%s not found (apt-get install %s)", name, pkg))
	}
	return p
}

// tool runs a command with env added to a minimal environment and returns
// its combined output.
func tool(t *testing.T, env []string, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		cmd.Env = append(cmd.Env, "DOCKER_HOST="+h)
	}
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// docker is the docker CLI with its own config directory, so logins stay
// out of the user's ~/.docker.
type docker struct {
	t   *testing.T
	env []string
}

func newDocker(t *testing.T) *docker {
	t.Helper()
	lookTool(t, "docker", "docker.io")
	testimage.Client(t) // skips (or fails) without an engine
	return &docker{t: t, env: []string{"DOCKER_CONFIG=" + t.TempDir()}}
}

func (d *docker) run(stdin string, args ...string) (string, error) {
	d.t.Helper()
	return tool(d.t, d.env, stdin, "docker", args...)
}

func (d *docker) must(args ...string) string {
	d.t.Helper()
	out, err := d.run("", args...)
	if err != nil {
		d.t.Fatal(err)
	}
	return out
}

// image tags the testapp image as ref and removes the tag when the test ends.
func (d *docker) image(ref string) {
	d.t.Helper()
	d.must("tag", testimage.Build(d.t, testcluster.TestImage), ref)
	d.t.Cleanup(func() { d.run("", "rmi", "--force", ref) })
}

// TestDockerCLI: docker login with the ECR token, push, remove the local
// copy, pull; a wrong password is refused; an immutable tag is not moved.
func TestDockerCLI(t *testing.T) {
	t.Parallel()
	d := newDocker(t)
	e := setup(t)
	e.createRepo(t, "team/app", "")
	e.createRepo(t, "frozen", "IMMUTABLE")

	if out, err := d.run("wrong", "login", "--username", "AWS", "--password-stdin", e.host); err == nil {
		t.Fatalf("docker login with a wrong password succeeded: %s", out)
	}
	if out, err := d.run(e.token, "login", "--username", "AWS", "--password-stdin", e.host); err != nil || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("docker login: %s %v", out, err)
	}
	ref := e.host + "/team/app:v1"
	d.image(ref)
	d.must("push", ref)
	d.must("rmi", ref)
	if out := d.must("pull", ref); !strings.Contains(out, "Downloaded newer image") {
		t.Fatalf("docker pull: %s", out)
	}
	d.must("image", "inspect", ref)

	frozen := e.host + "/frozen:v1"
	d.image(frozen)
	d.must("push", frozen)
	d.must("push", frozen) // the same image again
	other := e.host + "/frozen:other"
	d.image(other)
	// A different image under the frozen tag: a new layer on top of testapp.
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM "+other+"\nLABEL changed=yes\n"), 0o644)
	d.must("build", "-q", "-t", frozen, ctx)
	out, err := d.run("", "push", frozen)
	if err == nil || !strings.Contains(out, "cannot be overwritten because the repository is immutable") {
		t.Fatalf("pushing over an immutable tag: %v\n%s", err, out)
	}
}

// TestSkopeo copies an OCI layout into the registry, between repositories
// and back out, with skopeo.
func TestSkopeo(t *testing.T) {
	t.Parallel()
	skopeo := lookTool(t, "skopeo", "skopeo")
	e := setup(t)
	e.createRepo(t, "src", "")
	e.createRepo(t, "dst", "")
	img := image(t, layer(t, 1<<20), layer(t, 4096))
	want := mustDigest(t, img)
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	creds := "AWS:" + e.token
	run := func(args ...string) string {
		t.Helper()
		out, err := tool(t, nil, "", skopeo, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	run("copy", "--dest-creds", creds, "--dest-tls-verify=false", "oci:"+dir, "docker://"+e.host+"/src:v1")
	run("copy", "--src-creds", creds, "--src-tls-verify=false", "--dest-creds", creds, "--dest-tls-verify=false",
		"docker://"+e.host+"/src:v1", "docker://"+e.host+"/dst:copied")
	var info struct{ Digest string }
	if err := json.Unmarshal([]byte(run("inspect", "--creds", creds, "--tls-verify=false", "docker://"+e.host+"/dst:copied")), &info); err != nil || info.Digest != want {
		t.Fatalf("skopeo inspect: %+v, %v; want %s", info, err, want)
	}
	out := t.TempDir()
	run("copy", "--src-creds", creds, "--src-tls-verify=false", "docker://"+e.host+"/dst:copied", "oci:"+out+":copied")
	if got, err := e.pullAll(t, "dst:copied"); err != nil || got.String() != want {
		t.Fatalf("pull after skopeo: %s, %v", got, err)
	}
	if _, err := tool(t, nil, "", skopeo, "inspect", "--tls-verify=false", "docker://"+e.host+"/dst:copied"); err == nil {
		t.Fatal("skopeo inspect without credentials succeeded")
	}
}

// TestAWSCLI drives the registry with `aws ecr` and the docker CLI, as the
// README does.
func TestAWSCLI(t *testing.T) {
	t.Parallel()
	cli := testcluster.AWSCLI(t)
	d := newDocker(t)
	e := setup(t)
	awsEnv := []string{"AWS_ACCESS_KEY_ID=" + testcluster.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + testcluster.SecretAccessKey,
		"AWS_DEFAULT_REGION=" + testcluster.Region, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1", "AWS_PAGER="}
	aws := func(args ...string) map[string]any {
		t.Helper()
		out, err := tool(t, awsEnv, "", cli, append([]string{"--endpoint-url", e.Server.URL(), "--output", "json"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		v := map[string]any{}
		if strings.TrimSpace(out) != "" {
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatalf("aws %v printed %q", args, out)
			}
		}
		return v
	}
	repo := aws("ecr", "create-repository", "--repository-name", "web", "--image-tag-mutability", "IMMUTABLE")["repository"].(map[string]any)
	uri := repo["repositoryUri"].(string)
	if uri != e.host+"/web" {
		t.Fatalf("repositoryUri %q", uri)
	}

	// The README's login line, verbatim but for the endpoint.
	login := fmt.Sprintf("%s --endpoint-url %s ecr get-login-password | docker login --username AWS --password-stdin %s", cli, e.Server.URL(), e.host)
	if out, err := tool(t, append(awsEnv, d.env...), "", "sh", "-c", login); err != nil || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("%s: %v", login, err)
	}
	d.image(uri + ":v1")
	d.must("push", uri+":v1")

	ids := aws("ecr", "list-images", "--repository-name", "web")["imageIds"].([]any)
	if len(ids) != 1 || ids[0].(map[string]any)["imageTag"] != "v1" {
		t.Fatalf("list-images: %v", ids)
	}
	details := aws("ecr", "describe-images", "--repository-name", "web")["imageDetails"].([]any)
	detail := details[0].(map[string]any)
	if detail["imageSizeInBytes"].(float64) <= 0 || detail["imagePushedAt"] == nil {
		t.Fatalf("describe-images: %v", detail)
	}
	got := aws("ecr", "batch-get-image", "--repository-name", "web", "--image-ids", "imageTag=v1")["images"].([]any)
	manifest := got[0].(map[string]any)["imageManifest"].(string)
	if !strings.Contains(manifest, "schemaVersion") {
		t.Fatalf("batch-get-image manifest %q", manifest)
	}
	// ECR's way to add a tag: put-image with the manifest.
	aws("ecr", "put-image", "--repository-name", "web", "--image-tag", "v1-copy", "--image-manifest", manifest)
	if _, err := tool(t, awsEnv, "", cli, "--endpoint-url", e.Server.URL(), "ecr", "put-image", "--repository-name", "web",
		"--image-tag", "v1", "--image-manifest", manifest+" "); err == nil ||
		!strings.Contains(err.Error(), "ImageTagAlreadyExistsException") {
		t.Fatalf("put-image over an immutable tag: %v", err)
	}
	aws("ecr", "put-image-tag-mutability", "--repository-name", "web", "--image-tag-mutability", "MUTABLE")
	del := aws("ecr", "batch-delete-image", "--repository-name", "web", "--image-ids", "imageTag=v1-copy")
	if len(del["imageIds"].([]any)) != 1 {
		t.Fatalf("batch-delete-image: %v", del)
	}
	if _, err := tool(t, awsEnv, "", cli, "--endpoint-url", e.Server.URL(), "ecr", "delete-repository", "--repository-name", "web"); err == nil ||
		!strings.Contains(err.Error(), "RepositoryNotEmptyException") {
		t.Fatalf("delete-repository of a repository with images: %v", err)
	}
	aws("ecr", "delete-repository", "--repository-name", "web", "--force")
	if out, err := tool(t, awsEnv, "", cli, "--endpoint-url", e.Server.URL(), "ecr", "describe-repositories", "--repository-names", "web"); err == nil ||
		!strings.Contains(out, "RepositoryNotFoundException") {
		t.Fatalf("describe-repositories after delete: %v %s", err, out)
	}
	if _, err := d.run("", "pull", uri+":v1"); err == nil {
		t.Fatal("pull from a deleted repository succeeded")
	}
}
