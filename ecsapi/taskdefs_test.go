package ecsapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	gecs "github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/testcluster"
)

// rawClient sends JSON 1.1 bodies exactly as given, signed like an SDK
// does: golden files and the fuzz target test the wire, not a client's
// idea of it.
type rawClient struct {
	url    string
	signer *v4.Signer
}

func newRawClient(c *testcluster.Cluster) *rawClient {
	return &rawClient{url: c.Server.URL(), signer: v4.NewSigner()}
}

func (c *rawClient) call(t testing.TB, action string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.url+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", gecs.TargetPrefix+"."+action)
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: testcluster.AccessKeyID, SecretAccessKey: testcluster.SecretAccessKey}
	if err := c.signer.SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ecs", testcluster.Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", action, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// volatile members differ from run to run; golden files hold a placeholder.
var volatile = map[string]bool{"registeredAt": true, "deregisteredAt": true, "deleteRequestedAt": true}

func mask(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if volatile[k] {
				v[k] = "<timestamp>"
			} else {
				v[k] = mask(e)
			}
		}
	case []any:
		for i := range v {
			v[i] = mask(v[i])
		}
	}
	return v
}

func decodeJSON(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("invalid JSON %q: %v", b, err)
	}
	return v
}

func pretty(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// goldenCase is one file under testdata/<Action>/: requests to send first
// (setup), the request under test, and the expected status and response
// with volatile members masked.
type goldenCase struct {
	Comment  string          `json:"comment,omitempty"`
	SDKOnly  bool            `json:"sdkOnly,omitempty"`
	Setup    []goldenStep    `json:"setup,omitempty"`
	Request  json.RawMessage `json:"request"`
	Status   int             `json:"status,omitempty"`
	Response json.RawMessage `json:"response,omitempty"`
}

type goldenStep struct {
	Action  string          `json:"action"`
	Request json.RawMessage `json:"request"`
}

// taskDefinitionActions are the golden directories this file owns.
var taskDefinitionActions = []string{
	"RegisterTaskDefinition", "DescribeTaskDefinition", "ListTaskDefinitions",
	"ListTaskDefinitionFamilies", "DeregisterTaskDefinition", "DeleteTaskDefinitions",
}

func readGolden(t testing.TB, path string) *goldenCase {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	gc := new(goldenCase)
	if err := json.Unmarshal(b, gc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return gc
}

// TestTaskDefinitionGolden sends each golden request to a fresh server and
// compares the answer. UPDATE_GOLDEN=1 rewrites the expected answers; review
// the diff against ECS's documented behaviour before committing it.
func TestTaskDefinitionGolden(t *testing.T) {
	t.Parallel()
	update := os.Getenv("UPDATE_GOLDEN") == "1"
	for _, action := range taskDefinitionActions {
		files, _ := filepath.Glob(filepath.Join("testdata", action, "*.json"))
		if len(files) == 0 {
			t.Errorf("no golden files for %s", action)
		}
		for _, path := range files {
			name := action + "/" + strings.TrimSuffix(filepath.Base(path), ".json")
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				gc := readGolden(t, path)
				c := newRawClient(testcluster.Start(t))
				for _, s := range gc.Setup {
					if st, b := c.call(t, s.Action, s.Request); st != http.StatusOK {
						t.Fatalf("setup %s: %d %s", s.Action, st, b)
					}
				}
				status, body := c.call(t, action, gc.Request)
				got := mask(decodeJSON(t, body))
				if update {
					gc.Status, gc.Response = status, json.RawMessage(pretty(got))
					out, _ := json.MarshalIndent(gc, "", "  ")
					if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				if status != gc.Status {
					t.Errorf("status = %d, want %d; body %s", status, gc.Status, body)
				}
				if want := decodeJSON(t, gc.Response); !reflect.DeepEqual(got, want) {
					t.Errorf("response:\n%s\nwant:\n%s", pretty(got), pretty(want))
				}
			})
		}
	}
}

// realWorld returns the real-world task definitions among the golden files.
func realWorld(t *testing.T) map[string]*goldenCase {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", "RegisterTaskDefinition", "realworld-*.json"))
	if len(files) < 6 {
		t.Fatalf("found %d real-world task definitions", len(files))
	}
	out := map[string]*goldenCase{}
	for _, f := range files {
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = readGolden(t, f)
	}
	return out
}

// ecsAdditions are the members ECS adds to a registered task definition,
// by path, with the values it adds (docs/task-definitions.md, "What ECS
// adds"). Anything else that differs from what was sent is a failure.
var ecsAdditions = map[string]map[string]func(v, parent any) bool{
	"": {
		"taskDefinitionArn":    isString,
		"revision":             isNumber,
		"status":               equals("ACTIVE"),
		"registeredAt":         func(v, _ any) bool { return v != nil },
		"registeredBy":         isString,
		"compatibilities":      isList,
		"requiresAttributes":   isList,
		"volumes":              equals([]any{}),
		"placementConstraints": equals([]any{}),
	},
	"containerDefinitions[]": {
		"essential":    equals(true),
		"cpu":          equals(0.0),
		"portMappings": equals([]any{}),
		"environment":  equals([]any{}),
		"mountPoints":  equals([]any{}),
		"volumesFrom":  equals([]any{}),
	},
	"containerDefinitions[].portMappings[]": {
		"protocol": equals("tcp"),
		"hostPort": sameAsContainerPort,
	},
	"containerDefinitions[].healthCheck": {
		"interval": equals(30.0),
		"timeout":  equals(5.0),
		"retries":  equals(3.0),
	},
}

func isString(v, _ any) bool { _, ok := v.(string); return ok }
func isNumber(v, _ any) bool { _, ok := v.(float64); return ok }
func isList(v, _ any) bool   { _, ok := v.([]any); return ok }
func equals(want any) func(v, _ any) bool {
	return func(v, _ any) bool { return reflect.DeepEqual(v, want) }
}
func sameAsContainerPort(v, parent any) bool {
	return v == parent.(map[string]any)["containerPort"]
}

// diffRoundTrip reports how got differs from sent beyond ECS's additions
// and conversions (task size units; hostPort 0 becoming the container port
// in awsvpc and host modes).
func diffRoundTrip(path string, sent, got any, diffs *[]string) {
	switch s := sent.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			*diffs = append(*diffs, fmt.Sprintf("%s: sent an object, got %v", path, got))
			return
		}
		for k, sv := range s {
			p := join(path, k)
			switch {
			case path == "" && k == "tags":
				continue
			case path == "" && (k == "cpu" || k == "memory"):
				conv := gecs.TaskCPUUnits
				if k == "memory" {
					conv = gecs.TaskMemoryMiB
				}
				n, _ := conv(sv.(string))
				if g[k] != fmt.Sprint(n) {
					*diffs = append(*diffs, fmt.Sprintf("%s: sent %v, got %v, want %d", p, sv, g[k], n))
				}
				continue
			case strings.HasSuffix(path, "portMappings[]") && k == "hostPort" && sv == 0.0 && g[k] == s["containerPort"]:
				continue
			}
			gv, ok := g[k]
			if !ok {
				*diffs = append(*diffs, fmt.Sprintf("%s: dropped", p))
				continue
			}
			diffRoundTrip(p, sv, gv, diffs)
		}
		for k, gv := range g {
			if _, sentIt := s[k]; sentIt {
				continue
			}
			if ok := ecsAdditions[path][k]; ok == nil || !ok(gv, g) {
				*diffs = append(*diffs, fmt.Sprintf("%s: unexpected addition %v", join(path, k), gv))
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(s) {
			*diffs = append(*diffs, fmt.Sprintf("%s: sent %v, got %v", path, sent, got))
			return
		}
		for i := range s {
			diffRoundTrip(path+"[]", s[i], g[i], diffs)
		}
	default:
		if !reflect.DeepEqual(sent, got) {
			*diffs = append(*diffs, fmt.Sprintf("%s: sent %v, got %v", path, sent, got))
		}
	}
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func checkRoundTrip(t *testing.T, sentJSON []byte, got any) {
	t.Helper()
	var diffs []string
	diffRoundTrip("", decodeJSON(t, sentJSON), got, &diffs)
	for _, d := range diffs {
		t.Error(d)
	}
}

// TestRealWorldTaskDefinitionsSDK registers each real-world task definition
// through the AWS SDK for Go v2, then checks what DescribeTaskDefinition
// returns on the wire (everything sent, unchanged but for ECS's additions)
// and that the SDK decoded the same document.
func TestRealWorldTaskDefinitionsSDK(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	api, raw := c.ECS(), newRawClient(c)
	for name, gc := range realWorld(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in := new(ecs.RegisterTaskDefinitionInput)
			dec := json.NewDecoder(bytes.NewReader(gc.Request))
			dec.DisallowUnknownFields() // SDK fields match wire names case-insensitively
			if err := dec.Decode(in); err != nil {
				t.Fatalf("request does not fit the SDK's input: %v", err)
			}
			out, err := api.RegisterTaskDefinition(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			ref := fmt.Sprintf(`{"taskDefinition": %q, "include": ["TAGS"]}`, aws.ToString(out.TaskDefinition.TaskDefinitionArn))
			status, body := raw.call(t, "DescribeTaskDefinition", []byte(ref))
			if status != http.StatusOK {
				t.Fatalf("describe: %d %s", status, body)
			}
			var desc struct {
				TaskDefinition json.RawMessage `json:"taskDefinition"`
				Tags           []types.Tag     `json:"tags"`
			}
			json.Unmarshal(body, &desc)
			checkRoundTrip(t, gc.Request, decodeJSON(t, desc.TaskDefinition))
			if want := in.Tags; !reflect.DeepEqual(nonNilTags(desc.Tags), nonNilTags(want)) {
				t.Errorf("tags = %v, want %v", desc.Tags, want)
			}
			// The SDK's decoding of RegisterTaskDefinition's answer equals the wire document.
			if out.TaskDefinition.RegisteredAt == nil {
				t.Error("SDK saw no registeredAt")
			}
			wire := decodeJSON(t, desc.TaskDefinition).(map[string]any)
			delete(wire, "registeredAt")
			wb, _ := json.Marshal(wire)
			var fromWire types.TaskDefinition
			if err := json.Unmarshal(wb, &fromWire); err != nil {
				t.Fatal(err)
			}
			sdk := *out.TaskDefinition
			sdk.RegisteredAt = nil
			if a, b := pretty(sdk), pretty(fromWire); a != b {
				t.Errorf("SDK decoded:\n%s\nwire:\n%s", a, b)
			}
		})
	}
}

func nonNilTags(t []types.Tag) []types.Tag {
	if t == nil {
		return []types.Tag{}
	}
	return t
}

// awsCLI runs AWS CLI v2 against the cluster and decodes its JSON output.
func awsCLI(t *testing.T, cli string, c *testcluster.Cluster, args ...string) (map[string]any, error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(cli, append(args, "--endpoint-url", c.Server.URL(), "--region", testcluster.Region, "--output", "json")...)
	cmd.Env = []string{
		"HOME=" + home, "PATH=" + os.Getenv("PATH"),
		"AWS_ACCESS_KEY_ID=" + testcluster.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + testcluster.SecretAccessKey,
		"AWS_CONFIG_FILE=" + filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1", "AWS_PAGER=",
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("aws %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		return nil, fmt.Errorf("aws %s printed %q: %v", strings.Join(args, " "), out, err)
	}
	return v, nil
}

// TestRealWorldTaskDefinitionsCLI registers each real-world task definition
// with `aws ecs register-task-definition --cli-input-json file://...` and
// checks the CLI prints the golden answer, then describes it back.
func TestRealWorldTaskDefinitionsCLI(t *testing.T) {
	t.Parallel()
	cli := testcluster.AWSCLI(t)
	c := testcluster.Start(t)
	for name, gc := range realWorld(t) {
		if gc.SDKOnly {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "taskdef.json")
			if err := os.WriteFile(file, gc.Request, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := awsCLI(t, cli, c, "ecs", "register-task-definition", "--cli-input-json", "file://"+file)
			if err != nil {
				t.Fatal(err)
			}
			checkRoundTrip(t, gc.Request, out["taskDefinition"])
			if want := decodeJSON(t, gc.Response); !reflect.DeepEqual(mask(out), want) {
				t.Errorf("CLI printed:\n%s\nwant:\n%s", pretty(mask(out)), pretty(want))
			}
			family := out["taskDefinition"].(map[string]any)["family"].(string)
			desc, err := awsCLI(t, cli, c, "ecs", "describe-task-definition", "--task-definition", family, "--include", "TAGS")
			if err != nil {
				t.Fatal(err)
			}
			// out was masked above; mask the describe answer the same way.
			if !reflect.DeepEqual(mask(desc["taskDefinition"]), out["taskDefinition"]) {
				t.Errorf("describe-task-definition:\n%s\nregister-task-definition:\n%s", pretty(desc["taskDefinition"]), pretty(out["taskDefinition"]))
			}
		})
	}
}

func registerInput(family string) *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family),
		ContainerDefinitions: []types.ContainerDefinition{
			{Name: aws.String("app"), Image: aws.String("busybox:1.36"), Memory: aws.Int32(64), Command: []string{"sleep", "3600"}},
		},
	}
}

