package agentapi

import (
	"errors"
	"net/http"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/state"
)

var errNotYourTask = errors.New("task is not placed on the caller's instance")

// taskState applies an agent's state change (ECS's SubmitTaskStateChange
// and the stop code the agent saw) to a task placed on its own instance, in
// one revision-guarded transaction (state.UpdateTask). Reports on any other
// task are refused with 403 NotYourTask; ones that would move a task
// backwards are answered Accepted=false.
func (h *Handler) taskState(w http.ResponseWriter, r *http.Request) {
	c, err := h.caller(r)
	if err != nil {
		h.authFailed(w, err)
		return
	}
	var req protocol.TaskStateChange
	if err := decode(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", "malformed task state change: "+err.Error())
		return
	}
	cluster := c.cluster
	notYours := func() {
		writeError(w, http.StatusForbidden, "NotYourTask", "task "+req.Task+" is not placed on container instance "+h.scope.ContainerInstanceARN(cluster, c.id))
	}
	if req.Cluster != "" {
		if name, ok := h.scope.ClusterName(req.Cluster); !ok || name != cluster {
			notYours()
			return
		}
	}
	id, ok := h.scope.ParseTaskRef(cluster, req.Task)
	if !ok {
		notYours()
		return
	}
	if err := validHealth(&req); err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	var ignored string
	at := h.now()
	_, err = h.store.UpdateTask(r.Context(), cluster, id, func(t *state.TaskRecord) (bool, error) {
		if t.InstanceID() != c.id {
			return false, errNotYourTask
		}
		changed, why, err := t.ApplyStateChange(&req.SubmitTaskStateChangeRequest, req.StopCode, at)
		ignored = why
		if err != nil || why != "" {
			return changed, err
		}
		healthChanged, err := applyHealth(&t.Task, req.ContainerHealth, req.HealthStatus)
		if healthChanged && !changed {
			t.Version++
		}
		return changed || healthChanged, err
	})
	switch {
	case errors.Is(err, state.ErrNotFound), errors.Is(err, errNotYourTask):
		notYours()
	case errors.Is(err, ecs.ErrBadStateChange):
		writeError(w, http.StatusBadRequest, "BadRequest", err.Error())
	case err != nil:
		h.internal(w, err)
	case ignored != "":
		writeJSON(w, http.StatusOK, protocol.TaskStateResponse{Accepted: false, Reason: ignored})
	default:
		writeJSON(w, http.StatusOK, protocol.TaskStateResponse{Accepted: true})
	}
}
