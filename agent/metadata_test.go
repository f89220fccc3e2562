package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/gantry-dev/gantry/agent/runtime"
)

// statsRuntime fails Stats for the containers in failing.
type statsRuntime struct {
	runtime.Runtime
	mu      sync.Mutex
	failing map[string]bool
}

func (s *statsRuntime) Stats(ctx context.Context, id string) (json.RawMessage, error) {
	s.mu.Lock()
	fail := s.failing[id]
	s.mu.Unlock()
	if fail {
		return nil, errors.New("stats: the engine broke")
	}
	return s.Runtime.Stats(ctx, id)
}

func TestMetadataStats(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t)
	sim := offline()
	rt := &statsRuntime{Runtime: sim, failing: map[string]bool{}}
	dir := t.TempDir()
	a, _, _ := runAgent(t, fs, rt, dir, func(c *Config) { c.MetadataAddress = "127.0.0.1:0" })
	arn := fs.place(serveDef(container("web", true, "serve"), container("env", false, "print-env")), nil)
	r := fs.waitStatus(arn, StatusRunning)
	webID, envID := containerOf(t, r, "web").RuntimeID, containerOf(t, r, "env").RuntimeID
	secret, err := loadMetadataSecret(dir)
	if err != nil {
		t.Fatal(err)
	}
	uri := func(name string) string { return a.MetadataEndpoint() + "/v4/" + MetadataToken(secret, arn, name) }
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: Content-Type %q", url, ct)
		}
		return resp.StatusCode, string(b)
	}
	type doc struct {
		ID       string                     `json:"id"`
		Name     string                     `json:"name"`
		Networks map[string]json.RawMessage `json:"networks"`
	}

	code, body := get(uri("web") + "/stats")
	var own doc
	if err := json.Unmarshal([]byte(body), &own); code != 200 || err != nil || own.ID != webID ||
		own.Name != "/"+inspectName(t, rt, r, "web").Name || own.Networks["eth0"] == nil {
		t.Errorf("web's stats: %d %s", code, body)
	}
	code, body = get(uri("env") + "/task/stats") // from another container of the task
	var byID map[string]doc
	if err := json.Unmarshal([]byte(body), &byID); code != 200 || err != nil || len(byID) != 2 ||
		byID[webID].ID != webID || byID[envID].ID != envID {
		t.Errorf("task stats: %d %s", code, body)
	}

	// A container whose stats cannot be read: an error of its own, an
	// empty object in the task's, as in the ECS agent.
	rt.mu.Lock()
	rt.failing[envID] = true
	rt.mu.Unlock()
	if code, body := get(uri("env") + "/stats"); code != 500 || body != `"Unable to get container stats for: `+envID+`"` {
		t.Errorf("failing stats: %d %s", code, body)
	}
	code, body = get(uri("web") + "/task/stats")
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &raw); code != 200 || err != nil || len(raw) != 2 || string(raw[envID]) != "{}" {
		t.Errorf("task stats with a failing container: %d %s", code, body)
	}
	if code, _ := get(a.MetadataEndpoint() + "/v4/0123456789abcdef0123456789abcdef/stats"); code != 404 {
		t.Errorf("stats of an unknown token: %d", code)
	}
}
