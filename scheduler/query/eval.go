package query

import (
	"iter"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Instance is a container instance as an expression sees it.
type Instance interface {
	// Attribute returns the value of an attribute ("" for one without a
	// value) and whether the instance has it.
	Attribute(name string) (string, bool)
	// TaskGroups yields the group of every task on the instance that is
	// not STOPPED, each group once.
	TaskGroups() iter.Seq[string]
	AgentConnected() bool
	AgentVersion() string
	EC2InstanceID() string
	RegisteredAt() time.Time
	RunningTasksCount() int
}

// Match reports whether the instance satisfies the expression.
func (e *Expr) Match(in Instance) bool { return e.root.match(in) }

type node interface{ match(Instance) bool }

type (
	andNode struct{ l, r node }
	orNode  struct{ l, r node }
	notNode struct{ x node }
)

func (n andNode) match(in Instance) bool { return n.l.match(in) && n.r.match(in) }
func (n orNode) match(in Instance) bool  { return n.l.match(in) || n.r.match(in) }
func (n notNode) match(in Instance) bool { return !n.x.match(in) }

// cmpNode is "subject operator [argument]". The arguments are kept as
// written and, for typed subjects, parsed (bools, ints, times).
type cmpNode struct {
	subject Subject
	attr    string // for SubjectAttribute
	op      Op
	args    []string
	re      *regexp.Regexp
	bools   []bool
	ints    []int64
	times   []time.Time
	day     bool // registeredAt compared by whole days
}

// match: a subject has zero values (an attribute the instance lacks, no
// tasks), one, or, for task:group, several. A comparison holds when some
// value satisfies it, so a missing attribute satisfies neither == nor !=
// ("attribute:stack != prod" lists the instances that have a stack
// attribute other than prod, as ECS's documentation describes), and
// "task:group != db" holds on an instance running any task outside db;
// anti-affinity is "not(task:group == db)". exists and !exists test for
// at least one value.
func (c *cmpNode) match(in Instance) bool {
	switch c.subject {
	case SubjectAttribute:
		v, ok := in.Attribute(c.attr)
		return c.matchStrings(func(yield func(string) bool) {
			if ok {
				yield(v)
			}
		})
	case SubjectTaskGroup:
		return c.matchStrings(in.TaskGroups())
	case SubjectEC2InstanceID:
		return c.matchString(in.EC2InstanceID())
	case SubjectAgentConnected:
		v := in.AgentConnected()
		switch c.op {
		case OpEq, OpIn:
			return containsBool(c.bools, v)
		case OpNe, OpNotIn:
			return !containsBool(c.bools, v)
		}
		return c.matchString(strconv.FormatBool(v))
	case SubjectAgentVersion:
		return c.compare(func(arg string) int { return compareVersions(in.AgentVersion(), arg) })
	case SubjectRunningTasksCount:
		n := int64(in.RunningTasksCount())
		return c.compareIdx(func(i int) int { return cmpInt(n, c.ints[i]) })
	case SubjectRegisteredAt:
		t := in.RegisteredAt().UTC()
		if c.day {
			t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		} else {
			t = t.Truncate(time.Second)
		}
		return c.compareIdx(func(i int) int { return t.Compare(c.times[i]) })
	}
	return false
}

// matchStrings: some value satisfies the comparison.
func (c *cmpNode) matchStrings(values iter.Seq[string]) bool {
	found := false
	for v := range values {
		found = true
		if c.op != OpExists && c.op != OpNotExists && c.matchString(v) {
			return true
		}
	}
	switch c.op {
	case OpExists:
		return found
	case OpNotExists:
		return !found
	}
	return false
}

func (c *cmpNode) matchString(v string) bool {
	switch c.op {
	case OpEq, OpIn:
		return containsString(c.args, v)
	case OpNe, OpNotIn:
		return !containsString(c.args, v)
	case OpMatches:
		return c.re.MatchString(v)
	case OpNotMatches:
		return !c.re.MatchString(v)
	case OpExists:
		return true
	case OpNotExists:
		return false
	}
	return c.compare(func(arg string) int { return compareValues(v, arg) })
}

// compare applies an ordering or (in)equality operator with cmp(arg) < 0
// meaning the subject's value sorts before arg.
func (c *cmpNode) compare(cmp func(arg string) int) bool {
	return c.compareIdx(func(i int) int { return cmp(c.args[i]) })
}

func (c *cmpNode) compareIdx(cmp func(i int) int) bool {
	switch c.op {
	case OpEq, OpIn:
		for i := range c.args {
			if cmp(i) == 0 {
				return true
			}
		}
		return false
	case OpNe, OpNotIn:
		for i := range c.args {
			if cmp(i) == 0 {
				return false
			}
		}
		return true
	case OpGt:
		return cmp(0) > 0
	case OpGe:
		return cmp(0) >= 0
	case OpLt:
		return cmp(0) < 0
	case OpLe:
		return cmp(0) <= 0
	}
	return false
}

// compareValues orders attribute values and task groups: numerically when
// both are numbers, else as strings.
func compareValues(a, b string) int {
	x, errA := strconv.ParseFloat(a, 64)
	y, errB := strconv.ParseFloat(b, 64)
	if errA == nil && errB == nil {
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	}
	return strings.Compare(a, b)
}

// compareVersions orders agent versions part by part ("1.9.0" < "1.14.5"),
// numerically where both parts are numbers; a leading "v" and build
// metadata ("+...") are ignored, and a pre-release ("1.2.0-rc1") sorts
// before its release, as in semantic versioning.
func compareVersions(a, b string) int {
	a, _, _ = strings.Cut(strings.TrimPrefix(a, "v"), "+")
	b, _, _ = strings.Cut(strings.TrimPrefix(b, "v"), "+")
	ca, preA, hasPreA := strings.Cut(a, "-")
	cb, preB, hasPreB := strings.Cut(b, "-")
	if c := compareParts(ca, cb); c != 0 {
		return c
	}
	switch {
	case hasPreA && !hasPreB:
		return -1
	case !hasPreA && hasPreB:
		return 1
	}
	return compareParts(preA, preB)
}

func compareParts(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		x, y := "0", "0"
		if i < len(pa) && pa[i] != "" {
			x = pa[i]
		}
		if i < len(pb) && pb[i] != "" {
			y = pb[i]
		}
		if c := compareValues(x, y); c != 0 {
			return c
		}
	}
	return 0
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func containsString(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

func containsBool(list []bool, v bool) bool {
	for _, b := range list {
		if b == v {
			return true
		}
	}
	return false
}
