package agentapi

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/awsproto"
	"github.com/gantry-dev/gantry/state"
)

// register admits an agent with a join token: it revives the instance the
// agent registered before when it presents that instance's ARN and token
// and the instance is still registered in the same cluster, and registers
// a new instance otherwise (deregistration is final, as in ECS).
func (h *Handler) register(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ok, err := h.store.JoinTokenValid(ctx, bearer(r))
	if err != nil {
		h.internal(w, err)
		return
	}
	if !ok {
		writeError(w, http.StatusUnauthorized, "Unauthorized", "missing or invalid join token")
		return
	}
	var req protocol.RegisterRequest
	if err := decode(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", "malformed registration: "+err.Error())
		return
	}
	if req.Cluster == "" {
		req.Cluster = ecs.DefaultClusterName
	}
	if err := validateRegistration(&req); err != nil {
		msg := err.Error()
		var ae *awsproto.Error
		if errors.As(err, &ae) {
			msg = ae.Message
		}
		writeError(w, http.StatusBadRequest, "BadRequest", msg)
		return
	}
	if _, err := h.store.ActiveCluster(ctx, req.Cluster); errors.Is(err, state.ErrNotFound) {
		writeError(w, http.StatusNotFound, "ClusterNotFound", "cluster "+req.Cluster+" does not exist; create it with CreateCluster")
		return
	} else if err != nil {
		h.internal(w, err)
		return
	}

	rec, token, err := h.reregister(ctx, &req)
	if err != nil {
		h.internal(w, err)
		return
	}
	if rec == nil {
		rec, token, err = h.registerNew(ctx, &req)
		if errors.Is(err, state.ErrClusterNotActive) {
			writeError(w, http.StatusNotFound, "ClusterNotFound", "cluster "+req.Cluster+" does not exist")
			return
		}
		if err != nil {
			h.internal(w, err)
			return
		}
	}
	counts, _, err := h.store.CountTasks(ctx, req.Cluster)
	if err != nil {
		h.internal(w, err)
		return
	}
	h.log.Info("agent registered", "cluster", req.Cluster, "containerInstance", rec.ContainerInstanceARN)
	writeJSON(w, http.StatusOK, protocol.RegisterResponse{
		ContainerInstance:       *rec.View(true, counts[rec.ID()]),
		InstanceToken:           token,
		HeartbeatIntervalMillis: (h.timeout / 3).Milliseconds(),
		HeartbeatTimeoutMillis:  h.timeout.Milliseconds(),
	})
}

func validateRegistration(req *protocol.RegisterRequest) error {
	if err := ecs.ValidateClusterName(req.Cluster); err != nil {
		return err
	}
	if err := ecs.ValidateResources(req.Resources); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, a := range req.Attributes {
		if err := ecs.ValidateAttribute(a); err != nil {
			return err
		}
		if seen[a.Name] {
			return ecs.InvalidParameter("Attribute %s is listed more than once.", a.Name)
		}
		seen[a.Name] = true
	}
	return nil
}

// reregister revives the instance req names when its token matches and it
// is still registered in req's cluster; it returns nil when it does not
// apply.
func (h *Handler) reregister(ctx context.Context, req *protocol.RegisterRequest) (*state.InstanceRecord, string, error) {
	if req.ContainerInstanceARN == "" || req.InstanceToken == "" {
		return nil, "", nil
	}
	id, ok := h.scope.ParseContainerInstanceRef(req.Cluster, req.ContainerInstanceARN)
	if !ok {
		return nil, "", nil
	}
	old, err := h.instanceByToken(ctx, req.InstanceToken)
	if errors.Is(err, errUnauthorized) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	if old.ID() != id || old.Cluster() != req.Cluster {
		return nil, "", nil
	}
	rec, err := h.store.UpdateInstance(ctx, req.Cluster, id, func(rec *state.InstanceRecord) error {
		if rec.Status != ecs.InstanceStatusActive && rec.Status != ecs.InstanceStatusDraining {
			return state.ErrNotFound
		}
		rec.RegisteredResources = req.Resources
		rec.Attributes = reregisteredAttributes(rec.Attributes, rec.AgentAttributes, req.Attributes)
		rec.AgentAttributes = attributeNames(req.Attributes)
		vi := req.VersionInfo
		rec.VersionInfo = &vi
		return nil
	})
	if errors.Is(err, state.ErrNotFound) {
		return nil, "", nil // deregistered meanwhile: register anew
	}
	if err != nil {
		return nil, "", err
	}
	if _, err := h.store.Heartbeat(ctx, req.Cluster, id, h.timeout); err != nil {
		return nil, "", err
	}
	return rec, req.InstanceToken, nil
}

// reregisteredAttributes: the agent's attributes as it now reports them,
// plus those set with PutAttributes. Attributes the agent reported before
// and no longer does (a capability it lost, an --attribute flag removed)
// go.
func reregisteredAttributes(old []ecs.Attribute, fromAgent []string, reported []ecs.Attribute) []ecs.Attribute {
	out := ecs.MergeAttributes(nil, reported)
	for _, a := range old {
		if _, ok := ecs.AttributeValue(reported, a.Name); !ok && !slices.Contains(fromAgent, a.Name) {
			out = append(out, a)
		}
	}
	return out
}

func attributeNames(attrs []ecs.Attribute) []string {
	out := make([]string, len(attrs))
	for i, a := range attrs {
		out[i] = a.Name
	}
	return out
}

func (h *Handler) registerNew(ctx context.Context, req *protocol.RegisterRequest) (*state.InstanceRecord, string, error) {
	id := ecs.NewID()
	token := newInstanceToken(req.Cluster, id)
	vi := req.VersionInfo
	rec := &state.InstanceRecord{
		ContainerInstance: ecs.ContainerInstance{
			ContainerInstanceARN: h.scope.ContainerInstanceARN(req.Cluster, id),
			EC2InstanceID:        ecs.EC2InstanceID(id),
			Version:              1,
			VersionInfo:          &vi,
			RegisteredResources:  req.Resources,
			Status:               ecs.InstanceStatusActive,
			Attributes:           ecs.MergeAttributes(nil, req.Attributes),
			RegisteredAt:         awsproto.Timestamp{Time: h.now()},
		},
		TokenHash:       state.HashToken(token),
		AgentAttributes: attributeNames(req.Attributes),
	}
	if err := h.store.CreateInstance(ctx, rec, h.timeout); err != nil {
		return nil, "", err
	}
	return rec, token, nil
}
