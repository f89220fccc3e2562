package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/agent/runtime"
	"github.com/gantry-dev/gantry/ecs"
)

// The task metadata endpoint, version 4, as the ECS agent serves it on EC2
// (docs/metadata.md): every container gets ECS_CONTAINER_METADATA_URI_V4 =
// http://<host>:<port>/v4/<token>, where the token names the container; GET
// on it answers the container's document, GET <uri>/task the task's with
// all its containers, and <uri>/stats, <uri>/task/stats their Docker stats
// documents. The JSON shapes are the ECS agent's
// (ecs-agent/tmds/handlers/v2 and v4/state, response.go).

// DefaultMetadataPort is the ECS agent's port for the endpoint (it serves
// it on 127.0.0.1:51679 behind 169.254.170.2:80).
const DefaultMetadataPort = 51679

// v4Task is the task document (${ECS_CONTAINER_METADATA_URI_V4}/task).
type v4Task struct {
	Cluster               string        `json:"Cluster"`
	TaskARN               string        `json:"TaskARN"`
	Family                string        `json:"Family"`
	Revision              string        `json:"Revision"`
	DesiredStatus         string        `json:"DesiredStatus,omitempty"`
	KnownStatus           string        `json:"KnownStatus"`
	Containers            []v4Container `json:"Containers,omitempty"`
	Limits                *v4Limits     `json:"Limits,omitempty"`
	PullStartedAt         *time.Time    `json:"PullStartedAt,omitempty"`
	PullStoppedAt         *time.Time    `json:"PullStoppedAt,omitempty"`
	ExecutionStoppedAt    *time.Time    `json:"ExecutionStoppedAt,omitempty"`
	AvailabilityZone      string        `json:"AvailabilityZone,omitempty"`
	LaunchType            string        `json:"LaunchType,omitempty"`
	ServiceName           string        `json:"ServiceName,omitempty"`
	FaultInjectionEnabled bool          `json:"FaultInjectionEnabled"`
}

// v4Container is a container's document (${ECS_CONTAINER_METADATA_URI_V4}).
type v4Container struct {
	DockerID      string            `json:"DockerId"`
	Name          string            `json:"Name"`
	DockerName    string            `json:"DockerName"`
	Image         string            `json:"Image"`
	ImageID       string            `json:"ImageID"`
	Ports         []v4Port          `json:"Ports,omitempty"`
	Labels        map[string]string `json:"Labels,omitempty"`
	DesiredStatus string            `json:"DesiredStatus"`
	KnownStatus   string            `json:"KnownStatus"`
	ExitCode      *int              `json:"ExitCode,omitempty"`
	Limits        v4Limits          `json:"Limits"`
	CreatedAt     *time.Time        `json:"CreatedAt,omitempty"`
	StartedAt     *time.Time        `json:"StartedAt,omitempty"`
	FinishedAt    *time.Time        `json:"FinishedAt,omitempty"`
	Type          string            `json:"Type"`
	Networks      []v4Network       `json:"Networks,omitempty"`
	Health        *v4Health         `json:"Health,omitempty"`
	Volumes       []v4Volume        `json:"Volumes,omitempty"`
	LogDriver     string            `json:"LogDriver,omitempty"`
	LogOptions    map[string]string `json:"LogOptions,omitempty"`
	ContainerARN  string            `json:"ContainerARN,omitempty"`
}

// v4Limits: a container's CPU units and memory MiB; a task's vCPUs and MiB.
type v4Limits struct {
	CPU    *float64 `json:"CPU,omitempty"`
	Memory *int64   `json:"Memory,omitempty"`
}

type v4Port struct {
	ContainerPort uint16 `json:"ContainerPort,omitempty"`
	Protocol      string `json:"Protocol,omitempty"`
	HostPort      uint16 `json:"HostPort,omitempty"`
	HostIP        string `json:"HostIp,omitempty"`
}

type v4Network struct {
	NetworkMode   string   `json:"NetworkMode,omitempty"`
	IPv4Addresses []string `json:"IPv4Addresses,omitempty"`
	IPv6Addresses []string `json:"IPv6Addresses,omitempty"`
}

type v4Health struct {
	Status string     `json:"status,omitempty"`
	Since  *time.Time `json:"statusSince,omitempty"`
	Output string     `json:"output,omitempty"`
}

type v4Volume struct {
	DockerName  string `json:"DockerName,omitempty"`
	Source      string `json:"Source,omitempty"`
	Destination string `json:"Destination,omitempty"`
}