func TestTaskDefinitionLifecycle(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	api := c.ECS()
	ctx := context.Background()
	for range 3 {
		if _, err := api.RegisterTaskDefinition(ctx, registerInput("sleep")); err != nil {
			t.Fatal(err)
		}
	}
	arn := func(rev int) string {
		return fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task-definition/sleep:%d", rev)
	}

	t.Run("DescribeLatest", func(t *testing.T) {
		d, err := api.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("sleep")})
		if err != nil {
			t.Fatal(err)
		}
		td := d.TaskDefinition
		if td.Revision != 3 || aws.ToString(td.TaskDefinitionArn) != arn(3) || td.Status != types.TaskDefinitionStatusActive {
			t.Errorf("latest = %d %s %s", td.Revision, aws.ToString(td.TaskDefinitionArn), td.Status)
		}
		if td.RegisteredAt == nil || time.Since(*td.RegisteredAt) > time.Minute || aws.ToString(td.RegisteredBy) != "arn:aws:iam::123456789012:root" {
			t.Errorf("registeredAt %v by %s", td.RegisteredAt, aws.ToString(td.RegisteredBy))
		}
		if d.Tags != nil {
			t.Errorf("tags without include: %v", d.Tags)
		}
	})
	t.Run("DeregisterKeepsDescribable", func(t *testing.T) {
		out, err := api.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(arn(3))})
		if err != nil {
			t.Fatal(err)
		}
		if out.TaskDefinition.Status != types.TaskDefinitionStatusInactive || out.TaskDefinition.DeregisteredAt == nil {
			t.Errorf("deregistered = %s at %v", out.TaskDefinition.Status, out.TaskDefinition.DeregisteredAt)
		}
		d, err := api.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("sleep:3")})
		if err != nil || d.TaskDefinition.Status != types.TaskDefinitionStatusInactive {
			t.Errorf("describe INACTIVE = %v, %v", d, err)
		}
		d, err = api.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("sleep")})
		if err != nil || d.TaskDefinition.Revision != 2 {
			t.Errorf("latest ACTIVE after deregistering 3 = %v, %v", d, err)
		}
	})
	t.Run("DeleteOnlyInactive", func(t *testing.T) {
		out, err := api.DeleteTaskDefinitions(ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: []string{"sleep:3", "sleep:1", "sleep:9", "sleep:latest"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.TaskDefinitions) != 1 || out.TaskDefinitions[0].Status != types.TaskDefinitionStatusDeleteInProgress || out.TaskDefinitions[0].DeleteRequestedAt == nil {
			t.Errorf("deleted = %+v", out.TaskDefinitions)
		}
		var reasons []string
		for _, f := range out.Failures {
			reasons = append(reasons, aws.ToString(f.Arn)+": "+aws.ToString(f.Reason))
		}
		want := []string{
			"sleep:1: The specified task definition is still in ACTIVE status. Please deregister the target and try again.",
			"sleep:9: The specified task definition does not exist.",
			"sleep:latest: Invalid revision number. Number: latest",
		}
		if !slices.Equal(reasons, want) {
			t.Errorf("failures =\n%q\nwant\n%q", reasons, want)
		}
	})
	t.Run("Lists", func(t *testing.T) {
		l, err := api.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{})
		if err != nil || !slices.Equal(l.TaskDefinitionArns, []string{arn(1), arn(2)}) {
			t.Errorf("ACTIVE = %v, %v", l, err)
		}
		l, err = api.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{Status: types.TaskDefinitionStatusDeleteInProgress})
		if err != nil || !slices.Equal(l.TaskDefinitionArns, []string{arn(3)}) {
			t.Errorf("DELETE_IN_PROGRESS = %v, %v", l, err)
		}
		f, err := api.ListTaskDefinitionFamilies(ctx, &ecs.ListTaskDefinitionFamiliesInput{Status: types.TaskDefinitionFamilyStatusActive})
		if err != nil || !slices.Equal(f.Families, []string{"sleep"}) {
			t.Errorf("families = %v, %v", f, err)
		}
	})
	t.Run("RevisionsContinueAfterDelete", func(t *testing.T) {
		out, err := api.RegisterTaskDefinition(ctx, registerInput("sleep"))
		if err != nil || out.TaskDefinition.Revision != 4 {
			t.Errorf("next revision = %v, %v", out, err)
		}
	})
	t.Run("ErrDescribeMissing", func(t *testing.T) {
		for _, ref := range []string{"nope", "sleep:99", "arn:aws:ecs:eu-west-1:123456789012:task-definition/sleep:1", "bad name"} {
			_, err := api.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(ref)})
			wantCode(t, err, "ClientException")
		}
	})
	t.Run("ErrDeregisterWithoutRevision", func(t *testing.T) {
		_, err := api.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("sleep")})
		wantCode(t, err, "ClientException")
	})
}

