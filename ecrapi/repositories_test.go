package ecrapi_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"

	"github.com/gantry-dev/gantry/internal/testcluster"
)

// code is the AWS error code of err ("" for none).
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func TestCreateRepository(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	api := c.ECR()
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	out, err := api.CreateRepository(ctx, &ecr.CreateRepositoryInput{
		RepositoryName: aws.String("team/web"),
		Tags:           []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Repository
	host := c.Server.RegistryHost()
	for got, want := range map[string]string{
		aws.ToString(r.RepositoryName):                   "team/web",
		aws.ToString(r.RepositoryArn):                    "arn:aws:ecr:us-east-1:123456789012:repository/team/web",
		aws.ToString(r.RegistryId):                       testcluster.AccountID,
		aws.ToString(r.RepositoryUri):                    host + "/team/web",
		string(r.ImageTagMutability):                     "MUTABLE",
		string(r.EncryptionConfiguration.EncryptionType): "AES256",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if r.CreatedAt == nil || r.CreatedAt.Before(before) || r.CreatedAt.After(time.Now()) {
		t.Errorf("createdAt %v", r.CreatedAt)
	}
	if r.ImageScanningConfiguration == nil || r.ImageScanningConfiguration.ScanOnPush {
		t.Errorf("imageScanningConfiguration %+v", r.ImageScanningConfiguration)
	}

	for _, tc := range []struct {
		name string
		in   ecr.CreateRepositoryInput
		code string
	}{
		{"ErrAlreadyExists", ecr.CreateRepositoryInput{RepositoryName: aws.String("team/web")}, "RepositoryAlreadyExistsException"},
		{"ErrUppercase", ecr.CreateRepositoryInput{RepositoryName: aws.String("Web")}, "InvalidParameterException"},
		{"ErrTooShort", ecr.CreateRepositoryInput{RepositoryName: aws.String("w")}, "InvalidParameterException"},
		{"ErrTooLong", ecr.CreateRepositoryInput{RepositoryName: aws.String(strings.Repeat("w", 257))}, "InvalidParameterException"},
		{"ErrReservedComponent", ecr.CreateRepositoryInput{RepositoryName: aws.String("a/_uploads")}, "InvalidParameterException"},
		{"ErrOtherRegistry", ecr.CreateRepositoryInput{RepositoryName: aws.String("web2"), RegistryId: aws.String("210987654321")}, "InvalidParameterException"},
		{"ErrBadMutability", ecr.CreateRepositoryInput{RepositoryName: aws.String("web2"), ImageTagMutability: "SOMETIMES"}, "InvalidParameterException"},
		{"ErrExclusionWithoutFilters", ecr.CreateRepositoryInput{RepositoryName: aws.String("web2"), ImageTagMutability: "IMMUTABLE_WITH_EXCLUSION"}, "InvalidParameterException"},
		{"ErrKMS", ecr.CreateRepositoryInput{RepositoryName: aws.String("web2"), EncryptionConfiguration: &types.EncryptionConfiguration{EncryptionType: "KMS"}}, "InvalidParameterException"},
		{"ErrReservedTag", ecr.CreateRepositoryInput{RepositoryName: aws.String("web2"), Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("v")}}}, "InvalidTagParameterException"},
		{"ErrTooManyTags", ecr.CreateRepositoryInput{RepositoryName: aws.String("web2"), Tags: manyTags(51)}, "TooManyTagsException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := api.CreateRepository(ctx, &tc.in); code(err) != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}
	if out, err := api.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{}); err != nil || len(out.Repositories) != 1 {
		t.Fatalf("refused creates stored something: %+v, %v", out, err)
	}

	t.Run("ConcurrentCreatesOneWins", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make([]error, 10)
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = api.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("contended")})
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch code(err) {
			case "":
				won++
			case "RepositoryAlreadyExistsException":
			default:
				t.Fatal(err)
			}
		}
		if won != 1 {
			t.Fatalf("%d concurrent creates succeeded", won)
		}
	})
}

