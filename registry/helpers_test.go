package registry_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ggtypes "github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/gantry-dev/gantry/internal/testcluster"
)

// env is a control plane with its registry, an ECR client and a token.
type env struct {
	*testcluster.Cluster
	api   *ecr.Client
	host  string // the registry's host:port
	token string // a registry password from GetAuthorizationToken
}

func setup(t testing.TB, opts ...testcluster.Options) *env {
	t.Helper()
	c := testcluster.Start(t, opts...)
	e := &env{Cluster: c, api: c.ECR(), host: c.Server.RegistryHost()}
	e.token = e.login(t)
	return e
}

// login gets a registry password as `aws ecr get-login-password` does.
func (e *env) login(t testing.TB) string {
	t.Helper()
	out, err := e.api.GetAuthorizationToken(context.Background(), &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	if err != nil {
		t.Fatal(err)
	}
	user, pass, _ := strings.Cut(string(raw), ":")
	if user != "AWS" || pass == "" {
		t.Fatalf("authorization token %q is not AWS:<password>", raw)
	}
	return pass
}

func (e *env) createRepo(t testing.TB, name string, m types.ImageTagMutability) {
	t.Helper()
	if m == "" {
		m = types.ImageTagMutabilityMutable
	}
	if _, err := e.api.CreateRepository(context.Background(), &ecr.CreateRepositoryInput{
		RepositoryName: aws.String(name), ImageTagMutability: m}); err != nil {
		t.Fatal(err)
	}
}

// ref is a reference to repo[:tag|@digest] on this registry.
func (e *env) ref(t testing.TB, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(e.host+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *env) remote() []remote.Option {
	return []remote.Option{remote.WithAuth(&authn.Basic{Username: "AWS", Password: e.token})}
}

func (e *env) push(t testing.TB, s string, img v1.Image) v1.Hash {
	t.Helper()
	if err := remote.Write(e.ref(t, s), img, e.remote()...); err != nil {
		t.Fatalf("push %s: %v", s, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// pullAll pulls an image and reads every layer, which checks each one's
// digest as it goes, and returns its digest.
func (e *env) pullAll(t testing.TB, s string) (v1.Hash, error) {
	t.Helper()
	img, err := remote.Image(e.ref(t, s), e.remote()...)
	if err != nil {
		return v1.Hash{}, err
	}
	layers, err := img.Layers()
	if err != nil {
		return v1.Hash{}, err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return v1.Hash{}, err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return v1.Hash{}, err
		}
	}
	if _, err := img.ConfigFile(); err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}

// image builds a linux/amd64 image from layers.
func image(t testing.TB, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{Architecture: "amd64", OS: "linux",
		RootFS: v1.RootFS{Type: "layers"}, Config: v1.Config{Cmd: []string{"/app"}}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func layer(t testing.TB, size int64) v1.Layer {
	t.Helper()
	l, err := random.Layer(size, ggtypes.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// do sends a request to the registry with the test's token (or none, or
// another Authorization value) and returns the answer.
func (e *env) do(t testing.TB, method, path string, body io.Reader, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+e.host+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("AWS", e.token)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// ociError is the body of a registry error.
type ociError struct {
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

// wantError checks a registry answer: the status and the first error code.
func wantError(t testing.TB, resp *http.Response, status int, code string) ociError {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	var oe ociError
	if resp.StatusCode != status || json.Unmarshal(b, &oe) != nil || len(oe.Errors) == 0 || oe.Errors[0].Code != code {
		t.Fatalf("%s %s: got %d %s; want %d %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, b, status, code)
	}
	return oe
}

func asErr[T error](err error, target *T) bool { return errors.As(err, target) }
