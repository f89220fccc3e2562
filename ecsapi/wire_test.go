package ecsapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/gantry-dev/gantry/internal/testcluster"
)

const target = "AmazonEC2ContainerServiceV20141113."

// rawCall is one hand-made HTTP request to the API.
type rawCall struct {
	method, path, target string
	body                 []byte
	key, secret, region  string
	signedAt             time.Time
	unsigned             bool
}

type rawReply struct {
	status int
	Type   string `json:"__type"`
	Msg    string `json:"message"`
	body   []byte
}

func (rc rawCall) do(t *testing.T, url string) rawReply {
	t.Helper()
	if rc.method == "" {
		rc.method = http.MethodPost
	}
	if rc.path == "" {
		rc.path = "/"
	}
	req, err := http.NewRequest(rc.method, url+rc.path, bytes.NewReader(rc.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if rc.target != "" {
		req.Header.Set("X-Amz-Target", rc.target)
	}
	if !rc.unsigned {
		key, secret, region := testcluster.AccessKeyID, testcluster.SecretAccessKey, testcluster.Region
		if rc.key != "" {
			key = rc.key
		}
		if rc.secret != "" {
			secret = rc.secret
		}
		if rc.region != "" {
			region = rc.region
		}
		at := rc.signedAt
		if at.IsZero() {
			at = time.Now()
		}
		sum := sha256.Sum256(rc.body)
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: key, SecretAccessKey: secret},
			req, hex.EncodeToString(sum[:]), "ecs", region, at)
		if err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := rawReply{status: resp.StatusCode, body: b}
	json.Unmarshal(b, &r)
	return r
}

// TestBadInputIsRefusedAndChangesNothing sends malformed, oversized and
// unauthenticated requests and checks each gets AWS's error shape and that
// no cluster was stored.
func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	url := c.Server.URL()
	create := target + "CreateCluster"
	cases := []struct {
		name   string
		call   rawCall
		status int
		code   string
		inMsg  string
	}{
		{"MalformedJSON", rawCall{target: create, body: []byte(`{"clusterName":`)}, 400, "SerializationException", "JSON"},
		{"WrongType", rawCall{target: create, body: []byte(`{"clusterName": 5}`)}, 400, "SerializationException", "clusterName"},
		{"WrongNestedType", rawCall{target: create, body: []byte(`{"clusterName":"x","tags":[{"key":"a","value":true}]}`)}, 400, "SerializationException", "tags.value"},
		{"NotAnObject", rawCall{target: create, body: []byte(`["clusterName"]`)}, 400, "SerializationException", "object"},
		{"TrailingData", rawCall{target: create, body: []byte(`{"clusterName":"x"} {}`)}, 400, "SerializationException", "after"},
		{"IntegerOverflow", rawCall{target: target + "ListClusters", body: []byte(`{"maxResults": 99999999999}`)}, 400, "SerializationException", "maxResults"},
		{"BadEnum", rawCall{target: create, body: []byte(`{"clusterName":"x","settings":[{"name":"bogus","value":"enabled"}]}`)}, 400, "InvalidParameterException", "settings[0].name"},
		{"MissingRequired", rawCall{target: target + "DeleteCluster", body: []byte(`{}`)}, 400, "InvalidParameterException", "cluster"},
		{"Oversize", rawCall{target: create, body: append(append([]byte(`{"clusterName":"x","pad":"`), bytes.Repeat([]byte("a"), 2<<20)...), '"', '}')}, 400, "RequestEntityTooLargeException", "limit"},
		{"UnknownAction", rawCall{target: target + "LaunchRockets", body: []byte(`{}`)}, 400, "UnknownOperationException", "LaunchRockets"},
		{"WrongService", rawCall{target: "DynamoDB_20120810.ListTables", body: []byte(`{}`)}, 400, "UnknownOperationException", ""},
		{"NoTarget", rawCall{body: []byte(`{}`)}, 400, "UnknownOperationException", ""},
		{"NotImplementedYet", rawCall{target: target + "CreateCapacityProvider", body: []byte(`{"name":"x"}`)}, 400, "UnsupportedFeatureException", "CreateCapacityProvider"},
		{"Unsigned", rawCall{target: create, body: []byte(`{"clusterName":"x"}`), unsigned: true}, 400, "MissingAuthenticationTokenException", "Missing Authentication Token"},
		{"UnknownKey", rawCall{target: create, body: []byte(`{"clusterName":"x"}`), key: "AKIANOTAKEY000000000"}, 400, "UnrecognizedClientException", "security token"},
		{"WrongSecret", rawCall{target: create, body: []byte(`{"clusterName":"x"}`), secret: "forged"}, 400, "InvalidSignatureException", "signature"},
		{"WrongRegion", rawCall{target: create, body: []byte(`{"clusterName":"x"}`), region: "eu-west-1"}, 400, "InvalidSignatureException", "region"},
		{"Expired", rawCall{target: create, body: []byte(`{"clusterName":"x"}`), signedAt: time.Now().Add(-10 * time.Minute)}, 400, "InvalidSignatureException", "Signature expired"},
		{"FromTheFuture", rawCall{target: create, body: []byte(`{"clusterName":"x"}`), signedAt: time.Now().Add(10 * time.Minute)}, 400, "InvalidSignatureException", "not yet current"},
		{"GetRoot", rawCall{method: http.MethodGet, unsigned: true}, 404, "UnknownOperationException", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.call.do(t, url)
			if r.status != tc.status || r.Type != tc.code || !strings.Contains(r.Msg, tc.inMsg) {
				t.Errorf("got %d %s %q, want %d %s containing %q", r.status, r.Type, r.Msg, tc.status, tc.code, tc.inMsg)
			}
		})
	}

	// A tampered body: signed for one cluster name, sent with another.
	t.Run("TamperedBody", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(`{"clusterName":"evil"}`))
		req.Header.Set("X-Amz-Target", create)
		sum := sha256.Sum256([]byte(`{"clusterName":"good"}`))
		v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testcluster.AccessKeyID, SecretAccessKey: testcluster.SecretAccessKey},
			req, hex.EncodeToString(sum[:]), "ecs", testcluster.Region, time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("tampered body: status %d", resp.StatusCode)
		}
	})

	l, err := c.ECS().ListClusters(context.Background(), &ecs.ListClustersInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.ClusterArns) != 0 {
		t.Errorf("refused requests stored clusters: %v", l.ClusterArns)
	}
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	resp, err := http.Get(c.Server.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok\n" {
		t.Errorf("healthz = %d %q", resp.StatusCode, b)
	}
}

func TestResponsesCarryRequestID(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	r := rawCall{target: target + "ListClusters", body: []byte(`{}`)}
	req, _ := http.NewRequest(http.MethodPost, c.Server.URL()+"/", bytes.NewReader(r.body))
	req.Header.Set("X-Amz-Target", r.target)
	sum := sha256.Sum256(r.body)
	v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testcluster.AccessKeyID, SecretAccessKey: testcluster.SecretAccessKey},
		req, hex.EncodeToString(sum[:]), "ecs", testcluster.Region, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Amzn-Requestid") == "" || resp.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		t.Errorf("headers = %v", resp.Header)
	}
}
