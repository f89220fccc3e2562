package scheduler

import "github.com/gantry-dev/gantry/scheduler/query"

// Placement constraints are Filters that are binding, as ECS's are ("task
// placement constraints are binding, and they can prevent task
// placement"). Their reasons are the ones ECS returns in RunTask's
// failures.
const (
	ReasonDistinctInstance = "DistinctInstance placement constraint unsatisfied."
	ReasonMemberOf         = "MemberOf placement constraint unsatisfied."
)

// DistinctInstance admits instances that run no task of the task's group
// ("Use distinctInstance to ensure that each task in a particular group is
// running on a different container instance"), counting the tasks already
// there as well as those placed by the same call.
type DistinctInstance struct{}

func (DistinctInstance) Check(d *Demand, n *Node) bool { return n.Groups[d.Group] == 0 }
func (DistinctInstance) Explain(*Node) string          { return ReasonDistinctInstance }

// MemberOf admits instances that satisfy a cluster query language
// expression.
type MemberOf struct {
	Expr *query.Expr
}

func (m MemberOf) Check(_ *Demand, n *Node) bool { return n.Matches(m.Expr) }
func (MemberOf) Explain(*Node) string            { return ReasonMemberOf }
