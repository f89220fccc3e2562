package registry_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/gantry-dev/gantry/internal/testcluster"
	"github.com/gantry-dev/gantry/server"
)

// childEnv makes the test binary run a bare control plane instead of the
// tests, so a test can kill it mid-request with SIGKILL.
const childEnv = "GANTRY_REGISTRY_TEST_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(runChild(dir))
	}
	os.Exit(m.Run())
}

func runChild(dir string) int {
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", DataDir: dir, Region: testcluster.Region,
		AccountID: testcluster.AccountID, AccessKeyID: testcluster.AccessKeyID, SecretAccessKey: testcluster.SecretAccessKey,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err == nil {
		err = srv.Start(context.Background())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("listening %s\n", srv.Addr())
	select {}
}

// child is a control plane in another process.
type child struct {
	cmd  *exec.Cmd
	addr string
}

func startChild(t *testing.T, dir string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		t.Fatalf("child did not start: %q, %v", line, err)
	}
	return &child{cmd: cmd, addr: addr}
}

func (c *child) env(t *testing.T) *env {
	cl := &testcluster.Cluster{}
	cfg := cl.AWSConfig()
	api := ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.BaseEndpoint = aws.String("http://" + c.addr) })
	e := &env{api: api, host: c.addr}
	e.token = e.login(t)
	return e
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
}

func randomBlob(t testing.TB, n int) ([]byte, string) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	sum := sha256.Sum256(b)
	return b, "sha256:" + hex.EncodeToString(sum[:])
}

// startUpload opens a blob upload and returns its location (a path).
func (e *env) startUpload(t testing.TB, repo string) string {
	t.Helper()
	resp := e.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil)
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("start upload: %d %s", resp.StatusCode, b)
	}
	return resp.Header.Get("Location")
}

// halfPatch sends a PATCH announcing all of data but only half of it on a
// raw connection, then returns the connection for the caller to cut.
func (e *env) halfPatch(t testing.TB, location string, data []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", e.host)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n",
		location, e.host, basic("AWS", e.token), len(data))
	if _, err := conn.Write(data[:len(data)/2]); err != nil {
		t.Fatal(err)
	}
	return conn
}

// putBlob uploads data monolithically under digest d and returns the status.
func (e *env) putBlob(t testing.TB, repo string, data []byte, d string) *http.Response {
	t.Helper()
	loc := e.startUpload(t, repo)
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	return e.do(t, http.MethodPut, loc+sep+"digest="+d, bytes.NewReader(data), "Content-Type", "application/octet-stream")
}

func (e *env) blobStatus(t testing.TB, repo, d string) int {
	t.Helper()
	return e.do(t, http.MethodHead, "/v2/"+repo+"/blobs/"+d, nil).StatusCode
}

// TestInterruptedUpload: a client that goes away mid-upload leaves no
// visible blob, and a retry succeeds; a blob whose bytes do not match its
// digest is refused and not stored.
func TestInterruptedUpload(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.createRepo(t, "app", "")
	data, d := randomBlob(t, 4<<20)

	conn := e.halfPatch(t, e.startUpload(t, "app"), data)
	time.Sleep(100 * time.Millisecond) // let the server write what it got
	conn.Close()
	time.Sleep(100 * time.Millisecond)
	if s := e.blobStatus(t, "app", d); s != http.StatusNotFound {
		t.Fatalf("HEAD of a half-uploaded blob: %d, want 404", s)
	}
	wantError(t, e.do(t, http.MethodGet, "/v2/app/blobs/"+d, nil), 404, "BLOB_UNKNOWN")

	// Wrong digest: refused, stored under neither digest.
	_, other := randomBlob(t, 10)
	wantError(t, e.putBlob(t, "app", data, other), 400, "DIGEST_INVALID")
	if e.blobStatus(t, "app", other) != 404 || e.blobStatus(t, "app", d) != 404 {
		t.Fatal("a blob refused for its digest is visible")
	}

	// The retry.
	if resp := e.putBlob(t, "app", data, d); resp.StatusCode != http.StatusCreated {
		t.Fatalf("retried upload: %d", resp.StatusCode)
	}
	resp := e.do(t, http.MethodGet, "/v2/app/blobs/"+d, nil)
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("GET after retry: %d, %d bytes", resp.StatusCode, len(got))
	}
}

// TestServerKilledMidUpload: the server dies (SIGKILL) in the middle of an
// upload; after a restart on the same data directory the partial blob is
// not visible, no image appears, and pushing again succeeds.
func TestServerKilledMidUpload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := startChild(t, dir)
	e := c.env(t)
	e.createRepo(t, "app", "")
	data, d := randomBlob(t, 8<<20)
	conn := e.halfPatch(t, e.startUpload(t, "app"), data)
	defer conn.Close()
	time.Sleep(200 * time.Millisecond)
	c.kill(t)

	partial, _ := filepath.Glob(filepath.Join(dir, "registry/docker/registry/v2/repositories/app/_uploads/*/data"))
	if len(partial) != 1 {
		t.Fatalf("expected the killed upload's partial data, found %v", partial)
	}

	c = startChild(t, dir)
	e = c.env(t)
	if s := e.blobStatus(t, "app", d); s != http.StatusNotFound {
		t.Fatalf("HEAD of the killed upload's blob after restart: %d", s)
	}
	if imgs, err := e.api.ListImages(context.Background(), &ecr.ListImagesInput{RepositoryName: aws.String("app")}); err != nil || len(imgs.ImageIds) != 0 {
		t.Fatalf("ListImages after the crash: %v, %v", imgs, err)
	}
	if resp := e.putBlob(t, "app", data, d); resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload after restart: %d", resp.StatusCode)
	}
	img := image(t, layer(t, 1<<20))
	want := e.push(t, "app:v1", img)
	if got, err := e.pullAll(t, "app:v1"); err != nil || got != want {
		t.Fatalf("pull after restart: %s, %v", got, err)
	}
}
