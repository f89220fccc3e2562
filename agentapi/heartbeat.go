package agentapi

import (
	"errors"
	"net/http"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/state"
)

// heartbeat refreshes the lease that makes the instance agentConnected and
// tells the agent its instance's status; a deregistered instance's agent
// learns INACTIVE and is not reconnected.
func (h *Handler) heartbeat(w http.ResponseWriter, r *http.Request) {
	rec, err := h.instance(r)
	if err != nil {
		h.authFailed(w, err)
		return
	}
	status := rec.Status
	if status != ecs.InstanceStatusInactive {
		status, err = h.store.Heartbeat(r.Context(), rec.Cluster(), rec.ID(), h.timeout)
		if errors.Is(err, state.ErrNotFound) {
			status, err = ecs.InstanceStatusInactive, nil
		}
		if err != nil {
			h.internal(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, protocol.HeartbeatResponse{Status: status})
}
