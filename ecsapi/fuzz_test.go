package ecsapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/gantry-dev/gantry/internal/testcluster"
)

// FuzzRequest sends arbitrary bodies to every cluster and tag operation
// through the real handler and store. Whatever the input: no panic, no 5xx,
// an AWS-shaped error body, and an error never changes the store (the etcd
// revision stays put).
func FuzzRequest(f *testing.F) {
	ops := []string{"CreateCluster", "DescribeClusters", "ListClusters", "DeleteCluster", "UpdateCluster",
		"UpdateClusterSettings", "TagResource", "UntagResource", "ListTagsForResource"}
	seeds := []string{
		`{}`, `{"clusterName":"a"}`, `{"clusterName":"a","tags":[{"key":"k","value":"v"}]}`,
		`{"clusters":["a","arn:aws:ecs:us-east-1:123456789012:cluster/a"],"include":["TAGS"]}`,
		`{"maxResults":1,"nextToken":"eyJvIjoiTGlzdENsdXN0ZXJzIiwiYSI6ImEifQ"}`,
		`{"cluster":"a","settings":[{"name":"containerInsights","value":"enabled"}]}`,
		`{"resourceArn":"arn:aws:ecs:us-east-1:123456789012:cluster/a","tags":[{"key":"x","value":""}]}`,
		`{"resourceArn":"arn:aws:ecs:us-east-1:123456789012:cluster/a","tagKeys":["x"]}`,
		`{"clusterName":5}`, `[]`, `null`, `{"clusterName":"\u0000"}`, `{"maxResults":-1}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	c := testcluster.Start(f)
	h := c.Server.Handler()
	etcd := c.Server.Store().Client()
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: testcluster.AccessKeyID, SecretAccessKey: testcluster.SecretAccessKey}

	f.Fuzz(func(t *testing.T, opIndex uint8, body []byte) {
		op := ops[int(opIndex)%len(ops)]
		before, err := etcd.Get(context.Background(), "/gantry/")
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "http://"+c.Server.Addr()+"/", bytes.NewReader(body))
		req.Header.Set("X-Amz-Target", target+op)
		sum := sha256.Sum256(body)
		if err := signer.SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ecs", testcluster.Region, time.Now()); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: status %d: %s", op, body, rec.Code, rec.Body)
		}
		if rec.Code == 200 {
			return
		}
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Type == "" || e.Message == "" {
			t.Fatalf("%s %q: error body not AWS-shaped: %s", op, body, rec.Body)
		}
		after, err := etcd.Get(context.Background(), "/gantry/")
		if err != nil {
			t.Fatal(err)
		}
		if after.Header.Revision != before.Header.Revision {
			t.Fatalf("%s %q failed with %s but changed the store", op, body, e.Type)
		}
	})
}
