package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// gantryBin is the gantry binary built once for these tests: they run the
// program exactly as users do.
var gantryBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gantry-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gantryBin = filepath.Join(dir, "gantry")
	out, err := exec.Command("go", "build", "-o", gantryBin, "../cmd/gantry").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build gantry: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running gantry process.
type proc struct {
	cmd      *exec.Cmd
	endpoint string
	mu       sync.Mutex
	out      bytes.Buffer
	stopped  bool
	stderr   bytes.Buffer
	// stopFn sends SIGTERM and waits for a clean exit.
	stopFn func()
}

func (p *proc) stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

type lockedWriter struct{ p *proc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startGantry runs `gantry <args>` listening on addr and waits until its
// health check answers and its banner is printed.
func startGantry(t *testing.T, addr string, args ...string) *proc {
	t.Helper()
	p := &proc{endpoint: "http://" + addr}
	p.cmd = exec.Command(gantryBin, append(args, "--listen", addr)...)
	p.cmd.Stdout = lockedWriter{p}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	t.Cleanup(func() { p.stop(t, exited) })
	p.stopFn = func() { p.stop(t, exited) }
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.endpoint + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(p.stdout(), "is ready") {
				break
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("gantry %v exited: %v\nstdout:\n%s\nstderr:\n%s", args, err, p.stdout(), p.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("gantry %v not healthy after 60s\nstderr:\n%s", args, p.stderr.String())
		}
	}
	return p
}

func (p *proc) stop(t *testing.T, exited chan error) {
	if p.stopped {
		return
	}
	p.stopped = true
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("gantry exited with %v after SIGTERM; stderr:\n%s", err, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		t.Errorf("gantry did not stop within 30s of SIGTERM")
	}
}

func ecsClient(endpoint, key, secret string) *ecs.Client {
	return ecs.New(ecs.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
		BaseEndpoint: aws.String(endpoint),
	})
}

// awsCLI returns AWS CLI v2 (Debian's /usr/bin/aws, not an older v1 that
// may come first on PATH), or skips: fails under GANTRY_REQUIRE_E2E=1.
func awsCLI(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/aws", "aws"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		if out, err := exec.Command(path, "--version").CombinedOutput(); err == nil && strings.HasPrefix(string(out), "aws-cli/2") {
			return path
		}
	}
	skipOrFail(t, "AWS CLI v2 not found (apt-get install awscli)")
	return ""
}

func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("GANTRY_REQUIRE_E2E") == "1" {
		t.Fatalf("%s; GANTRY_REQUIRE_E2E=1 makes this a failure", why)
	}
	t.Skip(why)
}

// quickstartScript returns the README quickstart's shell block.
func quickstartScript(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(b), "<!-- quickstart")
	block, _, ok2 := strings.Cut(block, "<!-- /quickstart -->")
	_, block, ok3 := strings.Cut(block, "```sh\n")
	block, _, ok4 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 || !ok4 || !strings.Contains(block, "aws ecs") {
		t.Fatal("README.md has no quickstart shell block")
	}
	return block
}

// dockerCLI checks that the docker CLI reaches an engine, or skips.
func dockerCLI(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		skipOrFail(t, fmt.Sprintf("no Docker engine reachable with the docker CLI: %v %s", err, out))
	}
}

// exportedEnv parses the `export A=B C=D` lines gantry dev prints.
func exportedEnv(t *testing.T, banner string) []string {
	t.Helper()
	var env []string
	for _, l := range strings.Split(banner, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "export "); ok {
			env = append(env, strings.Fields(rest)...)
		}
	}
	if len(env) != 3 {
		t.Fatalf("expected AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE and AWS_PROFILE exports, got %q in:\n%s", env, banner)
	}
	return env
}

// TestQuickstart runs the README quickstart verbatim, as one bash script,
// against `gantry dev` with generated credentials, using only the printed
// exports, with AWS CLI v2 first on PATH.
func TestQuickstart(t *testing.T) {
	cli := awsCLI(t)
	dockerCLI(t)
	if _, err := exec.LookPath("curl"); err != nil {
		skipOrFail(t, "curl not found (apt-get install curl)")
	}
	addr := freePort(t)
	t.Cleanup(func() {
		// Containers of the quickstart's task definition, stopped or not.
		out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=com.amazonaws.ecs.task-definition-family=hello").Output()
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
		}
		// The pushed image, by this test's registry name: not by ID, which
		// other runs' tags of the same build share.
		out, _ = exec.Command("docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference="+addr+"/hello").Output()
		if refs := strings.Fields(string(out)); len(refs) > 0 {
			exec.Command("docker", append([]string{"rmi"}, refs...)...).Run()
		}
	})
	dataDir := t.TempDir()
	p := startGantry(t, addr, "dev", "--data-dir", dataDir)
	if !strings.Contains(p.stdout(), "Agent:") {
		t.Fatalf("gantry dev started no agent:\n%s", p.stdout())
	}
	bin := t.TempDir()
	if err := os.Symlink(cli, filepath.Join(bin, "aws")); err != nil {
		t.Fatal(err)
	}
	env := append(exportedEnv(t, p.stdout()), "PATH="+bin+":"+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "GOFLAGS="+os.Getenv("GOFLAGS"))
	if v := os.Getenv("DOCKER_HOST"); v != "" {
		env = append(env, "DOCKER_HOST="+v)
	}
	env = append(env, "DOCKER_CONFIG="+t.TempDir()) // docker login writes here, not to ~/.docker
	script := strings.ReplaceAll(quickstartScript(t), "127.0.0.1:4747", strings.TrimPrefix(p.endpoint, "http://"))
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = ".."
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("quickstart failed: %v\n%s", err, out)
	}
	for _, want := range []string{"ok", "serving on :8080", `"UserInitiated"`, "runningEC2TasksCount"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("quickstart output lacks %q:\n%s", want, out)
		}
	}

	// Wrong credentials are refused with AWS's code, as the CLI reports it.
	cmd = exec.Command(cli, "ecs", "list-clusters", "--endpoint-url", p.endpoint, "--region", "us-east-1")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AWS_ACCESS_KEY_ID=GKIAFORGED0000000000", "AWS_SECRET_ACCESS_KEY=forged",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true"}
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "UnrecognizedClientException") {
		t.Errorf("forged key: err=%v\n%s", err, out)
	}
}

