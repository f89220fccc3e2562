package ecrapi

import (
	"context"
	"encoding/base64"

	"github.com/gantry-dev/gantry/ecr"
	"github.com/gantry-dev/gantry/internal/awsproto"
)

func (a *API) registerAuth() {
	a.handle("GetAuthorizationToken", op(a.getAuthorizationToken))
}

// getAuthorizationToken issues a registry token valid for 12 hours, as
// base64("AWS:<token>"): `aws ecr get-login-password` prints the part after
// "AWS:", which `docker login --username AWS --password-stdin` takes.
func (a *API) getAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenRequest) (*ecr.GetAuthorizationTokenResponse, error) {
	if len(in.RegistryIDs) > 10 {
		return nil, ecr.InvalidParameter("Invalid parameter at 'registryIds' failed to satisfy constraint: 'Member must have length less than or equal to 10'")
	}
	for _, id := range in.RegistryIDs {
		if err := ecr.ValidateRegistryID(id, a.scope.AccountID); err != nil {
			return nil, err
		}
	}
	tok, exp := a.reg.IssueToken()
	data := ecr.AuthorizationData{
		AuthorizationToken: base64.StdEncoding.EncodeToString([]byte(ecr.RegistryUsername + ":" + tok)),
		ExpiresAt:          awsproto.Timestamp{Time: exp.UTC()},
		ProxyEndpoint:      a.proxy,
	}
	out := &ecr.GetAuthorizationTokenResponse{AuthorizationData: []ecr.AuthorizationData{data}}
	for range max(len(in.RegistryIDs)-1, 0) {
		out.AuthorizationData = append(out.AuthorizationData, data)
	}
	return out, nil
}
