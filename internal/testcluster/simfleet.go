package testcluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/agent"
	"github.com/gantry-dev/gantry/agent/runtime/sim"
)

// SimFleet is many simulated container instances in one process: each is
// a real node agent (agent.New and Run, the code `gantry agent --runtime
// sim` runs) on its own simulated runtime and data directory, talking to
// the control plane over HTTP like any agent. Benchmarks and scale tests
// use it where starting a thousand `gantry agent` processes would measure
// process start-up instead of Gantry.
type SimFleet struct {
	Agents []*agent.Agent

	cancel context.CancelFunc
	wg     sync.WaitGroup
	dir    string
	owned  bool // dir was created here
	mu     sync.Mutex
	errs   []error
}

// SimFleetConfig describes a fleet.
type SimFleetConfig struct {
	Server, Cluster, Token string // as gantry agent's --server, --cluster, --token

	N     int      // agents
	Zones []string // availability zones, round robin; default us-east-1a, us-east-1b, us-east-1c
	// CPU and Memory registered by each agent; default 2048 and 4096, the
	// issue's `gantry agent --cpu 2048 --memory 4096`.
	CPU, Memory int
	Attributes  map[string]string // custom attributes for every agent
	// StartDelay is how long each simulated container takes to start.
	StartDelay time.Duration
	// DataDir holds one directory per agent; default a temporary directory
	// removed by Close.
	DataDir string
	// Logger for the agents; default discards below warnings.
	Logger *slog.Logger
	// HTTPClient is shared by the agents; default one whose pool keeps a
	// connection per agent, so heartbeats do not churn through ports.
	HTTPClient *http.Client
	// Configure, if set, edits agent i's configuration before it starts.
	Configure func(i int, c *agent.Config)
}

// StartSimFleet starts cfg.N agents and returns when every one has
// registered (or ctx ends). Close stops them.
func StartSimFleet(ctx context.Context, cfg SimFleetConfig) (*SimFleet, error) {
	if cfg.N < 1 {
		return nil, errors.New("sim fleet: N must be at least 1")
	}
	if len(cfg.Zones) == 0 {
		cfg.Zones = []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	}
	cfg.CPU, cfg.Memory = cmp.Or(cfg.CPU, 2048), cmp.Or(cfg.Memory, 4096)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if cfg.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = 4 * cfg.N
		tr.MaxIdleConnsPerHost = 4 * cfg.N
		cfg.HTTPClient = &http.Client{Transport: tr}
	}
	f := &SimFleet{dir: cfg.DataDir}
	if f.dir == "" {
		dir, err := os.MkdirTemp("", "gantry-simfleet-")
		if err != nil {
			return nil, err
		}
		f.dir, f.owned = dir, true
	}
	runCtx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	for i := range cfg.N {
		ac := agent.Config{
			Server: cfg.Server, Cluster: cfg.Cluster, Token: cfg.Token,
			DataDir:          filepath.Join(f.dir, fmt.Sprintf("agent-%05d", i)),
			Runtime:          sim.New(sim.Options{StartDelay: cfg.StartDelay}),
			AvailabilityZone: cfg.Zones[i%len(cfg.Zones)],
			Attributes:       cfg.Attributes,
			CPU:              cfg.CPU, Memory: cfg.Memory,
			Version:    "simfleet",
			HTTPClient: cfg.HTTPClient,
			Logger:     cfg.Logger.With("agent", i),
		}
		if cfg.Configure != nil {
			cfg.Configure(i, &ac)
		}
		a, err := agent.New(ac)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.Agents = append(f.Agents, a)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := a.Run(runCtx); err != nil && runCtx.Err() == nil {
				f.mu.Lock()
				f.errs = append(f.errs, fmt.Errorf("agent %d: %w", i, err))
				f.mu.Unlock()
			}
		}()
	}
	for {
		registered := 0
		for _, a := range f.Agents {
			if a.ContainerInstanceARN() != "" {
				registered++
			}
		}
		if registered == len(f.Agents) {
			return f, nil
		}
		if err := f.Err(); err != nil {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("sim fleet: %d of %d agents registered: %w", registered, len(f.Agents), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Err is the first error an agent stopped with, if any.
func (f *SimFleet) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return errors.Join(f.errs...)
}

// Close stops every agent (their simulated containers go with them) and
// removes the data directory it created.
func (f *SimFleet) Close() {
	f.cancel()
	f.wg.Wait()
	if f.owned {
		os.RemoveAll(f.dir)
	}
}