func TestTaskDefinitionTags(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	api := c.ECS()
	ctx := context.Background()
	in := registerInput("tagged")
	in.Tags = []types.Tag{{Key: aws.String("team"), Value: aws.String("core")}}
	reg, err := api.RegisterTaskDefinition(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(reg.Tags) != 1 {
		t.Errorf("register answered tags %v", reg.Tags)
	}
	arn := reg.TaskDefinition.TaskDefinitionArn
	if _, err := api.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("dev")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.UntagResource(ctx, &ecs.UntagResourceInput{ResourceArn: arn, TagKeys: []string{"team"}}); err != nil {
		t.Fatal(err)
	}
	l, err := api.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: arn})
	if err != nil || len(l.Tags) != 1 || aws.ToString(l.Tags[0].Key) != "env" {
		t.Errorf("tags = %v, %v", l, err)
	}
	d, err := api.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: arn, Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
	if err != nil || len(d.Tags) != 1 || aws.ToString(d.Tags[0].Value) != "dev" {
		t.Errorf("describe with TAGS = %v, %v", d, err)
	}
	t.Run("ErrNoRevision", func(t *testing.T) {
		_, err := api.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ecs:us-east-1:123456789012:task-definition/tagged")})
		wantCode(t, err, "InvalidParameterException")
	})
	t.Run("ErrMissing", func(t *testing.T) {
		_, err := api.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ecs:us-east-1:123456789012:task-definition/tagged:9")})
		wantCode(t, err, "ResourceNotFoundException")
	})
	t.Run("ErrBadTags", func(t *testing.T) {
		bad := registerInput("tagged")
		bad.Tags = []types.Tag{{Key: aws.String("aws:reserved"), Value: aws.String("x")}}
		_, err := api.RegisterTaskDefinition(ctx, bad)
		wantCode(t, err, "InvalidParameterException")
	})
}

