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
	az, runtime, pull, logLevel, gpus          string
	cpu, memory, reserved                      int
	stopTimeout, cleanupWait, simStartDelay    time.Duration
	allowPrivileged                            bool
	metadataAddress                            string
	attrs                                      attrFlags
}

// Run runs `gantry agent` with args and returns the exit code; version is
// reported in versionInfo.
func Run(args []string, stdout, stderr io.Writer, version string) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	f := agentFlags{attrs: attrFlags{}}
	fs.StringVar(&f.server, "server", "", "URL of the control plane (the API's endpoint, e.g. http://10.0.0.1:4747)")
	fs.StringVar(&f.cluster, "cluster", "default", "cluster to join")
	fs.StringVar(&f.token, "token", "", "join token (visible in ps: prefer --token-file or GANTRY_AGENT_TOKEN)")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the join token (the server's <data-dir>/join-token)")
	fs.StringVar(&f.dataDir, "data-dir", filepath.Join(cliflags.DefaultDataDir(), "agent"), "directory for the agent's identity; one per agent")
	fs.StringVar(&f.az, "availability-zone", "local", "the ecs.availability-zone attribute")
	fs.Var(f.attrs, "attribute", "custom attribute key=value (repeatable)")
	fs.IntVar(&f.cpu, "cpu", 0, "CPU units to register (default 1024 per logical CPU)")
	fs.IntVar(&f.memory, "memory", 0, "memory to register in MiB (default the host's)")
	fs.IntVar(&f.reserved, "reserved-memory", 0, "MiB of memory kept back for the host (ECS_RESERVED_MEMORY)")
	fs.StringVar(&f.gpus, "gpus", "", "comma-separated IDs of the host's NVIDIA GPUs to register (as nvidia-smi -L lists them); tasks get them as gpuIds")
	fs.StringVar(&f.runtime, "runtime", "docker", "container runtime: docker (DOCKER_HOST honoured) or sim (simulated)")
	fs.DurationVar(&f.simStartDelay, "sim-start-delay", 0, "with --runtime sim: how long a simulated container takes to start")
	fs.StringVar(&f.pull, "image-pull-behavior", "default", "default, always, once or prefer-cached (ECS_IMAGE_PULL_BEHAVIOR)")
	fs.DurationVar(&f.stopTimeout, "stop-timeout", agent.DefaultStopTimeout, "SIGTERM to SIGKILL for containers without a stopTimeout")
	fs.DurationVar(&f.cleanupWait, "task-cleanup-wait", agent.DefaultTaskCleanupWait,
		"how long a stopped task's containers and logs stay before they are removed (ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION)")
	fs.BoolVar(&f.allowPrivileged, "allow-privileged", false, "let tasks run privileged containers (every capability and device of the host)")
	fs.StringVar(&f.metadataAddress, "metadata-address", "",
		"host:port of the task metadata endpoint (default: the engine's bridge gateway, port 51679; \"off\" disables it)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	if !cliflags.Parse(fs, args, stderr) {
		return 2
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
	if f.cleanupWait <= 0 {
		return fail(2, "--task-cleanup-wait must be positive")
	}
	gpus, err := gpuIDs(f.gpus)
	if err != nil {
		return fail(2, "--gpus: %v", err)
	}
	rt, closeRT, err := newRuntime(&f, gpus, log)
	if err != nil {
		return fail(2, "%v", err)
	}
	defer closeRT()
	dataDir, err := filepath.Abs(f.dataDir)
	if err != nil {
		return fail(1, "%v", err)
	}
	a, err := agent.New(agent.Config{
		Server:             f.server,
		Cluster:            f.cluster,
		Token:              token,
		DataDir:            dataDir,
		Runtime:            rt,
		AvailabilityZone:   f.az,
		Attributes:         f.attrs,
		CPU:                f.cpu,
		Memory:             f.memory,
		ReservedMemory:     f.reserved,
		GPUs:               gpus,
		PullBehavior:       agent.PullBehavior(f.pull),
		DefaultStopTimeout: f.stopTimeout,
		TaskCleanupWait:    f.cleanupWait,
		AllowPrivileged:    f.allowPrivileged,
		MetadataAddress:    f.metadataAddress,
		Version:            version,
		Logger:             log,
	})
	if err != nil {
		return fail(2, "%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stdout, "Gantry agent %s joining cluster %s at %s (runtime %s, data in %s)\n", version, f.cluster, f.server, f.runtime, dataDir)
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
		rt, err := docker.New(docker.Options{Logger: log, Policy: docker.Policy{AllowPrivileged: f.allowPrivileged}})
		if err != nil {
			return nil, nil, err
		}
		return rt, func() { rt.Close() }, nil
	case "sim":
		return sim.New(sim.Options{AllowPrivileged: f.allowPrivileged, StartDelay: f.simStartDelay, GPUs: gpus}), func() {}, nil
	}
	return nil, nil, fmt.Errorf("--runtime %q: docker or sim", f.runtime)
}