func TestDescribeRepositories(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	api := c.ECR()
	ctx := context.Background()
	var names []string
	for i := range 7 {
		n := fmt.Sprintf("repo-%d", i)
		names = append(names, n)
		if _, err := api.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	var token *string
	for pages := 0; ; pages++ {
		out, err := api.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{MaxResults: aws.Int32(3), NextToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out.Repositories {
			got = append(got, *r.RepositoryName)
		}
		if token = out.NextToken; token == nil {
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("paged %v, want %v", got, names)
	}
	out, err := api.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"repo-3", "repo-1"}})
	if err != nil || len(out.Repositories) != 2 || *out.Repositories[0].RepositoryName != "repo-3" {
		t.Fatalf("by name: %+v, %v", out, err)
	}
	for _, tc := range []struct {
		name string
		in   ecr.DescribeRepositoriesInput
		code string
	}{
		{"ErrNotFound", ecr.DescribeRepositoriesInput{RepositoryNames: []string{"repo-1", "nope"}}, "RepositoryNotFoundException"},
		{"ErrInvalidNameIsNotFound", ecr.DescribeRepositoriesInput{RepositoryNames: []string{"NOPE"}}, "RepositoryNotFoundException"},
		{"ErrMaxResultsZeroIsDefault", ecr.DescribeRepositoriesInput{MaxResults: aws.Int32(0)}, ""},
		{"ErrMaxResultsNegative", ecr.DescribeRepositoriesInput{MaxResults: aws.Int32(-1)}, "InvalidParameterException"},
		{"ErrMaxResultsTooLarge", ecr.DescribeRepositoriesInput{MaxResults: aws.Int32(1001)}, "InvalidParameterException"},
		{"ErrMaxResultsHuge", ecr.DescribeRepositoriesInput{MaxResults: aws.Int32(1<<31 - 1)}, "InvalidParameterException"},
		{"ErrBadToken", ecr.DescribeRepositoriesInput{NextToken: aws.String("garbage")}, "InvalidParameterException"},
		{"ErrNamesWithMaxResults", ecr.DescribeRepositoriesInput{RepositoryNames: []string{"repo-1"}, MaxResults: aws.Int32(1)}, "InvalidParameterException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := api.DescribeRepositories(ctx, &tc.in); code(err) != tc.code {
				t.Fatalf("got %v, want %q", err, tc.code)
			}
		})
	}
}

func TestRepositoryTagsAndMutability(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	api := c.ECR()
	ctx := context.Background()
	out, err := api.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("web")})
	if err != nil {
		t.Fatal(err)
	}
	arn := out.Repository.RepositoryArn
	if _, err := api.TagResource(ctx, &ecr.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{
		{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("b"), Value: aws.String("2")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.UntagResource(ctx, &ecr.UntagResourceInput{ResourceArn: arn, TagKeys: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := api.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: arn})
	if err != nil || len(tags.Tags) != 1 || *tags.Tags[0].Key != "b" {
		t.Fatalf("tags %+v, %v", tags, err)
	}
	if _, err := api.TagResource(ctx, &ecr.TagResourceInput{ResourceArn: arn, Tags: manyTags(50)}); code(err) != "TooManyTagsException" {
		t.Fatalf("51st tag: %v", err)
	}
	for _, bad := range []string{"arn:aws:ecr:us-east-1:123456789012:repository/nope", "arn:aws:ecs:us-east-1:123456789012:cluster/web", "web"} {
		_, err := api.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: aws.String(bad)})
		if code(err) != "RepositoryNotFoundException" && code(err) != "InvalidParameterException" {
			t.Errorf("ListTagsForResource(%s): %v", bad, err)
		}
	}

	m, err := api.PutImageTagMutability(ctx, &ecr.PutImageTagMutabilityInput{RepositoryName: aws.String("web"),
		ImageTagMutability: types.ImageTagMutabilityImmutableWithExclusion,
		ImageTagMutabilityExclusionFilters: []types.ImageTagMutabilityExclusionFilter{
			{FilterType: types.ImageTagMutabilityExclusionFilterTypeWildcard, Filter: aws.String("dev-*")}}})
	if err != nil || m.ImageTagMutability != types.ImageTagMutabilityImmutableWithExclusion || *m.RegistryId != testcluster.AccountID {
		t.Fatalf("PutImageTagMutability: %+v, %v", m, err)
	}
	d, err := api.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"web"}})
	if err != nil || d.Repositories[0].ImageTagMutability != types.ImageTagMutabilityImmutableWithExclusion ||
		len(d.Repositories[0].ImageTagMutabilityExclusionFilters) != 1 {
		t.Fatalf("after PutImageTagMutability: %+v, %v", d, err)
	}
	if _, err := api.PutImageTagMutability(ctx, &ecr.PutImageTagMutabilityInput{RepositoryName: aws.String("nope"),
		ImageTagMutability: types.ImageTagMutabilityImmutable}); code(err) != "RepositoryNotFoundException" {
		t.Fatalf("unknown repository: %v", err)
	}
}

func TestDeleteRepository(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	api := c.ECR()
	ctx := context.Background()
	if _, err := api.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	out, err := api.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("web")})
	if err != nil || *out.Repository.RepositoryName != "web" {
		t.Fatalf("delete an empty repository: %+v, %v", out, err)
	}
	if _, err := api.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("web")}); code(err) != "RepositoryNotFoundException" {
		t.Fatalf("delete again: %v", err)
	}
	// Not empty: see TestImages (it needs images).
}

func manyTags(n int) []types.Tag {
	out := make([]types.Tag, n)
	for i := range out {
		out[i] = types.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")}
	}
	return out
}
