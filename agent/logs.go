package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/agent/runtime"
)

// serveLogRequests keeps the log request stream open (docs/logs.md): the
// server asks for a container's output on it, and the agent answers each
// request by POSTing the output back, so the server never dials the agent.
func (a *Agent) serveLogRequests(ctx context.Context) {
	bo := backoff{min: 200 * time.Millisecond, max: 15 * time.Second}
	for ctx.Err() == nil {
		got, err := a.logRequestStream(ctx)
		if ctx.Err() != nil {
			return
		}
		if got {
			bo.reset()
		}
		d := bo.next()
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			d = time.Minute // a server without the logs endpoint: ask again now and then
		}
		a.log.Debug("log request stream ended; reconnecting", "in", d, "err", err)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return
		}
	}
}

// logRequestStream reads one connection of the stream until it breaks.
func (a *Agent) logRequestStream(ctx context.Context) (got bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	body, err := a.c.stream(sctx, protocol.PathLogRequests)
	if err != nil {
		return false, err
	}
	defer body.Close()
	idle := time.AfterFunc(streamIdle, cancel)
	defer idle.Stop()
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		idle.Reset(streamIdle)
		if len(sc.Bytes()) == 0 {
			continue
		}
		var req protocol.LogRequest
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			return got, fmt.Errorf("log requests: %w", err)
		}
		got = true
		if req.Keepalive || req.ID == "" {
			continue
		}
		go a.serveLog(ctx, req)
	}
	if err := sc.Err(); err != nil {
		return got, err
	}
	return got, io.ErrUnexpectedEOF
}

// serveLog answers one log request: the output of the task's container
// (found by its labels, so logs of a stopped task's containers are there
// until they are cleaned up), or why there is none.
func (a *Agent) serveLog(ctx context.Context, req protocol.LogRequest) {
	fail := func(code, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if err := a.c.postLogs(ctx, req.ID, nil, code, msg); err != nil && ctx.Err() == nil {
			a.log.Warn("could not answer a log request", "task", req.Task, "container", req.Container, "err", err)
		}
	}
	rt := a.cfg.Runtime
	found, err := rt.List(ctx, map[string]string{
		LabelTaskARN: req.Task, LabelContainerName: req.Container, LabelContainerInstance: a.ContainerInstanceARN(),
	})
	if err != nil {
		fail(protocol.LogErrUnavailable, "%v", err)
		return
	}
	if len(found) == 0 {
		fail(protocol.LogErrNotFound, "container %s of task %s is not on this container instance (the containers of stopped tasks are removed %v after they stop)",
			req.Container, req.Task, a.cfg.TaskCleanupWait)
		return
	}
	opts := runtime.LogOptions{Follow: req.Follow, Tail: req.Tail, Timestamps: req.Timestamps}
	if req.Since != nil {
		opts.Since = *req.Since
	}
	rc, err := rt.Logs(ctx, found[0].ID, opts)
	switch {
	case errors.Is(err, runtime.ErrUnsupported):
		fail(protocol.LogErrUnsupported, "%v", err)
		return
	case errors.Is(err, runtime.ErrNotFound):
		fail(protocol.LogErrNotFound, "%v", err)
		return
	case err != nil:
		fail(protocol.LogErrUnavailable, "%v", err)
		return
	}
	defer rc.Close()
	if err := a.c.postLogs(ctx, req.ID, rc, "", ""); err != nil && ctx.Err() == nil {
		a.log.Debug("log stream ended", "task", req.Task, "container", req.Container, "err", err)
	}
}

// postLogs sends a log request's answer: body (streamed until EOF), or an
// error code and message.
func (c *client) postLogs(ctx context.Context, id string, body io.Reader, code, msg string) error {
	if body == nil {
		body = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+protocol.PathLogs+url.PathEscape(id), body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.instanceToken())
	req.Header.Set("Content-Type", "application/octet-stream")
	if code != "" {
		req.Header.Set(protocol.HeaderLogError, code)
		req.Header.Set(protocol.HeaderLogMessage, truncate(msg, 1024))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return decodeError(resp)
	}
	return nil
}
