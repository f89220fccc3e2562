package registry_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-dev/gantry/internal/testcluster"
	"github.com/gantry-dev/gantry/registry"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.createRepo(t, "app", "")
	e.push(t, "app:v1", image(t, layer(t, 1024)))

	expired := registry.Token(testcluster.SecretAccessKey, time.Now().Add(-time.Second))
	otherSecret := registry.Token("another secret", time.Now().Add(time.Hour))
	forged := e.token[:strings.LastIndexByte(e.token, '.')+1] + strings.Repeat("A", 43)

	for _, tc := range []struct {
		name, path, auth string
		status           int
		code             string
	}{
		{"NoCredentials", "/v2/", "", 401, "UNAUTHORIZED"},
		{"NoCredentialsPull", "/v2/app/manifests/v1", "", 401, "UNAUTHORIZED"},
		{"Bearer", "/v2/", "Bearer " + e.token, 401, "UNAUTHORIZED"},
		{"WrongUser", "/v2/", basic("root", e.token), 401, "UNAUTHORIZED"},
		{"Garbage", "/v2/", basic("AWS", "not-a-token"), 401, "UNAUTHORIZED"},
		{"Forged", "/v2/app/manifests/v1", basic("AWS", forged), 401, "UNAUTHORIZED"},
		{"OtherSecret", "/v2/", basic("AWS", otherSecret), 401, "UNAUTHORIZED"},
		{"Expired", "/v2/app/manifests/v1", basic("AWS", expired), 403, "DENIED"},
		// The repository is checked only after the credentials.
		{"NoCredentialsUnknownRepo", "/v2/nope/tags/list", "", 401, "UNAUTHORIZED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(t, http.MethodGet, tc.path, nil, "Authorization", tc.auth)
			wantError(t, resp, tc.status, tc.code)
			if tc.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("401 without a Basic challenge: %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	t.Run("OK", func(t *testing.T) {
		if resp := e.do(t, http.MethodGet, "/v2/", nil); resp.StatusCode != 200 {
			t.Fatalf("GET /v2/ with a token: %d", resp.StatusCode)
		}
		if resp := e.do(t, http.MethodGet, "/v2/", nil, "Authorization", basic("AWS", registry.Token(testcluster.SecretAccessKey, time.Now().Add(time.Minute)))); resp.StatusCode != 200 {
			t.Fatalf("GET /v2/ with a minted token: %d", resp.StatusCode)
		}
	})
	t.Run("ErrUnknownRepository", func(t *testing.T) {
		oe := wantError(t, e.do(t, http.MethodGet, "/v2/nope/manifests/v1", nil), 404, "NAME_UNKNOWN")
		if want := "The repository with name 'nope' does not exist in the registry with id '123456789012'"; oe.Errors[0].Message != want {
			t.Errorf("message %q, want ECR's %q", oe.Errors[0].Message, want)
		}
		err := remote.Write(e.ref(t, "nope:v1"), image(t, layer(t, 10)), e.remote()...)
		if err == nil || !strings.Contains(err.Error(), "NAME_UNKNOWN") {
			t.Fatalf("push to a repository never created: %v", err)
		}
	})
}

// TestAgentCredentials: an agent's instance token pulls, never pushes, and
// stops working when the instance is deregistered.
func TestAgentCredentials(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	if _, err := e.ECS().CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		t.Fatal(err)
	}
	agent := e.RegisterAgent(t, "default", testcluster.AgentOptions{})
	e.createRepo(t, "app", "")
	want := e.push(t, "app:v1", image(t, layer(t, 4096)))

	asAgent := []remote.Option{remote.WithAuth(&authn.Basic{Username: "AWS", Password: agent.Token})}
	img, err := remote.Image(e.ref(t, "app:v1"), asAgent...)
	if err != nil {
		t.Fatalf("agent pull: %v", err)
	}
	if d, _ := img.Digest(); d != want {
		t.Fatalf("agent pulled %s, want %s", d, want)
	}
	wantError(t, e.do(t, http.MethodPost, "/v2/app/blobs/uploads/", nil, "Authorization", basic("AWS", agent.Token)), 403, "DENIED")
	wantError(t, e.do(t, http.MethodGet, "/v2/_catalog", nil, "Authorization", basic("AWS", agent.Token)), 403, "DENIED")
	wantError(t, e.do(t, http.MethodGet, "/v2/", nil, "Authorization", basic("AWS", agent.Token+"x")), 401, "UNAUTHORIZED")

	if _, err := e.ECS().DeregisterContainerInstance(ctx, &ecs.DeregisterContainerInstanceInput{
		ContainerInstance: &agent.ARN, Force: new(true)}); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.do(t, http.MethodGet, "/v2/app/manifests/v1", nil, "Authorization", basic("AWS", agent.Token)), 401, "UNAUTHORIZED")
}

func basic(user, pass string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}
