// Command placement measures the scheduler alone (scheduler.Place, no etcd,
// no HTTP): a cluster of simulated container instances in three zones, and
// tasks placed with binpack, with ECS's service default spread (zone, then
// instance), with constraints, and, as the simple peer in the same run,
// first fit (no strategy).
//
// Two shapes: "one call" places all the tasks in one Place call, as a
// service scaling up by that many would; "calls of 10" places them ten at
// a time, as RunTask (count 10) does, each call on a fresh copy of the
// cluster with the previous calls' tasks accounted for.
//
// Each case runs -runs times (alternating with the others, so background
// load hits them alike) and the median is reported. Results and the
// commands are in docs/benchmarks.md:
//
//	go run ./bench/scheduler/placement
//	go run ./bench/scheduler/placement -instances 5000 -tasks 600,10000 -runs 7 -cpuprofile /tmp/place.prof
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/scheduler"
	"github.com/gantry-dev/gantry/scheduler/query"
)

var (
	instances  = flag.Int("instances", 5000, "container instances")
	taskCounts = flag.String("tasks", "600,10000", "tasks to place per case, comma separated")
	runs       = flag.Int("runs", 5, "runs of each case; the median is reported")
	cpuprofile = flag.String("cpuprofile", "", "write a CPU profile of all runs here")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	var counts []int
	for _, s := range strings.Split(*taskCounts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			log.Fatalf("-tasks: %q", s)
		}
		counts = append(counts, n)
	}
	cluster := makeCluster(*instances)
	t2, err := query.Parse("attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone in [us-east-1a, us-east-1b]")
	if err != nil {
		log.Fatal(err)
	}
	demand := scheduler.Demand{Resources: scheduler.Resources{CPU: 128, Memory: 256}, Group: "service:web"}
	cases := []struct {
		name string
		task scheduler.Task
	}{
		{"first fit (peer)", scheduler.Task{Demand: demand}},
		{"binpack(memory)", scheduler.Task{Demand: demand, Strategies: []scheduler.Strategy{scheduler.Binpack{Field: scheduler.FieldMemory}}}},
		{"spread(zone), spread(instanceId)", scheduler.Task{Demand: demand, Strategies: scheduler.DefaultStrategies}},
		{"spread(zone), binpack(memory) + memberOf", scheduler.Task{Demand: demand,
			Strategies:  []scheduler.Strategy{scheduler.DefaultStrategies[0], scheduler.Binpack{Field: scheduler.FieldMemory}},
			Constraints: []scheduler.Filter{scheduler.MemberOf{Expr: t2}}}},
	}
	shapes := []struct {
		name  string
		batch int // tasks per Place call; 0: all in one
	}{{"one call", 0}, {"calls of 10", 10}}

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	type key struct{ c, s, n int }
	results := map[key][]time.Duration{}
	placed := map[key]int{}
	for range *runs {
		for ci := range cases {
			for si, sh := range shapes {
				for _, n := range counts {
					runtime.GC()
					d, got := run(cluster, &cases[ci].task, n, sh.batch)
					k := key{ci, si, n}
					results[k] = append(results[k], d)
					placed[k] = got
				}
			}
		}
	}

	fmt.Printf("scheduler.Place, %d instances (3 zones, 2048 CPU / 4096 MiB each), tasks of 128 CPU / 256 MiB; median of %d runs; GOMAXPROCS %d\n\n",
		*instances, *runs, runtime.GOMAXPROCS(0))
	fmt.Printf("%-42s %-12s %7s %10s %14s %12s\n", "strategy", "shape", "tasks", "median", "tasks/s", "µs/task")
	for ci, c := range cases {
		for si, sh := range shapes {
			for _, n := range counts {
				k := key{ci, si, n}
				d := median(results[k])
				note := ""
				if placed[k] != n {
					note = fmt.Sprintf("  (%d placed)", placed[k])
				}
				fmt.Printf("%-42s %-12s %7d %10s %14.0f %12.2f%s\n", c.name, sh.name, n, d.Round(time.Microsecond),
					float64(placed[k])/d.Seconds(), float64(d.Microseconds())/float64(max(placed[k], 1)), note)
			}
		}
	}
}

// run places n tasks on a copy of cluster, batch at a time (0: all at
// once), applying each call's placements before the next, and returns the
// time spent in Place (the copies are not timed) and how many were placed.
func run(cluster []scheduler.Node, t *scheduler.Task, n, batch int) (time.Duration, int) {
	nodes := slices.Clone(cluster)
	if batch == 0 {
		batch = n
	}
	var spent time.Duration
	placed := 0
	for placed < n {
		start := time.Now()
		p := scheduler.Place(nodes, t, min(batch, n-placed))
		spent += time.Since(start)
		if len(p.Placements) == 0 {
			break
		}
		for _, i := range p.Placements {
			nodes[i].Take(&t.Demand)
		}
		placed += len(p.Placements)
	}
	return spent, placed
}

// makeCluster builds n instances as gantry agents register them: zones
// round robin, instance types mixed, the ECS agent's reserved ports, and
// the attributes an agent reports.
func makeCluster(n int) []scheduler.Node {
	zones := []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	types := []string{"t2.medium", "t2.large", "m5.large", "c5.xlarge"}
	nodes := make([]scheduler.Node, n)
	for i := range nodes {
		ci := &ecs.ContainerInstance{
			ContainerInstanceARN: fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:container-instance/bench/%032x", i),
			EC2InstanceID:        fmt.Sprintf("i-%017x", i),
			Status:               ecs.InstanceStatusActive,
			VersionInfo:          &ecs.VersionInfo{AgentVersion: "0.1.0"},
			RegisteredResources: []ecs.Resource{
				ecs.IntegerResource(ecs.ResourceCPU, 2048), ecs.IntegerResource(ecs.ResourceMemory, 4096),
				ecs.PortsResource(ecs.ResourcePorts, ecs.ReservedPorts), ecs.PortsResource(ecs.ResourcePortsUDP, nil),
			},
			Attributes: []ecs.Attribute{
				{Name: ecs.AttributeAvailabilityZone, Value: zones[i%len(zones)]},
				{Name: "ecs.instance-type", Value: types[i%len(types)]},
				{Name: "ecs.os-type", Value: "linux"}, {Name: "ecs.cpu-architecture", Value: "x86_64"},
				{Name: "com.amazonaws.ecs.capability.docker-remote-api.1.44"}, {Name: "com.amazonaws.ecs.capability.logging-driver.json-file"},
				{Name: "ecs.capability.container-health-check"}, {Name: "ecs.capability.task-cpu-mem-limit"},
			},
		}
		nodes[i] = scheduler.NewNode(ci, true, nil)
	}
	return nodes
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
