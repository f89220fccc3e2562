package scheduler

import (
	"math/rand/v2"
	"slices"
)

// Failure says why a task could not go on one instance, in ECS's words.
type Failure struct {
	ARN    string // the container instance
	Reason string // e.g. "RESOURCE:MEMORY"
}

// Plan is the outcome of placing count tasks: the node chosen for each
// task that fits (indexes into the nodes given, in task order) and, when
// some did not fit, why each node refused them.
type Plan struct {
	Placements []int
	Failures   []Failure
}

// Task is what Place places: copies of one task, with the constraints and
// strategies of the RunTask call or service.
type Task struct {
	Demand
	// Constraints are checked after DefaultFilters, in order: they are
	// binding. See ParseConstraints.
	Constraints []Filter
	// Strategies rank the nodes that pass every filter, in order; with
	// none, each task goes on the first such node in the order given
	// (first fit). See ParseStrategies and DefaultStrategies.
	Strategies []Strategy
	// Rand draws for the random strategy; nil uses a fixed seed, so a
	// placement is a function of its input.
	Rand *rand.Rand
}

// Check runs filters against one node; reason is the first failing
// filter's explanation.
func Check(filters []Filter, d *Demand, n *Node) (reason string, ok bool) {
	for _, f := range filters {
		if !f.Check(d, n) {
			return f.Explain(n), false
		}
	}
	return "", true
}

// Place places count copies of t on nodes, in ECS's order: each node must
// pass DefaultFilters (status, agent, attributes, resources) and then t's
// constraints; among those that do, t's strategies choose, in order; a
// tie left after the last goes to the node given first. Each placement is
// accounted for before the next task is placed, so the tasks of one call
// spread, pack and stay distinct among themselves as well as with the
// tasks already running. When a task fits nowhere, it and the tasks after
// it (which need the same) fail, and Failures gives each node's reason.
// nodes is not modified.
//
// Cost: every node is checked once, then per task the feasible nodes are
// compared on their strategy scores (an array read each) and only the
// chosen node is checked again: filters look at one node only, so a
// placement cannot change another node's feasibility.
func Place(nodes []Node, t *Task, count int) Plan {
	p := newPlacement(nodes, t)
	var plan Plan
	for range count {
		i, ok := p.pick()
		if !ok {
			plan.Failures = p.failures()
			break
		}
		plan.Placements = append(plan.Placements, i)
		p.place(i)
	}
	return plan
}

// placement is the working state of one Place call. The caller's nodes
// are read, never written: a node gets a private copy when a task is
// placed on it, so a call costs little more than reading each node once.
type placement struct {
	base    []Node
	copies  map[int]*Node // nodes this call placed tasks on
	task    *Task
	alive   []int32 // nodes passing every filter, in the order given
	rankers []ranker
	scores  [][]int64 // rankers' scores, up to the first random
	random  bool      // a random strategy breaks the remaining ties
	rng     *rand.Rand
}

func newPlacement(nodes []Node, t *Task) *placement {
	p := &placement{base: nodes, copies: map[int]*Node{}, task: t, rng: t.Rand}
	if p.rng == nil {
		p.rng = rand.New(rand.NewPCG(1, 2))
	}
	p.alive = make([]int32, 0, len(nodes))
	for i := range nodes {
		if _, ok := p.check(i); ok {
			p.alive = append(p.alive, int32(i))
		}
	}
	for _, s := range t.Strategies {
		r := s.ranker(nodes, &t.Demand)
		p.rankers = append(p.rankers, r)
		if r.scores() == nil {
			p.random = true
			break
		}
		p.scores = append(p.scores, r.scores())
	}
	return p
}

// node is node i as this call has changed it.
func (p *placement) node(i int) *Node {
	if n, ok := p.copies[i]; ok {
		return n
	}
	return &p.base[i]
}

// check runs every filter on node i; reason is why it fails.
func (p *placement) check(i int) (reason string, ok bool) {
	d, n := &p.task.Demand, p.node(i)
	reason, ok = Check(DefaultFilters, d, n)
	if ok {
		reason, ok = Check(p.task.Constraints, d, n)
	}
	return reason, ok
}

// pick returns the best feasible node: the lowest scores, compared in
// strategy order; among ties, a random one after a random strategy, else
// the first.
func (p *placement) pick() (int, bool) {
	if len(p.alive) == 0 {
		return 0, false
	}
	if len(p.scores) == 0 {
		if p.random {
			return int(p.alive[p.rng.IntN(len(p.alive))]), true
		}
		return int(p.alive[0]), true
	}
	best, ties := p.alive[0], 1
	first := p.scores[0]
	if len(p.scores) == 1 && !p.random { // the common case, kept tight
		low := first[best]
		for _, i := range p.alive[1:] {
			if v := first[i]; v < low {
				best, low = i, v
			}
		}
		return int(best), true
	}
	if len(p.scores) == 2 && !p.random {
		second := p.scores[1]
		low, low2 := first[best], second[best]
		for _, i := range p.alive[1:] {
			if v := first[i]; v < low || v == low && second[i] < low2 {
				best, low, low2 = i, v, second[i]
			}
		}
		return int(best), true
	}
	for _, i := range p.alive[1:] {
		c := cmpScore(first[i], first[best])
		for k := 1; c == 0 && k < len(p.scores); k++ {
			c = cmpScore(p.scores[k][i], p.scores[k][best])
		}
		switch {
		case c < 0:
			best, ties = i, 1
		case c == 0 && p.random:
			ties++
			if p.rng.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return int(best), true
}

func cmpScore(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// place accounts for a task on node i and checks i again.
func (p *placement) place(i int) {
	n, ok := p.copies[i]
	if !ok {
		c := p.base[i]
		n = &c
		p.copies[i] = n
	}
	n.Take(&p.task.Demand)
	for _, r := range p.rankers {
		r.placed(i, n)
	}
	if _, ok := p.check(i); !ok {
		k, _ := slices.BinarySearch(p.alive, int32(i))
		p.alive = slices.Delete(p.alive, k, k+1)
	}
}

// failures explains every node; called when none is feasible.
func (p *placement) failures() []Failure {
	out := make([]Failure, len(p.base))
	for i := range p.base {
		reason, _ := p.check(i)
		out[i] = Failure{ARN: p.base[i].ARN, Reason: reason}
	}
	return out
}
