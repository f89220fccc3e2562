// Package testimage builds Gantry's test container image for tests that need a
// real Docker engine: testapp (see testapp/) compiled statically and packed
// FROM scratch, loaded through the Engine API without any registry.
//
// Tests skip when no engine is reachable, unless GANTRY_REQUIRE_E2E=1 (CI),
// which makes them fail instead.
package testimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
)

// RequireEnv is the environment variable that turns "no Docker engine" from a
// skip into a failure.
const RequireEnv = "GANTRY_REQUIRE_E2E"

// HashLabel is the image label holding the SHA-256 of the packed binary, so an
// image that is already up to date is not built again.
const HashLabel = "dev.gantry.testapp.sha256"

const dockerfile = `FROM scratch
COPY testapp /testapp
ENTRYPOINT ["/testapp"]
`

type result struct {
	ref  string
	skip string // the engine is unreachable
	err  error
}

type entry struct {
	once sync.Once
	res  result
}

var (
	mu     sync.Mutex
	builds = map[string]*entry{}
)

// Build returns the reference of the testapp image tagged tag (":latest" if
// tag has none), building it once per process. It skips t if no Docker engine
// is reachable (fails it with GANTRY_REQUIRE_E2E=1) and fails t if the build
// fails.
func Build(t testing.TB, tag string) string {
	t.Helper()
	if !strings.Contains(tag[strings.LastIndex(tag, "/")+1:], ":") {
		tag += ":latest"
	}
	mu.Lock()
	b, ok := builds[tag]
	if !ok {
		b = &entry{}
		builds[tag] = b
	}
	mu.Unlock()
	b.once.Do(func() { b.res = build1(tag) })

	switch {
	case b.res.skip != "" && os.Getenv(RequireEnv) == "1":
		t.Fatalf("%s (and %s=1)", b.res.skip, RequireEnv)
	case b.res.skip != "":
		t.Skipf("%s; set %s=1 to fail instead", b.res.skip, RequireEnv)
	case b.res.err != nil:
		t.Fatalf("build test image %s: %v", tag, b.res.err)
	}
	return b.res.ref
}

// Client returns an Engine API client configured as the runtimes configure
// theirs (DOCKER_HOST honoured, API version negotiated), or skips t as Build
// does.
func Client(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = c.Ping(ctx)
	}
	if err != nil {
		msg := fmt.Sprintf("no Docker engine reachable at %s: %v", dockerHost(), err)
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s (and %s=1)", msg, RequireEnv)
		}
		t.Skipf("%s; set %s=1 to fail instead", msg, RequireEnv)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func build1(tag string) result {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return result{skip: fmt.Sprintf("no Docker client for %s: %v", dockerHost(), err)}
	}
	defer c.Close()
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	if _, err := c.Ping(pctx); err != nil {
		return result{skip: fmt.Sprintf("no Docker engine reachable at %s: %v", dockerHost(), err)}
	}
	v, err := c.ServerVersion(ctx)
	if err != nil {
		return result{err: err}
	}
	if v.Os != "linux" {
		return result{skip: fmt.Sprintf("the Docker engine at %s runs %s containers, not linux", dockerHost(), v.Os)}
	}

	bin, err := compile(ctx, v.Arch)
	if err != nil {
		return result{err: err}
	}
	sum := sha256.Sum256(bin)
	hash := hex.EncodeToString(sum[:])
	if img, err := c.ImageInspect(ctx, tag); err == nil && img.Config != nil && img.Config.Labels[HashLabel] == hash {
		return result{ref: tag}
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {"testapp", 0o755, bin}} {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return result{err: err}
		}
		tw.Write(f.data)
	}
	if err := tw.Close(); err != nil {
		return result{err: err}
	}
	resp, err := c.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags:        []string{tag},
		Dockerfile:  "Dockerfile",
		Labels:      map[string]string{HashLabel: hash},
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1, // FROM scratch needs no BuildKit
	})
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	if err := readStream(resp.Body); err != nil {
		return result{err: err}
	}
	return result{ref: tag}
}

// compile builds testapp for linux/arch without cgo and returns the binary.
func compile(ctx context.Context, arch string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "gantry-testapp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "testapp")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out,
		"github.com/gantry-dev/gantry/testapp")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build testapp: %v\n%s", err, msg)
	}
	return os.ReadFile(out)
}

// readStream drains an engine progress stream (JSON messages) and returns the
// error it reports, if any.
func readStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	var log strings.Builder
	for {
		var m struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		log.WriteString(m.Stream)
		if m.Error != "" {
			return fmt.Errorf("%s\n%s", m.Error, log.String())
		}
	}
}

func dockerHost() string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return client.DefaultDockerHost
}
