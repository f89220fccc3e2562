// Package agentcmd is the `gantry agent` command. It is its own package,
// importing nothing of the control plane, so that cmd/gantry-agent, a binary
// with only the agent in it, stays small (docs/agent.md, "Memory").
package agentcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gantry-dev/gantry/agent"
	"github.com/gantry-dev/gantry/agent/runtime"
	"github.com/gantry-dev/gantry/agent/runtime/docker"
	"github.com/gantry-dev/gantry/agent/runtime/sim"
	"github.com/gantry-dev/gantry/cli/cliflags"
)

// attrFlags collects repeated --attribute key=value flags.
type attrFlags map[string]string

func (a attrFlags) String() string { return fmt.Sprint(map[string]string(a)) }

func (a attrFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want key=value", s)
	}
	a[k] = v
	return nil
}

// agentFlags are gantry agent's flags.
type agentFlags struct {
	server, cluster, token, tokenFile, dataDir string
	az, runtime, logLevel                      string
	simStartDelay                              time.Duration
	host                                       HostFlags
}

// HostFlags are the flags about the host and its tasks that `gantry
// agent` and `gantry dev` (for its in-process agent) share.
type HostFlags struct {
	attrs                 attrFlags
	cpu, memory, reserved int
	gpus, pull            string
	stopTimeout           time.Duration
	cleanupWait           time.Duration
	AllowPrivileged       bool
	metadataAddress       string
}

// Register defines the flags on fs.
func (h *HostFlags) Register(fs *flag.FlagSet) {
	h.attrs = attrFlags{}
	fs.Var(h.attrs, "attribute", "custom attribute key=value (repeatable)")
	fs.IntVar(&h.cpu, "cpu", 0, "CPU units to register (default 1024 per logical CPU)")
	fs.IntVar(&h.memory, "memory", 0, "memory to register in MiB (default the host's)")
	fs.IntVar(&h.reserved, "reserved-memory", 0, "MiB of memory kept back for the host (ECS_RESERVED_MEMORY)")
	fs.StringVar(&h.gpus, "gpus", "", "comma-separated IDs of the host's NVIDIA GPUs to register (as nvidia-smi -L lists them); tasks get them as gpuIds")
	fs.StringVar(&h.pull, "image-pull-behavior", "default", "default, always, once or prefer-cached (ECS_IMAGE_PULL_BEHAVIOR)")
	fs.DurationVar(&h.stopTimeout, "stop-timeout", agent.DefaultStopTimeout, "SIGTERM to SIGKILL for containers without a stopTimeout")
	fs.DurationVar(&h.cleanupWait, "task-cleanup-wait", agent.DefaultTaskCleanupWait,
		"how long a stopped task's containers and logs stay before they are removed (ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION)")
	fs.BoolVar(&h.AllowPrivileged, "allow-privileged", false, "let tasks run privileged containers (every capability and device of the host)")
	fs.StringVar(&h.metadataAddress, "metadata-address", "",
		"host:port of the task metadata endpoint (default: the engine's bridge gateway, port 51679; \"off\" disables it)")
}

// GPUs are the IDs --gpus lists: distinct and non-empty.
func (h *HostFlags) GPUs() ([]string, error) {
	gpus, err := gpuIDs(h.gpus)
	if err != nil {
		return nil, fmt.Errorf("--gpus: %w", err)
	}
	return gpus, nil
}

// Apply checks the flags and sets what they say in cfg.
func (h *HostFlags) Apply(cfg *agent.Config) error {
	if h.cleanupWait <= 0 {
		return errors.New("--task-cleanup-wait must be positive")
	}
	gpus, err := h.GPUs()
	if err != nil {
		return err
	}
	cfg.Attributes = h.attrs
	cfg.CPU, cfg.Memory, cfg.ReservedMemory = h.cpu, h.memory, h.reserved
	cfg.GPUs = gpus
	cfg.PullBehavior = agent.PullBehavior(h.pull)
	cfg.DefaultStopTimeout, cfg.TaskCleanupWait = h.stopTimeout, h.cleanupWait
	cfg.AllowPrivileged = h.AllowPrivileged
	cfg.MetadataAddress = h.metadataAddress
	return nil
}

