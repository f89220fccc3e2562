package agentapi

import (
	"errors"
	"net/http"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/state"
)

// heartbeat refreshes the lease that makes the instance agentConnected and
// tells the agent its instance's status; a deregistered instance's agent
// learns INACTIVE and is not reconnected. It reads neither the token's
// instance record (once the token was checked) nor, beyond its status, the
// instance itself: a thousand agents heartbeat every few seconds.
func (h *Handler) heartbeat(w http.ResponseWriter, r *http.Request) {
	c, err := h.caller(r)
	if err != nil {
		h.authFailed(w, err)
		return
	}
	status, err := h.store.Heartbeat(r.Context(), c.cluster, c.id, h.timeout)
	if errors.Is(err, state.ErrNotFound) {
		// Deregistered long ago: the record, and with it the token, is gone.
		h.forget(r)
		h.authFailed(w, errUnauthorized)
		return
	}
	if err != nil {
		h.internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, protocol.HeartbeatResponse{Status: status})
}
