package agentapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/awsproto"
	"github.com/gantry-dev/gantry/state"
)

// LogsPath is the user-facing logs endpoint (docs/logs.md): GET, signed
// with SigV4 for service "ecs" like any ECS call, with the query parameters
// cluster, task (ID or ARN), container (optional for one-container tasks),
// follow, tail, since (RFC 3339) and timestamps. It answers the container's
// output, stdout and stderr interleaved, as text/plain, streamed; errors
// are AWS JSON errors. The server relays it from the task's agent, which
// holds a stream open to the server: the server never dials agents.
const LogsPath = "/gantry/v1/logs"

// logAnswerTimeout bounds the wait for an agent to answer a log request.
const logAnswerTimeout = 15 * time.Second

// logRelay pairs users' log requests with agents' answers. It lives in one
// server's memory: a request reaches an agent only if the agent's log
// request stream is connected to the server the user asked.
type logRelay struct {
	mu      sync.Mutex
	agents  map[string]chan protocol.LogRequest // by "<cluster>/<instance id>": the agent's stream
	pending map[string]*pendingLog              // by request ID
}

type pendingLog struct {
	instance string
	answer   chan *logAnswer // buffered: the agent's one answer
}

// logAnswer is an agent's answer: its output, or an error code.
type logAnswer struct {
	body      io.Reader
	code, msg string
	done      chan struct{} // closed when the user side is finished with body
	once      sync.Once
}

func (a *logAnswer) finish() { a.once.Do(func() { close(a.done) }) }

func newLogRelay() *logRelay {
	return &logRelay{agents: map[string]chan protocol.LogRequest{}, pending: map[string]*pendingLog{}}
}

var errAgentNotConnected = errors.New("agent not connected")

