package sim_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/agent/runtime"
	"github.com/gantry-dev/gantry/agent/runtime/runtimetest"
	"github.com/gantry-dev/gantry/agent/runtime/sim"
)

const image = "gantry-testapp:latest"

func TestConformance(t *testing.T) {
	t.Parallel()
	rt := sim.New(sim.Options{Images: []string{image}, StartDelay: 5 * time.Millisecond, HealthyAfter: 100 * time.Millisecond})
	runtimetest.Run(t, runtimetest.Config{Runtime: rt, Image: image})
}

func TestControls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rt := sim.New(sim.Options{Images: []string{image}})
	evs, errs := rt.Events(ctx, nil)
	spec := runtime.ContainerSpec{Image: image, Command: []string{"serve"},
		HealthCheck: &runtime.HealthCheck{Test: []string{"CMD", "/testapp", "healthcheck", "http://127.0.0.1:8080/health"}}}

	id, _ := rt.Create(ctx, spec)
	if err := rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if e := runtimetest.NextEvent(t, evs, errs, id, runtime.EventHealth); e.Health != runtime.HealthHealthy {
		t.Fatalf("health event %+v", e)
	}
	if err := rt.SetHealth(id, runtime.HealthUnhealthy); err != nil {
		t.Fatal(err)
	}
	if e := runtimetest.NextEvent(t, evs, errs, id, runtime.EventHealth); e.Health != runtime.HealthUnhealthy {
		t.Fatalf("health event %+v", e)
	}
	if err := rt.Exit(id, 42); err != nil {
		t.Fatal(err)
	}
	if e := runtimetest.NextEvent(t, evs, errs, id, runtime.EventDie); e.ExitCode != 42 {
		t.Fatalf("die event %+v", e)
	}
	if err := rt.Exit(id, 1); err == nil {
		t.Error("Exit of an exited container succeeded")
	}

	// Starting an exited container runs it again, as the engine does.
	if err := rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := rt.OOM(id); err != nil {
		t.Fatal(err)
	}
	runtimetest.NextEvent(t, evs, errs, id, runtime.EventOOM)
	if s, _ := rt.Inspect(ctx, id); !s.OOMKilled || s.ExitCode != 137 || s.State != runtime.StateExited {
		t.Fatalf("after OOM: %+v", s)
	}
	if err := rt.SetHealth("nope", runtime.HealthHealthy); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("SetHealth(nope) = %v", err)
	}
}

func TestPull(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	denied := errors.New("pull access denied")
	rt := sim.New(sim.Options{PullFn: func(ctx context.Context, image string) error {
		if image == "private:1" {
			return denied
		}
		return nil
	}})
	if err := rt.Pull(ctx, "private:1", nil); !errors.Is(err, denied) {
		t.Errorf("Pull(private) = %v", err)
	}
	if ok, _ := rt.HasImage(ctx, "private:1"); ok {
		t.Error("a failed pull stored the image")
	}
	if err := rt.Pull(ctx, "public:1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Create(ctx, runtime.ContainerSpec{Image: "public:1"}); err != nil {
		t.Errorf("create from a pulled image: %v", err)
	}
}

func TestStaticHostPortConflict(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rt := sim.New(sim.Options{Images: []string{image}})
	spec := runtime.ContainerSpec{Image: image, Ports: []runtime.PortMapping{{ContainerPort: 80, HostPort: 8080}}}
	a, _ := rt.Create(ctx, spec)
	b, _ := rt.Create(ctx, spec)
	if err := rt.Start(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx, b); err == nil {
		t.Fatal("two containers started on host port 8080")
	}
	if s, _ := rt.Inspect(ctx, b); s.State != runtime.StateCreated || s.Error == "" {
		t.Errorf("after a failed start: %+v", s)
	}
	rt.Stop(ctx, a, time.Second)
	if err := rt.Start(ctx, b); err != nil {
		t.Errorf("start after the port was freed: %v", err)
	}
}

// TestGPUs: a container may ask for the simulated host's GPUs only.
func TestGPUs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rt := sim.New(sim.Options{Images: []string{image}, GPUs: []string{"g0", "g1"}})
	if _, err := rt.Create(ctx, runtime.ContainerSpec{Image: image, GPUs: []string{"g1"}}); err != nil {
		t.Errorf("a host GPU: %v", err)
	}
	if _, err := rt.Create(ctx, runtime.ContainerSpec{Image: image, GPUs: []string{"g2"}}); !errors.Is(err, runtime.ErrUnsupported) {
		t.Errorf("a GPU the host lacks: %v", err)
	}
}

func TestStartHonoursContext(t *testing.T) {
	t.Parallel()
	rt := sim.New(sim.Options{Images: []string{image}, StartDelay: time.Hour})
	id, _ := rt.Create(context.Background(), runtime.ContainerSpec{Image: image})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := rt.Start(ctx, id); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start = %v", err)
	}
	if s, _ := rt.Inspect(context.Background(), id); s.State != runtime.StateCreated {
		t.Errorf("state %s", s.State)
	}
}

// TestScale runs 2,000 containers with dynamic ports at once, as a scale
// test's agents would, and stops them all.
func TestScale(t *testing.T) {
	t.Parallel()
	const n = 2000
	ctx := context.Background()
	rt := sim.New(sim.Options{Images: []string{image}, StartDelay: time.Millisecond})
	evs, errs := rt.Events(ctx, map[string]string{"scale": "yes"})
	start := time.Now()
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			spec := runtime.ContainerSpec{Name: fmt.Sprintf("c%d", i), Image: image, Command: []string{"serve"},
				Labels: map[string]string{"scale": "yes"}, Ports: []runtime.PortMapping{{ContainerPort: 8080}}}
			id, err := rt.Create(ctx, spec)
			if err == nil {
				err = rt.Start(ctx, id)
			}
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	started := time.Since(start)

	list, _ := rt.List(ctx, map[string]string{"scale": "yes"})
	ports := map[uint16]bool{}
	for _, s := range list {
		if s.State == runtime.StateRunning && len(s.Ports) == 1 {
			ports[s.Ports[0].HostPort] = true
		}
	}
	if len(list) != n || len(ports) != n {
		t.Fatalf("%d listed, %d distinct host ports; want %d", len(list), len(ports), n)
	}
	for range n {
		select {
		case e := <-evs:
			if e.Type != runtime.EventStart {
				t.Fatalf("event %+v", e)
			}
		case err := <-errs:
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		wg.Go(func() { rt.Stop(ctx, id, time.Second) })
	}
	wg.Wait()
	t.Logf("%d containers created and started in %v, stopped %v later", n, started, time.Since(start)-started)
}
