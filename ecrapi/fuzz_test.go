package ecrapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gantry-dev/gantry/internal/testcluster"
)

// FuzzRequest sends arbitrary bodies to every ECR operation Gantry serves,
// through the real handler, store and registry storage. Whatever the input:
// no panic, no 5xx, an AWS-shaped error body, and a failed call changes no
// repository (locks come and go; records stay put).
func FuzzRequest(f *testing.F) {
	ops := []string{"CreateRepository", "DescribeRepositories", "DeleteRepository", "PutImageTagMutability",
		"TagResource", "UntagResource", "ListTagsForResource", "ListImages", "DescribeImages", "BatchGetImage",
		"BatchDeleteImage", "PutImage", "GetAuthorizationToken"}
	const arn = "arn:aws:ecr:us-east-1:123456789012:repository/app"
	seeds := []string{
		`{}`, `{"repositoryName":"app"}`, `{"repositoryName":"new","tags":[{"Key":"k","Value":"v"}],"imageTagMutability":"IMMUTABLE"}`,
		`{"repositoryName":"app","force":true}`, `{"repositoryNames":["app","nope"]}`, `{"maxResults":1,"nextToken":"x"}`,
		`{"repositoryName":"app","imageTagMutability":"IMMUTABLE_WITH_EXCLUSION","imageTagMutabilityExclusionFilters":[{"filterType":"WILDCARD","filter":"*"}]}`,
		`{"resourceArn":"` + arn + `","tags":[{"Key":"a","Value":"b"}]}`, `{"resourceArn":"` + arn + `","tagKeys":["a"]}`,
		`{"repositoryName":"app","imageIds":[{"imageTag":"v1"},{"imageDigest":"sha256:00"},{}]}`,
		`{"repositoryName":"app","filter":{"tagStatus":"UNTAGGED"},"maxResults":1000}`,
		`{"repositoryName":"app","imageManifest":"{\"schemaVersion\":2}","imageTag":"x"}`,
		`{"registryIds":["123456789012","1"]}`, `{"repositoryName":"App"}`, `{"maxResults":2147483648}`,
		`{"repositoryName":"` + strings.Repeat("a", 300) + `"}`, `[]`, `null`, `{"repositoryName":5}`, `{"imageIds":[null]}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	c := testcluster.Start(f)
	ctx := context.Background()
	if _, err := c.ECR().CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("app")}); err != nil {
		f.Fatal(err)
	}
	h := c.Server.Handler()
	etcd := c.Server.Store().Client()
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: testcluster.AccessKeyID, SecretAccessKey: testcluster.SecretAccessKey}
	records := func(t *testing.T) string {
		resp, err := etcd.Get(ctx, "/gantry/v1/ecr/repositories/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, kv := range resp.Kvs {
			b.Write(kv.Key)
			b.Write(kv.Value)
		}
		return b.String()
	}

	f.Fuzz(func(t *testing.T, opIndex uint8, body []byte) {
		op := ops[int(opIndex)%len(ops)]
		before := records(t)
		req := httptest.NewRequest(http.MethodPost, "http://"+c.Server.Addr()+"/", bytes.NewReader(body))
		req.Header.Set("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921."+op)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		sum := sha256.Sum256(body)
		if err := signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "ecr", testcluster.Region, time.Now()); err != nil {
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
		if after := records(t); after != before {
			t.Fatalf("%s %q failed with %s but changed a repository", op, body, e.Type)
		}
	})
}
