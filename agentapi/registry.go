package agentapi

import (
	"context"
	"errors"

	"github.com/gantry-dev/gantry/ecs"
)

// InstanceTokenValid reports whether tok is the instance token of a
// container instance that is still registered (not INACTIVE). The built-in
// registry accepts such tokens as pull credentials, so an agent pulls
// task images with the credential it already holds.
func (h *Handler) InstanceTokenValid(ctx context.Context, tok string) (bool, error) {
	rec, err := h.instanceByToken(ctx, tok)
	if errors.Is(err, errUnauthorized) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return rec.Status != ecs.InstanceStatusInactive, nil
}
