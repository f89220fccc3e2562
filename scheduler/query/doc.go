// Package query is ECS's cluster query language: the expressions of memberOf
// placement constraints and of ListContainerInstances' filter, such as
//
//	attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone in [us-east-1a, us-east-1b]
//	not(task:group == database)
//	agentConnected == true and registeredAt >= 2026-01-01
//
// Parse turns an expression (at most MaxLength characters) into an Expr or a
// *SyntaxError that says where it broke; Expr.Match evaluates it against one
// container instance, seen through the Instance interface. The package is
// pure: no I/O, no clock (registeredAt is compared with what the Instance
// reports). See docs/scheduler.md for the grammar and the semantics Gantry
// chose where ECS's documentation is silent.
package query
