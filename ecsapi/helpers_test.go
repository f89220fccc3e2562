package ecsapi_test

import (
	"net/http/httptest"
	"testing"

	gecs "github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/ecsapi"
	"github.com/gantry-dev/gantry/internal/awsproto"
	"github.com/gantry-dev/gantry/internal/sigv4"
	"github.com/gantry-dev/gantry/internal/testcluster"
)

type awsTimestamp = awsproto.Timestamp

// newSecondServer serves a second ECS API on c's store, as another gantry
// server on the same etcd cluster would, and returns its URL.
func newSecondServer(t *testing.T, c *testcluster.Cluster) string {
	t.Helper()
	api := ecsapi.New(ecsapi.Config{
		Store: c.Server.Store(),
		Scope: gecs.Scope{Partition: "aws", Region: testcluster.Region, AccountID: testcluster.AccountID},
		Verifier: &sigv4.Verifier{
			Region:      testcluster.Region,
			Credentials: sigv4.StaticCredentials{testcluster.AccessKeyID: testcluster.SecretAccessKey},
		},
	})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv.URL
}