// Run runs `gantry agent` with args and returns the exit code; version is
// reported in versionInfo.
func Run(args []string, stdout, stderr io.Writer, version string) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	var f agentFlags
	fs.StringVar(&f.server, "server", "", "URL of the control plane (the API's endpoint, e.g. http://10.0.0.1:4747)")
	fs.StringVar(&f.cluster, "cluster", "default", "cluster to join")
	fs.StringVar(&f.token, "token", "", "join token (visible in ps: prefer --token-file or GANTRY_AGENT_TOKEN)")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the join token (the server's <data-dir>/join-token)")
	fs.StringVar(&f.dataDir, "data-dir", filepath.Join(cliflags.DefaultDataDir(), "agent"), "directory for the agent's identity; one per agent")
	fs.StringVar(&f.az, "availability-zone", "local", "the ecs.availability-zone attribute")
	f.host.Register(fs)
	fs.StringVar(&f.runtime, "runtime", "docker", "container runtime: docker (DOCKER_HOST honoured) or sim (simulated)")
	fs.DurationVar(&f.simStartDelay, "sim-start-delay", 0, "with --runtime sim: how long a simulated container takes to start")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	if code := cliflags.Parse(fs, args, stderr); code >= 0 {
		return code
	}
	fail := func(code int, format string, args ...any) int {
		fmt.Fprintf(stderr, "gantry agent: "+format+"\n", args...)
		return code
	}
	if f.server == "" {
		return fail(2, "--server is required")
	}
	token, err := joinToken(f.token, f.tokenFile)
	if err != nil {
		return fail(2, "%v", err)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fail(2, "--log-level: %v", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	cfg := agent.Config{
		Server:           f.server,
		Cluster:          f.cluster,
		Token:            token,
		AvailabilityZone: f.az,
		Version:          version,
		Logger:           log,
	}
	if err := f.host.Apply(&cfg); err != nil {
		return fail(2, "%v", err)
	}
	rt, closeRT, err := newRuntime(&f, cfg.GPUs, log)
	if err != nil {
		return fail(2, "%v", err)
	}
	defer closeRT()
	cfg.Runtime = rt
	if cfg.DataDir, err = filepath.Abs(f.dataDir); err != nil {
		return fail(1, "%v", err)
	}
	a, err := agent.New(cfg)
	if err != nil {
		return fail(2, "%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stdout, "Gantry agent %s joining cluster %s at %s (runtime %s, data in %s)\n", version, f.cluster, f.server, f.runtime, cfg.DataDir)
	err = a.Run(ctx)
	switch {
	case errors.Is(err, agent.ErrDeregistered):
		fmt.Fprintf(stdout, "gantry agent: %v; its tasks are stopped\n", err)
		return 0
	case err != nil && ctx.Err() == nil:
		return fail(1, "%v", err)
	}
	fmt.Fprintln(stderr, "gantry agent: shutting down (containers keep running)")
	return 0
}

// joinToken picks the token from --token, --token-file or
// GANTRY_AGENT_TOKEN, in that order.
func joinToken(flagToken, file string) (string, error) {
	if flagToken != "" {
		return flagToken, nil
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
		return "", fmt.Errorf("--token-file %s is empty", file)
	}
	if tok := strings.TrimSpace(os.Getenv("GANTRY_AGENT_TOKEN")); tok != "" {
		return tok, nil
	}
	return "", errors.New("a join token is required: --token, --token-file or GANTRY_AGENT_TOKEN")
}

// gpuIDs reads --gpus: distinct, non-empty IDs separated by commas.
func gpuIDs(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	for id := range strings.SplitSeq(s, ",") {
		id = strings.TrimSpace(id)
		switch {
		case id == "":
			return nil, fmt.Errorf("%q: an empty GPU ID", s)
		case slices.Contains(out, id):
			return nil, fmt.Errorf("GPU %s is listed twice", id)
		}
		out = append(out, id)
	}
	return out, nil
}

// newRuntime returns the named runtime and a function that releases it;
// gpus are the host's GPUs (the sim runtime pretends to have them).
func newRuntime(f *agentFlags, gpus []string, log *slog.Logger) (runtime.Runtime, func(), error) {
	if f.simStartDelay != 0 && f.runtime != "sim" {
		return nil, nil, fmt.Errorf("--sim-start-delay needs --runtime sim")
	}
	switch f.runtime {
	case "docker":
		rt, err := docker.New(docker.Options{Logger: log, Policy: docker.Policy{AllowPrivileged: f.host.AllowPrivileged}})
		if err != nil {
			return nil, nil, err
		}
		return rt, func() { rt.Close() }, nil
	case "sim":
		return sim.New(sim.Options{AllowPrivileged: f.host.AllowPrivileged, StartDelay: f.simStartDelay, GPUs: gpus}), func() {}, nil
	}
	return nil, nil, fmt.Errorf("--runtime %q: docker or sim", f.runtime)
}
