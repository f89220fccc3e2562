package scheduler

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/scheduler/query"
)

func mustParse(t testing.TB, expr string) *query.Expr {
	t.Helper()
	e, err := query.Parse(expr)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// node is a connected ACTIVE instance named name in zone az with cpu and
// memory left, running tasks of the given groups, with extra attributes as
// name=value pairs.
func node(name, az string, cpu, mem int64, groups map[string]int, attrs ...string) Node {
	n := Node{
		ARN: name, Status: ecs.InstanceStatusActive, Connected: true,
		Attributes: map[string]string{ecs.AttributeAvailabilityZone: az},
		Groups:     maps.Clone(groups), CPU: cpu, Memory: mem,
		Ports: map[int32]bool{22: true}, PortsUDP: map[int32]bool{},
	}
	if n.Groups == nil {
		n.Groups = map[string]int{}
	}
	for _, g := range groups {
		n.RunningTasks += g
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		n.Attributes[attrs[i]] = attrs[i+1]
	}
	return n
}

// names maps placements to node names.
func names(nodes []Node, p Plan) []string {
	out := make([]string, len(p.Placements))
	for i, ni := range p.Placements {
		out[i] = nodes[ni].ARN
	}
	return out
}

// TestPlaceStrategies is a table of strategies over small clusters; want
// lists the node of each task in order.
func TestPlaceStrategies(t *testing.T) {
	web := map[string]int{"family:web": 1}
	azSpread := Spread{Field: "attribute:" + ecs.AttributeAvailabilityZone}
	for _, tc := range []struct {
		name       string
		nodes      []Node
		demand     Demand
		strategies []Strategy
		count      int
		want       []string
	}{
		{"BinpackMemoryLeastLeftThatFits",
			[]Node{node("a", "z1", 1024, 1000, nil), node("b", "z1", 1024, 300, nil), node("c", "z1", 1024, 50, nil)},
			Demand{Resources: Resources{Memory: 100}}, []Strategy{Binpack{FieldMemory}}, 5,
			[]string{"b", "b", "b", "a", "a"}},
		{"BinpackCPU",
			[]Node{node("a", "z1", 2048, 1000, nil), node("b", "z1", 1024, 1000, nil)},
			Demand{Resources: Resources{CPU: 512}}, []Strategy{Binpack{FieldCPU}}, 3,
			[]string{"b", "b", "a"}},
		{"BinpackTieGoesToFirst",
			[]Node{node("a", "z1", 1024, 500, nil), node("b", "z1", 1024, 500, nil)},
			Demand{Resources: Resources{Memory: 100}}, []Strategy{Binpack{FieldMemory}}, 2,
			[]string{"a", "a"}},
		{"SpreadInstancesCountsTheGroupsTasks",
			[]Node{node("a", "z1", 4096, 4096, web), node("b", "z1", 4096, 4096, nil), node("c", "z1", 4096, 4096, map[string]int{"family:other": 5})},
			Demand{Resources: Resources{Memory: 10}, Group: "family:web"}, []Strategy{Spread{FieldInstanceID}}, 5,
			[]string{"b", "c", "a", "b", "c"}},
		{"SpreadZonesThenInstances",
			// z1 has three instances, z2 one, z3 two: tasks alternate zones
			// first, instances within a zone second.
			[]Node{node("a1", "z1", 4096, 4096, nil), node("a2", "z1", 4096, 4096, nil), node("a3", "z1", 4096, 4096, nil),
				node("b1", "z2", 4096, 4096, nil), node("c1", "z3", 4096, 4096, nil), node("c2", "z3", 4096, 4096, nil)},
			Demand{Resources: Resources{Memory: 10}, Group: "g"}, DefaultStrategies, 7,
			[]string{"a1", "b1", "c1", "a2", "c2", "b1", "a3"}},
		{"SpreadZonesCountsRunningTasks",
			[]Node{node("a1", "z1", 4096, 4096, map[string]int{"g": 2}), node("b1", "z2", 4096, 4096, nil)},
			Demand{Resources: Resources{Memory: 10}, Group: "g"}, []Strategy{azSpread}, 3,
			[]string{"b1", "b1", "a1"}},
		{"SpreadZonesThenBinpack",
			[]Node{node("a1", "z1", 4096, 4000, nil), node("a2", "z1", 4096, 1000, nil), node("b1", "z2", 4096, 4000, nil), node("b2", "z2", 4096, 2000, nil)},
			Demand{Resources: Resources{Memory: 100}, Group: "g"}, []Strategy{azSpread, Binpack{FieldMemory}}, 4,
			[]string{"a2", "b2", "a2", "b2"}},
		{"SpreadIsBestEffort",
			// z2 is full: the tasks all go to z1 rather than fail.
			[]Node{node("a1", "z1", 4096, 4096, nil), node("b1", "z2", 4096, 0, nil)},
			Demand{Resources: Resources{Memory: 100}, Group: "g"}, []Strategy{azSpread}, 3,
			[]string{"a1", "a1", "a1"}},
		{"SpreadOnCustomAttributeMissingIsOneValue",
			[]Node{node("a", "z1", 4096, 4096, nil, "rack", "r1"), node("b", "z1", 4096, 4096, nil, "rack", "r2"), node("c", "z1", 4096, 4096, nil), node("d", "z1", 4096, 4096, nil)},
			Demand{Resources: Resources{Memory: 10}, Group: "g"}, []Strategy{Spread{"attribute:rack"}, Spread{FieldInstanceID}}, 6,
			[]string{"a", "b", "c", "d", "a", "b"}},
		{"SpreadThenRandomOnlyAmongTies",
			[]Node{node("a", "z1", 4096, 4096, map[string]int{"g": 1}), node("b", "z1", 4096, 4096, nil)},
			Demand{Resources: Resources{Memory: 10}, Group: "g"}, []Strategy{Spread{FieldInstanceID}, Random{}}, 1,
			[]string{"b"}},
		{"NoStrategyIsFirstFit",
			[]Node{node("a", "z1", 4096, 150, nil), node("b", "z1", 4096, 4096, nil)},
			Demand{Resources: Resources{Memory: 100}}, nil, 3,
			[]string{"a", "b", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Place(tc.nodes, &Task{Demand: tc.demand, Strategies: tc.strategies}, tc.count)
			if got := names(tc.nodes, p); !slices.Equal(got, tc.want) || p.Failures != nil {
				t.Errorf("got %v %v, want %v", got, p.Failures, tc.want)
			}
		})
	}
}

// TestPlaceConstraints: constraints are binding and explained per node.
func TestPlaceConstraints(t *testing.T) {
	web := map[string]int{"family:web": 1}
	nodes := []Node{
		node("a", "us-east-1a", 4096, 4096, web, "ecs.instance-type", "t2.small"),
		node("b", "us-east-1b", 4096, 4096, nil, "ecs.instance-type", "m5.large"),
		node("c", "us-east-1c", 4096, 4096, map[string]int{"database": 1}, "ecs.instance-type", "t2.medium"),
		node("d", "us-east-1a", 64, 64, nil, "ecs.instance-type", "t2.micro"),
	}
	memberOf := func(expr string) Filter { return MemberOf{mustParse(t, expr)} }
	for _, tc := range []struct {
		name        string
		constraints []Filter
		count       int
		want        []string
		failures    []Failure
	}{
		{"DistinctInstanceSkipsInstancesRunningTheGroup", []Filter{DistinctInstance{}}, 2, []string{"b", "c"}, nil},
		{"DistinctInstanceFailsWhenEveryInstanceHasOne", []Filter{DistinctInstance{}}, 4, []string{"b", "c"},
			[]Failure{{"a", ReasonDistinctInstance}, {"b", ReasonDistinctInstance}, {"c", ReasonDistinctInstance}, {"d", "RESOURCE:MEMORY"}}},
		// a's zone already runs a web task, so the zone spread goes to c first.
		{"MemberOfInstanceType", []Filter{memberOf("attribute:ecs.instance-type =~ t2.*")}, 2, []string{"c", "a"}, nil},
		{"MemberOfZones", []Filter{memberOf("attribute:ecs.availability-zone in [us-east-1b, us-east-1c]")}, 2, []string{"b", "c"}, nil},
		{"TaskAffinity", []Filter{memberOf("task:group == database")}, 1, []string{"c"}, nil},
		{"TaskAntiAffinity", []Filter{memberOf("not(task:group == database)")}, 1, []string{"b"}, nil},
		{"ConstraintsTogether", []Filter{memberOf("attribute:ecs.instance-type =~ t2.*"), DistinctInstance{}}, 1, []string{"c"}, nil},
		{"ConstraintsExcludeEverything", []Filter{memberOf("attribute:ecs.instance-type == g2.2xlarge")}, 1, nil,
			[]Failure{{"a", ReasonMemberOf}, {"b", ReasonMemberOf}, {"c", ReasonMemberOf}, {"d", "RESOURCE:MEMORY"}}},
		{"RunningTasksCount", []Filter{memberOf("runningTasksCount == 0")}, 2, []string{"b"},
			[]Failure{{"a", ReasonMemberOf}, {"b", ReasonMemberOf}, {"c", ReasonMemberOf}, {"d", "RESOURCE:MEMORY"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task := &Task{Demand: Demand{Resources: Resources{Memory: 100}, Group: "family:web"}, Constraints: tc.constraints,
				Strategies: DefaultStrategies}
			p := Place(nodes, task, tc.count)
			if got := names(nodes, p); !slices.Equal(got, tc.want) || !slices.Equal(p.Failures, tc.failures) {
				t.Errorf("got %v %v, want %v %v", got, p.Failures, tc.want, tc.failures)
			}
		})
	}
	if nodes[0].Groups["family:web"] != 1 || nodes[1].Groups["family:web"] != 0 || nodes[1].RunningTasks != 0 {
		t.Errorf("Place modified its input: %+v %+v", nodes[0], nodes[1])
	}
}

func TestPlaceRandom(t *testing.T) {
	var nodes []Node
	for i := range 8 {
		nodes = append(nodes, node(fmt.Sprint(i), "z1", 4096, 4096, nil))
	}
	nodes[3].Status = ecs.InstanceStatusDraining
	seen := map[string]int{}
	for seed := range uint64(50) {
		task := &Task{Demand: Demand{Resources: Resources{Memory: 1}}, Strategies: []Strategy{Random{}, Binpack{FieldMemory}}, Rand: rand.New(rand.NewPCG(seed, 0))}
		for _, n := range names(nodes, Place(nodes, task, 4)) {
			seen[n]++
		}
	}
	if len(seen) != 7 || seen["3"] != 0 {
		t.Errorf("random placed on %v: want every ACTIVE node and never the DRAINING one", seen)
	}
	// Without a Rand the draw is repeatable.
	a := Place(nodes, &Task{Strategies: []Strategy{Random{}}}, 5)
	b := Place(nodes, &Task{Strategies: []Strategy{Random{}}}, 5)
	if !slices.Equal(a.Placements, b.Placements) {
		t.Errorf("unseeded random differs: %v %v", a.Placements, b.Placements)
	}
}

// TestPlaceProperties places random tasks with random strategies and
// constraints on random clusters, and checks what must always hold: no
// node goes over its CPU, memory or ports; every placement satisfies the
// filters and constraints as they stood when it was made (distinctInstance
// is never violated); Place agrees with a naive reference implementation;
// and a spread over identical instances is even within one.
func TestPlaceProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	zones := []string{"z1", "z2", "z3"}
	groups := []string{"g1", "g2", "g3"}
	fields := []Strategy{Binpack{FieldCPU}, Binpack{FieldMemory}, Spread{FieldInstanceID},
		Spread{"attribute:" + ecs.AttributeAvailabilityZone}, Spread{"attribute:rack"}}
	exprs := []string{"attribute:rack in [r1, r2]", "not(task:group == g2)", "runningTasksCount < 3", "task:group == g1 or attribute:rack !exists"}
	for iter := range 400 {
		var nodes []Node
		for i := range 1 + rng.IntN(12) {
			running := map[string]int{}
			for range rng.IntN(3) {
				running[groups[rng.IntN(len(groups))]]++
			}
			n := node(fmt.Sprint("n", i), zones[rng.IntN(len(zones))], int64(rng.IntN(4096)), int64(rng.IntN(4096)), running)
			if rng.IntN(3) > 0 {
				n.Attributes["rack"] = fmt.Sprint("r", rng.IntN(3))
			}
			if rng.IntN(10) == 0 {
				n.Status = ecs.InstanceStatusDraining
			}
			if rng.IntN(10) == 0 {
				n.Connected = false
			}
			if rng.IntN(4) == 0 {
				n.Ports[8080] = true
			}
			for g := range rng.IntN(4) {
				n.GPUs = append(n.GPUs, fmt.Sprint(n.ARN, "-gpu", g))
			}
			nodes = append(nodes, n)
		}
		task := &Task{Demand: Demand{Resources: Resources{CPU: int64(rng.IntN(600)), Memory: int64(1 + rng.IntN(600))}, Group: groups[rng.IntN(len(groups))]}}
		if rng.IntN(3) == 0 {
			task.Ports = []int32{8080}
		}
		if rng.IntN(3) == 0 {
			task.GPUs = int64(1 + rng.IntN(2))
		}
		for range rng.IntN(3) {
			task.Strategies = append(task.Strategies, fields[rng.IntN(len(fields))])
		}
		if rng.IntN(2) == 0 {
			task.Constraints = append(task.Constraints, DistinctInstance{})
		}
		if rng.IntN(2) == 0 {
			task.Constraints = append(task.Constraints, MemberOf{mustParse(t, exprs[rng.IntN(len(exprs))])})
		}
		count := 1 + rng.IntN(10)
		p := Place(nodes, task, count)
		want := referencePlace(nodes, task, count)
		if !slices.Equal(p.Placements, want) {
			t.Fatalf("iteration %d: Place %v, reference %v (strategies %v)", iter, p.Placements, want, task.Strategies)
		}
		if len(p.Placements) < count && len(p.Failures) != len(nodes) {
			t.Fatalf("iteration %d: %d of %d placed but %d failures for %d nodes", iter, len(p.Placements), count, len(p.Failures), len(nodes))
		}
		// Replay the placements, checking each against the state it saw.
		work := slices.Clone(nodes)
		filters := append(slices.Clone(DefaultFilters), task.Constraints...)
		given := map[string]bool{}
		for _, i := range p.Placements {
			if reason, ok := Check(filters, &task.Demand, &work[i]); !ok {
				t.Fatalf("iteration %d: placed on %s, which fails %s", iter, work[i].ARN, reason)
			}
			h := work[i].Take(&task.Demand)
			for _, g := range h.GPUIDs {
				if given[g] || !slices.Contains(nodes[i].GPUs, g) {
					t.Fatalf("iteration %d: GPU %s given twice or not %s's", iter, g, nodes[i].ARN)
				}
				given[g] = true
			}
			if int64(len(h.GPUIDs)) != task.GPUs {
				t.Fatalf("iteration %d: %d GPUs given, %d wanted", iter, len(h.GPUIDs), task.GPUs)
			}
			if work[i].CPU < 0 || work[i].Memory < 0 {
				t.Fatalf("iteration %d: %s oversubscribed: cpu %d memory %d", iter, work[i].ARN, work[i].CPU, work[i].Memory)
			}
		}
	}

	// Spread evenness: on identical instances with room, one call's tasks
	// differ by at most one per instance (spread by instance), per zone
	// (spread by zone, then instance), and per instance too when the zones
	// have as many instances each.
	for _, n := range []int{1, 5, 6, 7, 30} {
		var nodes []Node
		for i := range n {
			nodes = append(nodes, node(fmt.Sprint(i), zones[i%3], 1<<20, 1<<20, nil))
		}
		for _, count := range []int{1, 10, 50, 97} {
			d := Demand{Resources: Resources{Memory: 1}, Group: "g"}
			perNode := map[int]int{}
			for _, i := range Place(nodes, &Task{Demand: d, Strategies: []Strategy{Spread{FieldInstanceID}}}, count).Placements {
				perNode[i]++
			}
			if spreadOf(perNode, n) > 1 {
				t.Errorf("spread(instanceId), %d instances, %d tasks: uneven %v", n, count, perNode)
			}
			perNode, perZone := map[int]int{}, map[string]int{}
			for _, i := range Place(nodes, &Task{Demand: d, Strategies: DefaultStrategies}, count).Placements {
				perNode[i]++
				perZone[nodes[i].Attributes[ecs.AttributeAvailabilityZone]]++
			}
			if spreadOf(perZone, min(n, 3)) > 1 || (n%3 == 0 && spreadOf(perNode, n) > 1) {
				t.Errorf("spread(zone), spread(instanceId), %d instances, %d tasks: uneven %v %v", n, count, perNode, perZone)
			}
		}
	}
}

// spreadOf is max-min over n buckets (missing buckets count as zero).
func spreadOf[K comparable](m map[K]int, n int) int {
	lo, hi := 1<<30, 0
	for _, v := range m {
		lo, hi = min(lo, v), max(hi, v)
	}
	if len(m) < n {
		lo = 0
	}
	return hi - lo
}

// referencePlace is Place written the obvious way: for each task, check
// every node from scratch and rank by recomputing each strategy's score.
func referencePlace(nodes []Node, t *Task, count int) []int {
	work := slices.Clone(nodes)
	filters := append(slices.Clone(DefaultFilters), t.Constraints...)
	var out []int
	for range count {
		var feasible []int
		for i := range work {
			if _, ok := Check(filters, &t.Demand, &work[i]); ok {
				feasible = append(feasible, i)
			}
		}
		if len(feasible) == 0 {
			break
		}
		for _, s := range t.Strategies {
			score := func(i int) int64 {
				switch s := s.(type) {
				case Binpack:
					if s.Field == FieldCPU {
						return work[i].CPU
					}
					return work[i].Memory
				case Spread:
					attr, byAttr := cutAttribute(s.Field)
					if !byAttr {
						return int64(work[i].Groups[t.Group])
					}
					v, ok := work[i].Attributes[attr]
					var sum int64
					for j := range work {
						if w, ok2 := work[j].Attributes[attr]; ok2 == ok && w == v {
							sum += int64(work[j].Groups[t.Group])
						}
					}
					return sum
				}
				panic("unexpected strategy")
			}
			best := score(feasible[0])
			for _, i := range feasible {
				best = min(best, score(i))
			}
			feasible = slices.DeleteFunc(feasible, func(i int) bool { return score(i) != best })
		}
		out = append(out, feasible[0])
		work[feasible[0]].Take(&t.Demand)
	}
	return out
}

// TestScenario runs a cluster through a day: a service-like group spreads
// over zones, a zone's instance drains, more tasks avoid it, a database
// with distinctInstance takes one instance each, and an affinity task
// follows it.
func TestScenario(t *testing.T) {
	nodes := []Node{
		node("a1", "us-east-1a", 4096, 8192, nil), node("a2", "us-east-1a", 4096, 8192, nil),
		node("b1", "us-east-1b", 4096, 8192, nil), node("b2", "us-east-1b", 4096, 8192, nil),
		node("c1", "us-east-1c", 4096, 8192, nil),
	}
	place := func(task *Task, count int) Plan {
		t.Helper()
		p := Place(nodes, task, count)
		for _, i := range p.Placements {
			nodes[i].Take(&task.Demand)
		}
		return p
	}
	web := &Task{Demand: Demand{Resources: Resources{CPU: 256, Memory: 512}, Group: "service:web"}, Strategies: DefaultStrategies}
	place(web, 6)
	zones := map[string]int{}
	for _, n := range nodes {
		zones[n.Attributes[ecs.AttributeAvailabilityZone]] += n.Groups["service:web"]
	}
	if zones["us-east-1a"] != 2 || zones["us-east-1b"] != 2 || zones["us-east-1c"] != 2 {
		t.Fatalf("web over zones: %v", zones)
	}

	nodes[4].Status = ecs.InstanceStatusDraining // c1
	p := place(web, 3)
	for _, i := range p.Placements {
		if nodes[i].ARN == "c1" {
			t.Fatalf("placed on the draining instance: %v", names(nodes, p))
		}
	}

	db := &Task{Demand: Demand{Resources: Resources{CPU: 1024, Memory: 2048}, Group: "service:db"},
		Constraints: []Filter{DistinctInstance{}}, Strategies: []Strategy{Binpack{FieldMemory}}}
	p = place(db, 5)
	if len(p.Placements) != 4 || len(p.Failures) != 5 || p.Failures[4] != (Failure{"c1", "DRAINING"}) {
		t.Fatalf("db: %v %v", names(nodes, p), p.Failures)
	}
	cache := &Task{Demand: Demand{Resources: Resources{CPU: 128, Memory: 128}, Group: "service:cache"},
		Constraints: []Filter{MemberOf{mustParse(t, "task:group == service:db and attribute:ecs.availability-zone == us-east-1b")}}}
	if p := place(cache, 1); !slices.Equal(names(nodes, p), []string{"b1"}) {
		t.Fatalf("cache: %v %v", names(nodes, p), p.Failures)
	}
}