// TestFlagsAndRestart runs gantry dev with the flags the checks use, then
// restarts it on the same data dir: state and the key pair survive.
func TestFlagsAndRestart(t *testing.T) {
	addr := freePort(t)
	dataDir := t.TempDir()
	args := []string{"dev", "--data-dir", dataDir, "--access-key-id", "GKIARESTART000000000", "--secret-access-key", "s3cret", "--account-id", "111122223333"}
	p := startGantry(t, addr, args...)
	if strings.Contains(p.stdout(), "export") {
		t.Errorf("with configured keys gantry dev should not print credential exports:\n%s", p.stdout())
	}
	if _, err := os.Stat(filepath.Join(dataDir, "credentials")); !os.IsNotExist(err) {
		t.Errorf("configured keys were written to disk (stat err %v)", err)
	}
	api := ecsClient(p.endpoint, "GKIARESTART000000000", "s3cret")
	ctx := context.Background()
	if _, err := api.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("keep"), Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}}); err != nil {
		t.Fatal(err)
	}
	p.stopFn()

	p = startGantry(t, addr, args...)
	d, err := ecsClient(p.endpoint, "GKIARESTART000000000", "s3cret").DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"keep"}, Include: []types.ClusterField{types.ClusterFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Clusters) != 1 || len(d.Clusters[0].Tags) != 1 || aws.ToString(d.Clusters[0].ClusterArn) != "arn:aws:ecs:us-east-1:111122223333:cluster/keep" {
		t.Fatalf("after restart: %+v failures %+v", d.Clusters, d.Failures)
	}
}

// TestGeneratedCredentialsPersist: a restarted gantry dev keeps accepting
// the key pair it generated the first time.
func TestGeneratedCredentialsPersist(t *testing.T) {
	dataDir := t.TempDir()
	addr := freePort(t)
	p := startGantry(t, addr, "dev", "--data-dir", dataDir)
	first, err := os.ReadFile(filepath.Join(dataDir, "credentials"))
	if err != nil {
		t.Fatal(err)
	}
	p.stopFn()
	startGantry(t, addr, "dev", "--data-dir", dataDir)
	second, _ := os.ReadFile(filepath.Join(dataDir, "credentials"))
	if !bytes.Equal(first, second) {
		t.Errorf("credentials changed across restart:\n%s\n---\n%s", first, second)
	}
	if fi, err := os.Stat(filepath.Join(dataDir, "credentials")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials file mode: %v %v", fi.Mode(), err)
	}
}

func TestVersionAndUsage(t *testing.T) {
	out, err := exec.Command(gantryBin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "gantry ") {
		t.Errorf("gantry version: %v %q", err, out)
	}
	cmd := exec.Command(gantryBin, "launch-rockets")
	out, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "unknown command") {
		t.Errorf("unknown command: exit %d %q", cmd.ProcessState.ExitCode(), out)
	}
	out, err = exec.Command(gantryBin, "dev", "--account-id", "12", "--data-dir", t.TempDir(), "--access-key-id", "a", "--secret-access-key", "b").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "12 digits") {
		t.Errorf("bad account id: %v %q", err, out)
	}
	for _, c := range []string{"dev", "server", "agent", "logs"} {
		cmd := exec.Command(gantryBin, c, "-h")
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 0 || !strings.Contains(string(out), "-data-dir") && c != "logs" {
			t.Errorf("gantry %s -h: exit %d %q", c, cmd.ProcessState.ExitCode(), out)
		}
	}
	// Bad agent and timeout flags are refused before anything starts.
	for _, tt := range []struct{ args, want string }{
		{"dev --task-cleanup-wait 0s", "--task-cleanup-wait must be positive"},
		{"dev --gpus a,,b", "--gpus"},
		{"dev --attribute novalue", "want key=value"},
		{"dev --heartbeat-timeout 500ms", "--heartbeat-timeout 500ms: must be a whole number of seconds"},
		{"server --leader-ttl 0s", "--leader-ttl 0s: must be a whole number of seconds"},
	} {
		args := append(strings.Fields(tt.args), "--data-dir", t.TempDir(), "--access-key-id", "a", "--secret-access-key", "b", "--listen", "127.0.0.1:1")
		cmd := exec.Command(gantryBin, args...)
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), tt.want) {
			t.Errorf("gantry %s: exit %d %q, want 2 and %q", tt.args, cmd.ProcessState.ExitCode(), out, tt.want)
		}
	}
}
