package agent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/gantry-dev/gantry/ecs"
)

// dependencies are a container's explicit dependsOn conditions and the
// START conditions its links imply (Docker starts a container only after
// the containers it links to are running).
func dependencies(cd *ecs.ContainerDefinition, td *ecs.TaskDefinition) ([]Dependency, error) {
	var out []Dependency
	for i, d := range cd.DependsOn {
		field := "dependsOn[" + strconv.Itoa(i) + "]"
		target := findContainer(td, d.ContainerName)
		switch {
		case target == nil || d.ContainerName == cd.Name:
			return nil, &RefusedError{Container: cd.Name, Field: field + ".containerName", Reason: fmt.Sprintf("%q names no other container of the task", d.ContainerName)}
		case !d.Condition.Valid():
			return nil, &RefusedError{Container: cd.Name, Field: field + ".condition", Reason: fmt.Sprintf("%q (START, COMPLETE, SUCCESS or HEALTHY)", d.Condition)}
		case d.Condition == ecs.ContainerConditionHealthy && target.HealthCheck == nil:
			return nil, &RefusedError{Container: cd.Name, Field: field, Reason: fmt.Sprintf("container %s has no healthCheck, so it can never be HEALTHY", d.ContainerName)}
		}
		out = append(out, Dependency{Container: d.ContainerName, Condition: d.Condition})
	}
	for _, l := range cd.Links {
		name, _, _ := strings.Cut(l, ":")
		out = append(out, Dependency{Container: name, Condition: ecs.ContainerConditionStart})
	}
	return out, nil
}

// checkDependencies refuses conditions that can never all be met: a cycle
// (ECS refuses those at registration; the agent checks what it runs).
func checkDependencies(plans []ContainerPlan) error {
	index := make(map[string]int, len(plans))
	for i, p := range plans {
		index[p.Name] = i
	}
	const (
		unseen = iota
		visiting
		done
	)
	state := make([]int, len(plans))
	var visit func(i int, path []string) error
	visit = func(i int, path []string) error {
		switch state[i] {
		case done:
			return nil
		case visiting:
			return &RefusedError{Container: plans[i].Name, Field: "dependsOn",
				Reason: "the containers' dependencies form a cycle: " + strings.Join(append(path, plans[i].Name), " -> ")}
		}
		state[i] = visiting
		for _, d := range plans[i].DependsOn {
			if err := visit(index[d.Container], append(path, plans[i].Name)); err != nil {
				return err
			}
		}
		state[i] = done
		return nil
	}
	for i := range plans {
		if err := visit(i, nil); err != nil {
			return err
		}
	}
	return nil
}

// createOrder orders the containers so that a container named in another's
// links or volumesFrom is created first (the engine resolves both at
// create), keeping definition order otherwise.
func createOrder(td *ecs.TaskDefinition) ([]int, error) {
	n := len(td.ContainerDefinitions)
	index := make(map[string]int, n)
	for i := range td.ContainerDefinitions {
		index[td.ContainerDefinitions[i].Name] = i
	}
	needs := make([][]int, n) // needs[i]: containers i must follow
	for i := range td.ContainerDefinitions {
		cd := &td.ContainerDefinitions[i]
		for _, l := range cd.Links {
			name, _, _ := strings.Cut(l, ":")
			needs[i] = append(needs[i], index[name])
		}
		for _, vf := range cd.VolumesFrom {
			needs[i] = append(needs[i], index[vf.SourceContainer])
		}
	}
	order := make([]int, 0, n)
	placed := make([]bool, n)
	for len(order) < n {
		progress := false
		for i := range n {
			if placed[i] {
				continue
			}
			ready := true
			for _, j := range needs[i] {
				ready = ready && placed[j]
			}
			if ready {
				placed[i], progress = true, true
				order = append(order, i)
			}
		}
		if !progress {
			for i := range n {
				if !placed[i] {
					return nil, &RefusedError{Container: td.ContainerDefinitions[i].Name, Field: "links",
						Reason: "links and volumesFrom form a cycle"}
				}
			}
		}
	}
	return order, nil
}

// MetadataToken is the path segment of a container's task metadata URI:
// an HMAC of the task and container under the agent's secret, so a
// restarted agent recognises the URIs it handed out while no container can
// guess another task's.
func MetadataToken(secret []byte, taskARN, container string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(taskARN + "\x00" + container))
	return hex.EncodeToString(m.Sum(nil))[:32]
}
