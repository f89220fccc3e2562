package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/agent/protocol"
)

// client speaks the agent protocol (docs/agent-protocol.md) to the control
// plane. It holds the instance token once registered.
type client struct {
	base string // server URL without a trailing slash
	http *http.Client

	mu    sync.Mutex
	token string // the instance token
}

// apiError is a non-2xx answer from the server.
type apiError struct {
	Status  int
	Code    string // protocol.Error's
	Message string
}

func (e *apiError) Error() string {
	if e.Code == "" && e.Message == "" {
		return fmt.Sprintf("server answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("server answered %d %s: %s", e.Status, e.Code, e.Message)
}

// permanent reports whether retrying the same request cannot help: a bad
// request, or a task that is not this instance's. 401 is not permanent
// (the agent registers again and gets a new token), nor are 5xx, 408, 429.
func (e *apiError) permanent() bool {
	switch e.Status {
	case http.StatusUnauthorized, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return e.Status >= 400 && e.Status < 500
}

func newClient(server string, hc *http.Client) *client {
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return &client{base: strings.TrimRight(server, "/"), http: hc}
}

func (c *client) setToken(t string) {
	c.mu.Lock()
	c.token = t
	c.mu.Unlock()
}

func (c *client) instanceToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// requestTimeout bounds every call but the assignments stream.
const requestTimeout = 15 * time.Second

func (c *client) register(ctx context.Context, joinToken string, req protocol.RegisterRequest) (protocol.RegisterResponse, error) {
	var resp protocol.RegisterResponse
	err := c.call(ctx, protocol.PathRegister, joinToken, req, &resp)
	return resp, err
}

func (c *client) heartbeat(ctx context.Context) (protocol.HeartbeatResponse, error) {
	var resp protocol.HeartbeatResponse
	err := c.call(ctx, protocol.PathHeartbeat, c.instanceToken(), protocol.HeartbeatRequest{}, &resp)
	return resp, err
}

func (c *client) taskState(ctx context.Context, change protocol.TaskStateChange) (protocol.TaskStateResponse, error) {
	var resp protocol.TaskStateResponse
	err := c.call(ctx, protocol.PathTaskState, c.instanceToken(), change, &resp)
	return resp, err
}

// assignments opens the assignments stream; the caller reads NDJSON from
// the body and closes it.
func (c *client) assignments(ctx context.Context) (io.ReadCloser, error) {
	return c.stream(ctx, protocol.PathAssignments)
}

// stream opens an NDJSON stream (assignments, log requests).
func (c *client) stream(ctx context.Context, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.instanceToken())
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp.Body, nil
}

func (c *client) call(ctx context.Context, path, token string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return decodeError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", path, err)
	}
	return nil
}

func decodeError(resp *http.Response) error {
	e := &apiError{Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var pe protocol.Error
	if json.Unmarshal(b, &pe) == nil && (pe.Code != "" || pe.Message != "") {
		e.Code, e.Message = pe.Code, pe.Message
	} else {
		e.Message = strings.TrimSpace(string(b))
	}
	return e
}