// TestRegisterTaskDefinitionConcurrentRevisions: concurrent registrations
// of one family through the API get distinct, consecutive revisions.
func TestRegisterTaskDefinitionConcurrentRevisions(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	api := c.ECS()
	const n = 16
	var mu sync.Mutex
	var revs []int
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			out, err := api.RegisterTaskDefinition(context.Background(), registerInput("hot"))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			revs = append(revs, int(out.TaskDefinition.Revision))
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(revs)
	for i, r := range revs {
		if r != i+1 {
			t.Fatalf("revisions = %v, want 1..%d", revs, n)
		}
	}
}

func TestListTaskDefinitionsPaginates(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	api := c.ECS()
	ctx := context.Background()
	var want []string
	for _, f := range []string{"alpha", "beta", "beta-worker"} {
		for r := 1; r <= 3; r++ {
			if _, err := api.RegisterTaskDefinition(ctx, registerInput(f)); err != nil {
				t.Fatal(err)
			}
			want = append(want, fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task-definition/%s:%d", f, r))
		}
	}
	for _, sort := range []types.SortOrder{types.SortOrderAsc, types.SortOrderDesc} {
		var got []string
		p := ecs.NewListTaskDefinitionsPaginator(api, &ecs.ListTaskDefinitionsInput{Sort: sort, MaxResults: aws.Int32(2)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, out.TaskDefinitionArns...)
		}
		w := slices.Clone(want)
		if sort == types.SortOrderDesc {
			slices.Reverse(w)
		}
		if !slices.Equal(got, w) {
			t.Errorf("%s:\n%v\nwant\n%v", sort, got, w)
		}
	}
	var fams []string
	p := ecs.NewListTaskDefinitionFamiliesPaginator(api, &ecs.ListTaskDefinitionFamiliesInput{FamilyPrefix: aws.String("beta"), MaxResults: aws.Int32(1)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fams = append(fams, out.Families...)
	}
	if !slices.Equal(fams, []string{"beta", "beta-worker"}) {
		t.Errorf("families = %v", fams)
	}
	t.Run("ErrToken", func(t *testing.T) {
		_, err := api.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{NextToken: aws.String("garbage")})
		wantCode(t, err, "InvalidParameterException")
	})
	t.Run("ErrMaxResults", func(t *testing.T) {
		_, err := api.ListTaskDefinitionFamilies(ctx, &ecs.ListTaskDefinitionFamiliesInput{MaxResults: aws.Int32(101)})
		wantCode(t, err, "InvalidParameterException")
	})
}

// TestRegisterTaskDefinitionRefusedStoresNothing: a refused registration
// leaves no trace (no revision used, no family created).
func TestRegisterTaskDefinitionRefusedStoresNothing(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	api := c.ECS()
	ctx := context.Background()
	bad := registerInput("refused")
	bad.ContainerDefinitions[0].Image = aws.String("${IMAGE}")
	_, err := api.RegisterTaskDefinition(ctx, bad)
	wantCode(t, err, "ClientException")
	f, err := api.ListTaskDefinitionFamilies(ctx, &ecs.ListTaskDefinitionFamiliesInput{})
	if err != nil || len(f.Families) != 0 {
		t.Errorf("families after a refused register = %v, %v", f, err)
	}
	out, err := api.RegisterTaskDefinition(ctx, registerInput("refused"))
	if err != nil || out.TaskDefinition.Revision != 1 {
		t.Errorf("first accepted revision = %v, %v", out, err)
	}
}
