package scheduler

// A Strategy ranks the nodes that pass every filter. Place applies the
// task's strategies in order, each choosing among the nodes the ones
// before it left tied, as ECS does ("distribute tasks across Availability
// Zones and bin pack tasks based on memory within each Availability
// Zone"). Strategies are best effort: they prefer, never exclude.
//
// A Strategy keeps a score per node, lower is better, and updates the
// scores a placement changes, so ranking a node costs an array read.
type Strategy interface {
	// String is the strategy as ECS writes it: "binpack(memory)".
	String() string
	ranker(nodes []Node, d *Demand) ranker
}

type ranker interface {
	// scores is each node's score, lower preferred; nil for random, which
	// picks uniformly among the nodes still tied.
	scores() []int64
	// placed updates the scores after a task landed on node i; n is the
	// node, accounting for it.
	placed(i int, n *Node)
}

// Binpack prefers the node with the least of a resource left ("a task is
// placed on the instance with the least amount of remaining memory but
// still enough to run the task"), which minimizes the instances in use.
type Binpack struct {
	Field string // FieldCPU or FieldMemory
}

// Binpack fields.
const (
	FieldCPU    = "cpu"
	FieldMemory = "memory"
)

func (b Binpack) String() string { return "binpack(" + b.Field + ")" }

func (b Binpack) ranker(nodes []Node, _ *Demand) ranker {
	r := &binpackRanker{memory: b.Field == FieldMemory, s: make([]int64, len(nodes))}
	for i := range nodes {
		r.placed(i, &nodes[i])
	}
	return r
}

type binpackRanker struct {
	memory bool
	s      []int64
}

func (r *binpackRanker) scores() []int64 { return r.s }
func (r *binpackRanker) placed(i int, n *Node) {
	if r.memory {
		r.s[i] = n.Memory
	} else {
		r.s[i] = n.CPU
	}
}

// Spread prefers the node whose Field value holds the fewest tasks of the
// task's group ("Standalone tasks are spread based on the tasks from the
// same task group"; a service's group is "service:<name>"). Field is
// FieldInstanceID (or "host", the same) or "attribute:<name>"; tasks on
// every registered node count, feasible or not, and nodes without the
// attribute share one value of their own.
type Spread struct {
	Field string
}

// FieldInstanceID spreads over instances.
const FieldInstanceID = "instanceId"

func (s Spread) String() string { return "spread(" + s.Field + ")" }

func (s Spread) ranker(nodes []Node, d *Demand) ranker {
	attr, byAttr := cutAttribute(s.Field)
	r := &spreadRanker{s: make([]int64, len(nodes))}
	if !byAttr {
		for i := range nodes {
			r.s[i] = int64(nodes[i].Groups[d.Group])
		}
		return r
	}
	// One bucket per value; scores are the bucket's count, so a placement
	// raises the score of every node in its bucket.
	const missing = "\x00" // attribute values never contain NUL
	ids := map[string]int32{}
	r.bucket = make([]int32, len(nodes))
	var counts []int64
	for i := range nodes {
		v, ok := nodes[i].Attributes[attr]
		if !ok {
			v = missing
		}
		b, seen := ids[v]
		if !seen {
			b = int32(len(r.members))
			ids[v] = b
			r.members = append(r.members, nil)
			counts = append(counts, 0)
		}
		r.bucket[i] = b
		r.members[b] = append(r.members[b], int32(i))
		counts[b] += int64(nodes[i].Groups[d.Group])
	}
	for i := range nodes {
		r.s[i] = counts[r.bucket[i]]
	}
	return r
}

type spreadRanker struct {
	s       []int64
	bucket  []int32   // by attribute: node -> bucket; nil by instance
	members [][]int32 // bucket -> nodes
}

func (r *spreadRanker) scores() []int64 { return r.s }
func (r *spreadRanker) placed(i int, _ *Node) {
	if r.bucket == nil {
		r.s[i]++
		return
	}
	for _, m := range r.members[r.bucket[i]] {
		r.s[m]++
	}
}

// Random picks uniformly among the nodes the strategies before it left
// tied; strategies after it have nothing left to choose.
type Random struct{}

func (Random) String() string                { return "random" }
func (Random) ranker([]Node, *Demand) ranker { return randomRanker{} }

type randomRanker struct{}

func (randomRanker) scores() []int64   { return nil }
func (randomRanker) placed(int, *Node) {}

// cutAttribute splits "attribute:<name>".
func cutAttribute(field string) (string, bool) {
	const p = "attribute:"
	if len(field) > len(p) && field[:len(p)] == p {
		return field[len(p):], true
	}
	return "", false
}