// taskView is a task as the metadata endpoint shows it: built by the
// task's runner after each change, then only read.
type taskView struct {
	doc    v4Task
	tokens map[string]int // metadata token -> index in doc.Containers
}

// view builds the task's current metadata view.
func (m *taskMachine) view() *taskView {
	v := &taskView{tokens: map[string]int{}}
	d := &v.doc
	d.Cluster = cmpOr(m.task.ClusterARN, m.env.translate.Cluster)
	d.TaskARN = m.arn
	d.Family, d.Revision = m.td.Family, strconv.Itoa(int(m.td.Revision))
	d.DesiredStatus, d.KnownStatus = m.desired, m.status
	d.AvailabilityZone = m.task.AvailabilityZone
	d.LaunchType = "EC2"
	d.ServiceName, _ = strings.CutPrefix(m.task.Group, "service:")
	if cpu, ok := ecs.TaskCPUUnits(m.td.CPU); ok && m.td.CPU != "" {
		f := float64(cpu) / 1024
		d.Limits = &v4Limits{CPU: &f}
	}
	if mem, ok := ecs.TaskMemoryMiB(m.td.Memory); ok && m.td.Memory != "" {
		if d.Limits == nil {
			d.Limits = &v4Limits{}
		}
		n := int64(mem)
		d.Limits.Memory = &n
	}
	d.PullStartedAt, d.PullStoppedAt, d.ExecutionStoppedAt = timePtr(m.pullStartedAt), timePtr(m.pullStoppedAt), timePtr(m.executionStoppedAt)
	for _, c := range m.containers {
		if c.plan.MetadataToken != "" {
			v.tokens[c.plan.MetadataToken] = len(d.Containers)
		}
		d.Containers = append(d.Containers, m.containerDoc(c))
	}
	return v
}

func (m *taskMachine) containerDoc(c *taskContainer) v4Container {
	st := c.last
	doc := v4Container{
		DockerID:      c.id,
		Name:          c.plan.Name,
		DockerName:    c.plan.Spec.Name,
		Image:         c.plan.Spec.Image,
		ImageID:       st.ImageID,
		Labels:        c.plan.Spec.Labels,
		DesiredStatus: m.desired,
		KnownStatus:   c.status,
		Type:          "NORMAL",
		LogDriver:     c.plan.LogDriver,
		LogOptions:    c.plan.LogOptions,
		CreatedAt:     timePtr(st.CreatedAt),
		StartedAt:     timePtr(st.StartedAt),
		FinishedAt:    timePtr(st.FinishedAt),
	}
	if c.status == StatusPending && c.id != "" {
		doc.KnownStatus = "CREATED"
	}
	if rec := m.recordOf(c.plan.Name); rec != nil {
		doc.ContainerARN = rec.ContainerARN
	}
	if cd := findContainer(&m.td, c.plan.Name); cd != nil {
		cpu := float64(cd.CPU)
		doc.Limits.CPU = &cpu
	}
	if c.plan.Spec.MemoryLimit > 0 {
		mem := c.plan.Spec.MemoryLimit >> 20
		doc.Limits.Memory = &mem
	}
	if c.exitCode != nil {
		code := int(*c.exitCode)
		doc.ExitCode = &code
	}
	if c.status == StatusRunning {
		for _, p := range st.Ports {
			doc.Ports = append(doc.Ports, v4Port{ContainerPort: p.ContainerPort, Protocol: string(p.Protocol), HostPort: p.HostPort, HostIP: p.HostIP})
		}
		for _, n := range st.Networks {
			net := v4Network{NetworkMode: n.Network}
			if n.IPv4 != "" {
				net.IPv4Addresses = []string{n.IPv4}
			}
			if n.IPv6 != "" {
				net.IPv6Addresses = []string{n.IPv6}
			}
			doc.Networks = append(doc.Networks, net)
		}
	}
	if c.plan.HealthCheck {
		doc.Health = &v4Health{Status: string(ecsHealth(c.health)), Output: st.HealthOutput}
	}
	for _, mt := range c.plan.Spec.Mounts {
		vol := v4Volume{Destination: mt.Target}
		if mt.Type == runtime.MountBind {
			vol.Source = mt.Source
		} else {
			vol.DockerName = mt.Source
		}
		doc.Volumes = append(doc.Volumes, vol)
	}
	return doc
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// metadataServer serves the task metadata endpoint for the agent's tasks.
type metadataServer struct {
	rec      *reconciler
	log      *slog.Logger
	srv      *http.Server
	endpoint string // the base URL containers use
}

// startMetadata listens on addr and serves until Close. advertise is the
// host containers reach it at (the listen host if empty).
func startMetadata(addr, advertise string, rec *reconciler, log *slog.Logger) (*metadataServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if advertise != "" {
		host = advertise
	}
	s := &metadataServer{rec: rec, log: log, endpoint: "http://" + net.JoinHostPort(host, port)}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("task metadata endpoint stopped", "err", err)
		}
	}()
	return s, nil
}

