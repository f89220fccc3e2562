package controller

import "strings"

// scaleIn returns n of cands (tasks of the service) to stop, in the order
// ECS takes them when it scales in: tasks that are not healthy first; then
// one at a time from the Availability Zone that runs the most of the
// service's tasks, and within it from the instance that runs the most, so
// what stays remains balanced across zones and instances as the default
// spread placement put it; the newest task of that instance goes first.
func (d *decision) scaleIn(cands []*Task, n int) []*Task {
	if n <= 0 {
		return nil
	}
	zone := func(t *Task) string { return d.in.Instances[t.Instance].Zone }
	zones, insts := map[string]int{}, map[string]int{}
	for _, t := range d.live {
		zones[zone(t)]++
		insts[t.Instance]++
	}
	left := append([]*Task(nil), cands...)
	var out []*Task
	for len(out) < n && len(left) > 0 {
		pool := left
		var sick []*Task
		for _, t := range left {
			if !healthy(t) {
				sick = append(sick, t)
			}
		}
		if len(sick) > 0 {
			pool = sick
		}
		best := pool[0]
		for _, t := range pool[1:] {
			if scaleInBefore(t, best, zones[zone(t)], zones[zone(best)], insts[t.Instance], insts[best.Instance], zone(t), zone(best)) {
				best = t
			}
		}
		out = append(out, best)
		zones[zone(best)]--
		insts[best.Instance]--
		for i, t := range left {
			if t == best {
				left = append(left[:i], left[i+1:]...)
				break
			}
		}
	}
	return out
}

// scaleInBefore: a is taken before b.
func scaleInBefore(a, b *Task, za, zb, ia, ib int, zoneA, zoneB string) bool {
	switch {
	case za != zb:
		return za > zb
	case zoneA != zoneB:
		return zoneA < zoneB
	case ia != ib:
		return ia > ib
	case a.Instance != b.Instance:
		return a.Instance < b.Instance
	case !a.CreatedAt.Equal(b.CreatedAt):
		return a.CreatedAt.After(b.CreatedAt)
	}
	return strings.Compare(a.ID, b.ID) < 0
}
