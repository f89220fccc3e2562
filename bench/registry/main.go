// Command registry measures docker push and pull of a 10 MB and a 200 MB
// image against Gantry's built-in registry and, in the same run and
// alternating with it, against Debian's docker-registry package (the
// distribution 2.8 binary, /usr/bin/docker-registry) configured as Debian
// ships it: filesystem storage, in-memory blob descriptor cache, htpasswd
// (bcrypt) Basic auth. Both keep their files under the same temporary
// directory and listen on loopback; the docker CLI logs in to both.
//
// Each round builds a fresh image (FROM scratch plus one file of random,
// incompressible bytes), so no blob is ever already present or mountable,
// then times `docker push` to each registry, removes the image from the
// engine, and times `docker pull` from each, removing it again in between.
// The order of the two registries alternates from round to round. Times are
// wall-clock times of the docker CLI commands: they include the engine's
// own work (compressing layers on push, extracting them on pull), which is
// the same for both, so ratios understate differences between the
// registries themselves.
//
// Results are in docs/benchmarks.md; run with
//
//	go run ./bench/registry -runs 5
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	"golang.org/x/crypto/bcrypt"

	"github.com/gantry-dev/gantry/bench/internal/rusage"
	"github.com/gantry-dev/gantry/server"
)

const (
	accessKey = "GKIABENCHACCESSKEY00"
	secretKey = "bench/secret/key/for/gantry/registry/00"
	region    = "us-east-1"
	user      = "bench"
	password  = "bench-password"
)

func main() {
	runs := flag.Int("runs", 3, "rounds per image size")
	sizes := flag.String("sizes", "10,200", "image sizes in MB (one layer of random bytes each)")
	dockerRegistry := flag.String("docker-registry", "/usr/bin/docker-registry", "Debian's registry binary (apt-get install docker-registry)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of this process (Gantry's server) to the file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if _, err := exec.LookPath("docker"); err != nil {
		log.Fatal("the docker CLI is required")
	}
	if _, err := os.Stat(*dockerRegistry); err != nil {
		log.Fatalf("%s: %v (apt-get install docker-registry)", *dockerRegistry, err)
	}
	dir, err := os.MkdirTemp("", "gantry-bench-registry-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	b := &bench{dir: dir, dockerConfig: filepath.Join(dir, "docker-config")}

	var sizeList []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			log.Fatalf("-sizes: %q", s)
		}
		sizeList = append(sizeList, n)
	}
	gantry, stopGantry := startGantry(filepath.Join(dir, "gantry"), sizeList)
	defer stopGantry()
	peer, stopPeer := startDockerRegistry(*dockerRegistry, filepath.Join(dir, "docker-registry"))
	defer stopPeer()
	b.login(gantry.host, "AWS", gantry.password)
	b.login(peer.host, user, password)
	targets := []target{{"gantry", gantry.host, rusage.Self}, {"docker-registry", peer.host, peer.cpu}}

	results := map[string]map[int]*samples{}
	for _, t := range targets {
		results[t.name] = map[int]*samples{}
		for _, s := range sizeList {
			results[t.name][s] = &samples{}
		}
	}
	// One unmeasured round of the smallest size warms the engine and both
	// registries.
	b.round(targets, sizeList[0], -1, nil)
	for i := range *runs {
		for _, s := range sizeList {
			order := slices.Clone(targets)
			if i%2 == 1 {
				slices.Reverse(order)
			}
			b.round(order, s, i, results)
			log.Printf("round %d, %d MB: gantry push %v pull %v; docker-registry push %v pull %v", i+1, s,
				last(results["gantry"][s].push), last(results["gantry"][s].pull),
				last(results["docker-registry"][s].push), last(results["docker-registry"][s].pull))
		}
	}
	report(sizeList, *runs, results)
}

type target struct {
	name, host string
	cpu        func() time.Duration // CPU time of the registry's process so far
}

// samples are wall-clock times of the docker commands and the CPU time the
// registry's process spent meanwhile.
type samples struct{ push, pull, pushCPU, pullCPU []time.Duration }

type bench struct {
	dir, dockerConfig string
}

// round builds a fresh image of size MB, pushes it to each target, then
// pulls it back from each with the engine emptied in between.
func (b *bench) round(order []target, size, i int, results map[string]map[int]*samples) {
	src := fmt.Sprintf("gantry-bench-src:%d-%d", size, time.Now().UnixNano())
	b.build(src, size)
	repo := fmt.Sprintf("bench%d", size)
	refs := map[string]string{}
	for _, t := range order {
		ref := fmt.Sprintf("%s/%s:r%d", t.host, repo, i+1)
		refs[t.name] = ref
		b.docker("tag", src, ref)
		c0 := t.cpu()
		d := b.timed("push", ref)
		if results != nil {
			results[t.name][size].push = append(results[t.name][size].push, d)
			results[t.name][size].pushCPU = append(results[t.name][size].pushCPU, t.cpu()-c0)
		}
	}
	all := []string{src}
	for _, r := range refs {
		all = append(all, r)
	}
	b.docker(append([]string{"rmi"}, all...)...)
	for _, t := range order {
		c0 := t.cpu()
		d := b.timed("pull", refs[t.name])
		if results != nil {
			results[t.name][size].pull = append(results[t.name][size].pull, d)
			results[t.name][size].pullCPU = append(results[t.name][size].pullCPU, t.cpu()-c0)
		}
		b.docker("rmi", refs[t.name])
	}
}

