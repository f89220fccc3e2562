package sim

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/agent/runtime"
)

// simContainer is one simulated container. Its fields are guarded by the
// Runtime's mutex.
type simContainer struct {
	id       string
	spec     runtime.ContainerSpec
	prog     program
	state    runtime.State
	starting bool // Start is waiting out StartDelay
	gen      int  // bumped on start and removal; timers of older generations do nothing

	created, started, finished time.Time
	exitCode                   int
	oom                        bool
	err                        string
	health                     runtime.HealthStatus
	ports                      []runtime.PortBinding

	lines   []logLine
	changed chan struct{} // closed and replaced when lines or state change
}

type logLine struct {
	at     time.Time
	stderr bool
	text   string
}

// program is what a container's testapp command line makes it do.
type program struct {
	exits      bool          // exits by itself
	exitAfter  time.Duration // when
	exitCode   int           // with what
	oom        bool          // allocates beyond its memory limit
	ignoreTerm bool          // --ignore-sigterm
	unhealthy  bool          // $TESTAPP_UNHEALTHY=1
	output     []string      // what it prints when it starts
	stderr     string        // what it prints on stderr, then exits 1
}

// parse interprets spec's command line as testapp would run it.
func parse(spec runtime.ContainerSpec) program {
	args := append(slices.Clone(spec.Entrypoint), spec.Command...)
	if len(args) > 0 && strings.HasSuffix(args[0], "testapp") {
		args = args[1:]
	}
	p := program{
		ignoreTerm: spec.Env["TESTAPP_IGNORE_SIGTERM"] == "1",
		unhealthy:  spec.Env["TESTAPP_UNHEALTHY"] == "1",
	}
	var pos []string
	flags := map[string]string{"port": spec.Env["PORT"]}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		if name == "ignore-sigterm" {
			p.ignoreTerm = true
		} else if k, v, ok := strings.Cut(name, "="); ok {
			flags[k] = v
		} else if i+1 < len(args) {
			flags[name] = args[i+1]
			i++
		}
	}
	arg := func(i int) string {
		if i < len(pos) {
			return pos[i]
		}
		return ""
	}
	switch arg(0) {
	case "serve":
		port := cmp.Or(flags["port"], "8080")
		p.output = []string{"serving on :" + port}
	case "sleep":
		d := parseDuration(arg(1))
		p.output = []string{fmt.Sprintf("sleeping for %v", d)}
		p.exits, p.exitAfter = true, d
	case "exit":
		code, _ := strconv.Atoi(arg(1))
		p.exits, p.exitAfter, p.exitCode = true, parseDuration(flags["after"]), code
		p.output = []string{fmt.Sprintf("exiting with code %d", code)}
	case "print-env":
		for _, k := range slices.Sorted(maps.Keys(spec.Env)) {
			p.output = append(p.output, k+"="+spec.Env[k])
		}
		p.exits = true
	case "alloc":
		mib, _ := strconv.ParseInt(arg(1), 10, 64)
		p.oom = spec.MemoryLimit > 0 && mib<<20 > spec.MemoryLimit
		p.output = []string{"allocated 1 MiB"}
	case "cat", "write", "metadata", "healthcheck":
		p.exits = true // the sim has no files or network: it succeeds
	case "":
	default:
		p.stderr = fmt.Sprintf("testapp: unknown mode %q", arg(0))
		p.exits, p.exitCode = true, 2
	}
	return p
}

// run starts the container's behaviour. r.mu is held.
func (r *Runtime) run(c *simContainer) {
	for _, l := range c.prog.output {
		c.log(l)
	}
	switch {
	case c.prog.stderr != "":
		c.lines = append(c.lines, logLine{at: time.Now(), stderr: true, text: c.prog.stderr})
		r.after(c, 0, func() { r.exit(c, c.prog.exitCode, false) })
	case c.prog.oom:
		r.after(c, 0, func() { r.exit(c, 137, true) })
	case c.prog.exits:
		r.after(c, c.prog.exitAfter, func() { r.exit(c, c.prog.exitCode, false) })
	}
	if c.health == runtime.HealthStarting {
		h := runtime.HealthHealthy
		if c.prog.unhealthy {
			h = runtime.HealthUnhealthy
		}
		r.after(c, r.opts.HealthyAfter, func() { r.setHealth(c, h) })
	}
}

// after runs f after d, with r.mu held, unless the container has since been
// restarted, removed or has exited.
func (r *Runtime) after(c *simContainer, d time.Duration, f func()) {
	gen := c.gen
	time.AfterFunc(d, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if c.gen == gen && c.state == runtime.StateRunning && r.containers[c.id] == c {
			f()
		}
	})
}

// exit ends the container's process. r.mu is held.
func (r *Runtime) exit(c *simContainer, code int, oom bool) {
	c.state, c.exitCode, c.oom, c.finished = runtime.StateExited, code, oom, time.Now()
	r.release(c)
	if oom {
		r.emit(c, runtime.Event{Type: runtime.EventOOM})
	}
	r.emit(c, runtime.Event{Type: runtime.EventDie, ExitCode: code})
	c.notify()
}

// setHealth changes the container's health. r.mu is held.
func (r *Runtime) setHealth(c *simContainer, h runtime.HealthStatus) {
	if c.health != h {
		c.health = h
		r.emit(c, runtime.Event{Type: runtime.EventHealth, Health: h})
	}
}

func (c *simContainer) log(text string) {
	c.lines = append(c.lines, logLine{at: time.Now(), text: text})
	c.notify()
}

func (c *simContainer) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *simContainer) status() runtime.ContainerStatus {
	sum := sha256.Sum256([]byte(c.spec.Image))
	s := runtime.ContainerStatus{
		ID:         c.id,
		Name:       c.spec.Name,
		Image:      c.spec.Image,
		ImageID:    "sha256:" + hex.EncodeToString(sum[:]),
		Labels:     maps.Clone(c.spec.Labels),
		State:      c.state,
		ExitCode:   c.exitCode,
		OOMKilled:  c.oom,
		Error:      c.err,
		CreatedAt:  c.created,
		StartedAt:  c.started,
		FinishedAt: c.finished,
		Health:     c.health,
		Ports:      slices.Clone(c.ports),
	}
	if c.health != runtime.HealthNone && c.health != runtime.HealthStarting {
		s.HealthOutput = "sim: " + string(c.health)
	}
	if c.state == runtime.StateRunning {
		mode := string(c.spec.NetworkMode)
		addr := runtime.NetworkAddress{Network: cmp.Or(mode, "bridge")}
		if addr.Network == "bridge" {
			n, _ := strconv.ParseUint(c.id[:4], 16, 16)
			addr.IPv4 = fmt.Sprintf("172.17.%d.%d", n>>8, n&0xff) // fake, stable
		}
		s.Networks = []runtime.NetworkAddress{addr}
	}
	return s
}

func parseDuration(s string) time.Duration {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second
	}
	d, _ := time.ParseDuration(s)
	return d
}