// request sends req to the instance's agent and waits for its answer.
func (l *logRelay) request(ctx context.Context, instance string, req protocol.LogRequest) (*logAnswer, error) {
	p := &pendingLog{instance: instance, answer: make(chan *logAnswer, 1)}
	l.mu.Lock()
	ch := l.agents[instance]
	if ch != nil {
		l.pending[req.ID] = p
	}
	l.mu.Unlock()
	if ch == nil {
		return nil, errAgentNotConnected
	}
	defer func() {
		l.mu.Lock()
		delete(l.pending, req.ID)
		l.mu.Unlock()
	}()
	t := time.NewTimer(logAnswerTimeout)
	defer t.Stop()
	select {
	case ch <- req:
	case <-t.C:
		return nil, context.DeadlineExceeded
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case a := <-p.answer:
		return a, nil
	case <-t.C:
		return nil, context.DeadlineExceeded
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// connect registers an agent's log request stream (replacing an older one
// of the same instance) and returns its requests and a function that
// unregisters it.
func (l *logRelay) connect(instance string) (<-chan protocol.LogRequest, func()) {
	ch := make(chan protocol.LogRequest, 16)
	l.mu.Lock()
	l.agents[instance] = ch
	l.mu.Unlock()
	return ch, func() {
		l.mu.Lock()
		if l.agents[instance] == ch {
			delete(l.agents, instance)
		}
		l.mu.Unlock()
	}
}

// claim returns the pending request id if it was sent to instance.
func (l *logRelay) claim(id, instance string) *pendingLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.pending[id]
	if p == nil || p.instance != instance {
		return nil
	}
	delete(l.pending, id)
	return p
}

// logRequests streams log requests to an agent as NDJSON, with keepalives.
func (h *Handler) logRequests(w http.ResponseWriter, r *http.Request) {
	rec, err := h.instance(r)
	if err != nil {
		h.authFailed(w, err)
		return
	}
	if rec.Status == ecs.InstanceStatusInactive {
		writeError(w, http.StatusGone, "InstanceInactive", "container instance "+rec.ContainerInstanceARN+" is deregistered")
		return
	}
	reqs, disconnect := h.logs.connect(rec.Cluster() + "/" + rec.ID())
	defer disconnect()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(req protocol.LogRequest) error {
		b, _ := json.Marshal(req)
		if _, err := w.Write(append(b, '\n')); err != nil {
			return err
		}
		return rc.Flush()
	}
	if send(protocol.LogRequest{Keepalive: true}) != nil {
		return
	}
	tick := time.NewTicker(h.keepalive)
	defer tick.Stop()
	for {
		var err error
		select {
		case req := <-reqs:
			err = send(req)
		case <-tick.C:
			err = send(protocol.LogRequest{Keepalive: true})
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// agentLogs takes an agent's answer to a log request: the container's
// output as the streamed body, or an error in the headers. It returns when
// the user side is done with the body.
func (h *Handler) agentLogs(w http.ResponseWriter, r *http.Request) {
	rec, err := h.instance(r)
	if err != nil {
		h.authFailed(w, err)
		return
	}
	id := r.PathValue("id")
	p := h.logs.claim(id, rec.Cluster()+"/"+rec.ID())
	if p == nil {
		writeError(w, http.StatusNotFound, "NotFound", "no log request "+id+" is waiting for this instance (the user went away?)")
		return
	}
	a := &logAnswer{body: r.Body, code: r.Header.Get(protocol.HeaderLogError), msg: r.Header.Get(protocol.HeaderLogMessage), done: make(chan struct{})}
	p.answer <- a
	select {
	case <-a.done:
	case <-r.Context().Done():
	case <-h.done:
	}
	w.WriteHeader(http.StatusNoContent)
}

// userLogs serves LogsPath.
func (h *Handler) userLogs(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-amzn-RequestId", awsproto.NewRequestID())
	if h.verifier == nil {
		awsproto.WriteError(w, &awsproto.Error{Code: "UnknownOperationException", Message: "this server has no logs endpoint", Status: http.StatusNotFound})
		return
	}
	if _, err := h.verifier.Verify(r, nil, ecs.SigningName); err != nil {
		awsproto.WriteError(w, err)
		return
	}
	q := r.URL.Query()
	req, instance, err := h.logRequest(r.Context(), q)
	if err != nil {
		awsproto.WriteError(w, err)
		return
	}
	a, err := h.logs.request(r.Context(), instance, req)
	switch {
	case errors.Is(err, errAgentNotConnected):
		awsproto.WriteError(w, awsproto.Errorf("TargetNotConnectedException",
			"the agent of the container instance that runs task %s is not connected to this server "+
				"(is it running? with several servers, ask the one it is connected to)", req.Task))
		return
	case errors.Is(err, context.DeadlineExceeded):
		awsproto.WriteError(w, &awsproto.Error{Code: "ServerException", Message: "the agent did not answer within " + logAnswerTimeout.String(), Status: http.StatusGatewayTimeout})
		return
	case err != nil:
		return // the user went away
	}
	defer a.finish()
	switch a.code {
	case "":
	case protocol.LogErrNotFound:
		awsproto.WriteError(w, awsproto.Errorf("ResourceNotFoundException", "%s", a.msg))
		return
	case protocol.LogErrUnsupported:
		awsproto.WriteError(w, awsproto.Errorf(ecs.ErrCodeUnsupportedFeatureException, "%s", a.msg))
		return
	default:
		awsproto.WriteError(w, &awsproto.Error{Code: "ServerException", Message: a.msg, Status: http.StatusServiceUnavailable})
		return
	}
	// The agent's body blocks while a followed container is quiet: when the
	// user goes away (or the server shuts down), finish, so the agent's
	// request ends and the read below returns.
	go func() {
		select {
		case <-r.Context().Done():
		case <-h.done:
		case <-a.done:
		}
		a.finish()
	}()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc.Flush()
	buf := make([]byte, 32<<10)
	for {
		n, err := a.body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			rc.Flush()
		}
		if err != nil {
			return
		}
	}
}

// logRequest checks a user's query and finds the task's instance.
func (h *Handler) logRequest(ctx context.Context, q map[string][]string) (protocol.LogRequest, string, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	invalid := func(format string, args ...any) error {
		return awsproto.Errorf(ecs.ErrCodeInvalidParameterException, format, args...)
	}
	cluster, ok := h.scope.ClusterName(get("cluster"))
	if !ok {
		return protocol.LogRequest{}, "", invalid("cluster %q is not a cluster name or ARN of this account and region", get("cluster"))
	}
	if get("task") == "" {
		return protocol.LogRequest{}, "", invalid("task is required")
	}
	id, ok := h.scope.ParseTaskRef(cluster, get("task"))
	if !ok {
		return protocol.LogRequest{}, "", invalid("task %q is not a task ID or ARN of cluster %s", get("task"), cluster)
	}
	t, err := h.store.GetTask(ctx, cluster, id)
	if errors.Is(err, state.ErrNotFound) {
		return protocol.LogRequest{}, "", invalid("The referenced task was not found.")
	}
	if err != nil {
		return protocol.LogRequest{}, "", err
	}
	name := get("container")
	var names []string
	for _, c := range t.Containers {
		names = append(names, c.Name)
	}
	switch {
	case name == "" && len(names) == 1:
		name = names[0]
	case name == "":
		return protocol.LogRequest{}, "", invalid("task %s has %d containers (%s): name one", id, len(names), strings.Join(names, ", "))
	case !contains(names, name):
		return protocol.LogRequest{}, "", invalid("task %s has no container named %q (it has %s)", id, name, strings.Join(names, ", "))
	}
	if t.ContainerInstanceARN == "" {
		return protocol.LogRequest{}, "", invalid("task %s is not placed on a container instance", id)
	}
	req := protocol.LogRequest{ID: randomID(), Task: t.TaskARN, Container: name}
	if req.Follow, err = boolParam(get("follow")); err != nil {
		return req, "", invalid("follow: %v", err)
	}
	if req.Timestamps, err = boolParam(get("timestamps")); err != nil {
		return req, "", invalid("timestamps: %v", err)
	}
	if s := get("tail"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return req, "", invalid("tail %q is not a number of lines", s)
		}
		req.Tail = n
	}
	if s := get("since"); s != "" {
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return req, "", invalid("since %q is not an RFC 3339 time", s)
		}
		req.Since = &ts
	}
	return req, cluster + "/" + t.InstanceID(), nil
}

func boolParam(s string) (bool, error) {
	if s == "" {
		return false, nil
	}
	return strconv.ParseBool(s)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