func (s *metadataServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// ServeHTTP answers GET /v4/<token>, /v4/<token>/task, /v4/<token>/stats
// and /v4/<token>/task/stats.
func (s *metadataServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		metadataError(w, http.StatusMethodNotAllowed, "only GET is supported")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v4/")
	if !ok {
		metadataError(w, http.StatusNotFound, "Gantry serves the task metadata endpoint version 4 only (/v4/...)")
		return
	}
	token, sub, _ := strings.Cut(rest, "/")
	var view *taskView
	idx := -1
	for _, v := range s.rec.views() {
		if i, ok := v.tokens[token]; ok {
			view, idx = v, i
			break
		}
	}
	if view == nil {
		metadataError(w, http.StatusNotFound, "no container has this metadata URI")
		return
	}
	switch strings.TrimSuffix(sub, "/") {
	case "":
		writeMetadata(w, view.doc.Containers[idx])
	case "task":
		writeMetadata(w, view.doc)
	case "stats":
		s.containerStats(w, r, view.doc.Containers[idx].DockerID)
	case "task/stats":
		s.taskStats(w, r, view.doc.Containers)
	default:
		metadataError(w, http.StatusNotFound, "unknown metadata path /"+sub)
	}
}

// statsTimeout bounds one stats request: the engine answers in a second or
// two (it waits for a second sample).
const statsTimeout = 10 * time.Second

// containerStats answers the container's Docker stats document, as the ECS
// agent's ContainerStatsHandler does, with its status codes and messages.
func (s *metadataServer) containerStats(w http.ResponseWriter, r *http.Request, dockerID string) {
	if dockerID == "" {
		metadataError(w, http.StatusNotFound, "V4 container stats handler: the container has not been created yet")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), statsTimeout)
	defer cancel()
	doc, err := s.rec.env.rt.Stats(ctx, dockerID)
	if err != nil {
		s.log.Warn("task metadata endpoint: container stats", "container", dockerID, "err", err)
		metadataError(w, http.StatusInternalServerError, "Unable to get container stats for: "+dockerID)
		return
	}
	writeMetadata(w, doc)
}

// taskStats answers the stats documents of the task's containers by Docker
// ID, fetched in parallel. As in the ECS agent (NewV4TaskStatsResponse), a
// container whose stats cannot be read maps to an empty object; containers
// not created yet have no Docker ID and are left out.
func (s *metadataServer) taskStats(w http.ResponseWriter, r *http.Request, containers []v4Container) {
	ctx, cancel := context.WithTimeout(r.Context(), statsTimeout)
	defer cancel()
	out := make(map[string]json.RawMessage, len(containers))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range containers {
		if c.DockerID == "" {
			continue
		}
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			doc, err := s.rec.env.rt.Stats(ctx, id)
			if err != nil {
				s.log.Warn("task metadata endpoint: task stats", "container", id, "err", err)
				doc = json.RawMessage("{}")
			}
			mu.Lock()
			out[id] = doc
			mu.Unlock()
		}(c.DockerID)
	}
	wg.Wait()
	writeMetadata(w, out)
}

func writeMetadata(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		metadataError(w, http.StatusInternalServerError, "encode: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// metadataError answers as the ECS agent does: a JSON string.
func metadataError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// metadataSecretFile keeps the key of the containers' metadata tokens in
// the data dir, so a restarted agent recognises the URIs it handed out.
const metadataSecretFile = "metadata-secret"

// loadMetadataSecret reads dir's metadata secret, creating it (0600) if
// missing.
func loadMetadataSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, metadataSecretFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if s, err := hex.DecodeString(strings.TrimSpace(string(b))); err == nil && len(s) >= 16 {
			return s, nil
		}
		return nil, fmt.Errorf("%s is not a hexadecimal secret; delete it to make a new one", path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(secret)+"\n"), 0o600); err != nil {
		return nil, err
	}
	return secret, nil
}