// build makes a FROM scratch image with one file of size MB random bytes.
func (b *bench) build(tag string, size int) {
	ctx := filepath.Join(b.dir, "context")
	os.RemoveAll(ctx)
	os.MkdirAll(ctx, 0o755)
	f, err := os.Create(filepath.Join(ctx, "data"))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, int64(size)<<20); err != nil {
		log.Fatal(err)
	}
	f.Close()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM scratch\nCOPY data /data\n"), 0o644)
	b.docker("build", "-q", "-t", tag, ctx)
}

func (b *bench) timed(args ...string) time.Duration {
	start := time.Now()
	b.docker(args...)
	return time.Since(start)
}

func (b *bench) docker(args ...string) string {
	return b.dockerIn("", args...)
}

func (b *bench) dockerIn(stdin string, args ...string) string {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+b.dockerConfig, "DOCKER_BUILDKIT=0")
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		log.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (b *bench) login(host, user, pass string) {
	b.dockerIn(pass, "login", "--username", user, "--password-stdin", host)
}

type gantryTarget struct{ host, password string }

// startGantry runs a control plane in this process, creates the
// repositories and gets a registry password as `aws ecr get-login-password`
// does.
func startGantry(dataDir string, sizes []int) (gantryTarget, func()) {
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", DataDir: dataDir, Region: region, AccountID: "123456789012",
		AccessKeyID: accessKey, SecretAccessKey: secretKey,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := srv.Start(ctx); err != nil {
		log.Fatal(err)
	}
	api := awsecr.NewFromConfig(aws.Config{Region: region, Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")},
		func(o *awsecr.Options) { o.BaseEndpoint = aws.String(srv.URL()) })
	for _, s := range sizes {
		if _, err := api.CreateRepository(ctx, &awsecr.CreateRepositoryInput{RepositoryName: aws.String(fmt.Sprintf("bench%d", s))}); err != nil {
			log.Fatal(err)
		}
	}
	tok, err := api.GetAuthorizationToken(ctx, &awsecr.GetAuthorizationTokenInput{})
	if err != nil {
		log.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(*tok.AuthorizationData[0].AuthorizationToken)
	_, pass, _ := strings.Cut(string(raw), ":")
	return gantryTarget{host: srv.RegistryHost(), password: pass}, func() { srv.Close() }
}

// startDockerRegistry runs Debian's registry with Debian's configuration
// (/etc/docker/registry/config.yml) but its own port, root directory and
// password file.
type peerTarget struct {
	host string
	cpu  func() time.Duration
}

func startDockerRegistry(bin, dir string) (peerTarget, func()) {
	os.MkdirAll(dir, 0o700)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), 5) // htpasswd -B's cost
	if err != nil {
		log.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600)
	config := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: bench-secret
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: basic-realm
    path: %s
`, filepath.Join(dir, "data"), addr, htpasswd)
	cfg := filepath.Join(dir, "config.yml")
	os.WriteFile(cfg, []byte(config), 0o600)
	cmd := exec.Command(bin, "serve", cfg)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			log.Fatalf("docker-registry did not start: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	pid := cmd.Process.Pid
	return peerTarget{addr, func() time.Duration { return procCPU(pid) }}, func() { cmd.Process.Kill(); cmd.Wait() }
}

// procCPU is another process's CPU time from /proc (utime + stime, in
// clock ticks of 10 ms).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		log.Fatal(err)
	}
	// The command name may contain spaces; fields start after its ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func last(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[len(d)-1].Round(time.Millisecond)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianF(f []float64) float64 {
	s := slices.Clone(f)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// report prints a Markdown table: medians per registry, and the median of
// the per-round ratios gantry ÷ docker-registry (below 1: Gantry faster or
// cheaper).
func report(sizes []int, runs int, r map[string]map[int]*samples) {
	fmt.Printf("\n%d rounds per size; medians; ratios are medians over rounds of gantry ÷ docker-registry\n\n", runs)
	fmt.Println("| image | operation | gantry | docker-registry | ratio | gantry CPU | docker-registry CPU | CPU ratio |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|---:|")
	for _, s := range sizes {
		g, p := r["gantry"][s], r["docker-registry"][s]
		for _, op := range []struct {
			name           string
			gs, ps, gc, pc []time.Duration
		}{{"push", g.push, p.push, g.pushCPU, p.pushCPU}, {"pull", g.pull, p.pull, g.pullCPU, p.pullCPU}} {
			ratio := func(a, b []time.Duration) float64 {
				var rs []float64
				for i := range a {
					if b[i] > 0 {
						rs = append(rs, a[i].Seconds()/b[i].Seconds())
					}
				}
				if len(rs) == 0 {
					return 0
				}
				return medianF(rs)
			}
			fmt.Printf("| %d MB | %s | %.2f s | %.2f s | %.2f | %.2f s | %.2f s | %.2f |\n", s, op.name,
				median(op.gs).Seconds(), median(op.ps).Seconds(), ratio(op.gs, op.ps),
				median(op.gc).Seconds(), median(op.pc).Seconds(), ratio(op.gc, op.pc))
		}
	}
}
