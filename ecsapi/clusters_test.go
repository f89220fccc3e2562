package ecsapi_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/gantry-dev/gantry/internal/testcluster"
)

// errCode returns the AWS error code of err, or "" if it has none.
func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := errCode(err); got != code {
		t.Fatalf("error = %v, want code %s", err, code)
	}
}

func TestCreateAndDescribeCluster(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	api := c.ECS()
	ctx := context.Background()

	created, err := api.CreateCluster(ctx, &ecs.CreateClusterInput{
		ClusterName: aws.String("web"),
		Tags:        []types.Tag{{Key: aws.String("team"), Value: aws.String("blue")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cl := created.Cluster
	if got, want := aws.ToString(cl.ClusterArn), "arn:aws:ecs:us-east-1:123456789012:cluster/web"; got != want {
		t.Errorf("arn = %s, want %s", got, want)
	}
	if aws.ToString(cl.Status) != "ACTIVE" || len(cl.Tags) != 1 || len(cl.Settings) != 1 || aws.ToString(cl.Settings[0].Value) != "disabled" {
		t.Errorf("created cluster = %+v", cl)
	}

	t.Run("CreateIsIdempotent", func(t *testing.T) {
		again, err := api.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("web")})
		if err != nil {
			t.Fatal(err)
		}
		if len(again.Cluster.Tags) != 1 {
			t.Errorf("second create changed the cluster: %+v", again.Cluster)
		}
	})
	t.Run("DescribeOmitsOptionalParts", func(t *testing.T) {
		d, err := api.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"web"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Clusters) != 1 || d.Clusters[0].Tags != nil || d.Clusters[0].Settings != nil || d.Clusters[0].Statistics != nil {
			t.Errorf("describe without include = %+v", d.Clusters)
		}
	})
	t.Run("DescribeIncludes", func(t *testing.T) {
		d, err := api.DescribeClusters(ctx, &ecs.DescribeClustersInput{
			Clusters: []string{"arn:aws:ecs:us-east-1:123456789012:cluster/web"},
			Include:  []types.ClusterField{types.ClusterFieldTags, types.ClusterFieldSettings, types.ClusterFieldStatistics},
		})
		if err != nil {
			t.Fatal(err)
		}
		got := d.Clusters[0]
		if len(got.Tags) != 1 || len(got.Settings) != 1 || len(got.Statistics) != 8 {
			t.Errorf("describe with include = %+v", got)
		}
	})
	t.Run("MissingClusters", func(t *testing.T) {
		d, err := api.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"nope", "web", "arn:aws:ecs:eu-west-1:123456789012:cluster/web"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Clusters) != 1 || len(d.Failures) != 2 {
			t.Fatalf("got %d clusters, %d failures", len(d.Clusters), len(d.Failures))
		}
		if aws.ToString(d.Failures[0].Reason) != "MISSING" || aws.ToString(d.Failures[0].Arn) != "arn:aws:ecs:us-east-1:123456789012:cluster/nope" {
			t.Errorf("failure = %+v", d.Failures[0])
		}
	})
	t.Run("DefaultWhenNoneNamed", func(t *testing.T) {
		d, err := api.DescribeClusters(ctx, &ecs.DescribeClustersInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Failures) != 1 || aws.ToString(d.Failures[0].Arn) != "arn:aws:ecs:us-east-1:123456789012:cluster/default" {
			t.Errorf("describe of absent default = %+v", d)
		}
	})
}

func TestCreateClusterRejectsBadInput(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	api := c.ECS()
	ctx := context.Background()
	long := make([]byte, 256)
	for i := range long {
		long[i] = 'a'
	}
	cases := map[string]*ecs.CreateClusterInput{
		"BadName":         {ClusterName: aws.String("has space")},
		"NameTooLong":     {ClusterName: aws.String(string(long))},
		"ReservedTag":     {ClusterName: aws.String("ok"), Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("v")}}},
		"DuplicateTag":    {ClusterName: aws.String("ok"), Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("a"), Value: aws.String("2")}}},
		"BadSettingValue": {ClusterName: aws.String("ok"), Settings: []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("sometimes")}}},
		"UnknownProvider": {ClusterName: aws.String("ok"), CapacityProviders: []string{"my-asg"}},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := api.CreateCluster(ctx, in)
			wantCode(t, err, "InvalidParameterException")
		})
	}
	l, err := api.ListClusters(ctx, &ecs.ListClustersInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.ClusterArns) != 0 {
		t.Errorf("refused creates stored clusters: %v", l.ClusterArns)
	}
}

func TestListClustersPaginates(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	api := c.ECS()
	ctx := context.Background()
	for i := range 5 {
		if _, err := api.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(fmt.Sprintf("c%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	var all []string
	pages := 0
	p := ecs.NewListClustersPaginator(api, &ecs.ListClustersInput{MaxResults: aws.Int32(2)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		all = append(all, out.ClusterArns...)
	}
	if len(all) != 5 || pages != 3 {
		t.Errorf("got %d clusters in %d pages: %v", len(all), pages, all)
	}

	t.Run("ErrBadToken", func(t *testing.T) {
		_, err := api.ListClusters(ctx, &ecs.ListClustersInput{NextToken: aws.String("garbage!")})
		wantCode(t, err, "InvalidParameterException")
	})
	t.Run("ErrMaxResults", func(t *testing.T) {
		for _, n := range []int32{0, 101, -1} {
			_, err := api.ListClusters(ctx, &ecs.ListClustersInput{MaxResults: aws.Int32(n)})
			wantCode(t, err, "InvalidParameterException")
		}
	})
}

func TestDeleteCluster(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	api := c.ECS()
	ctx := context.Background()
	if _, err := api.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("gone")}); err != nil {
		t.Fatal(err)
	}
	del, err := api.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("gone")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(del.Cluster.Status) != "INACTIVE" {
		t.Errorf("deleted status = %s", aws.ToString(del.Cluster.Status))
	}
	d, err := api.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"gone"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Clusters) != 1 || aws.ToString(d.Clusters[0].Status) != "INACTIVE" {
		t.Errorf("describe after delete = %+v", d)
	}
	l, _ := api.ListClusters(ctx, &ecs.ListClustersInput{})
	if len(l.ClusterArns) != 0 {
		t.Errorf("list after delete = %v", l.ClusterArns)
	}
	_, err = api.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("gone")})
	wantCode(t, err, "ClusterNotFoundException")

	// Recreating revives the name as a fresh ACTIVE cluster.
	if _, err := api.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("gone")}); err != nil {
		t.Fatal(err)
	}
	d, _ = api.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"gone"}})
	if aws.ToString(d.Clusters[0].Status) != "ACTIVE" {
		t.Errorf("recreated status = %s", aws.ToString(d.Clusters[0].Status))
	}

	t.Run("ErrClusterContainsContainerInstances", func(t *testing.T) {
		// No API registers instances yet; place the record the way the store lays them out.
		if _, err := c.Server.Store().Client().Put(ctx, "/gantry/v1/instances/gone/i-1", "{}"); err != nil {
			t.Fatal(err)
		}
		_, err := api.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("gone")})
		wantCode(t, err, "ClusterContainsContainerInstancesException")
		d, _ := api.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"gone"}})
		if aws.ToString(d.Clusters[0].Status) != "ACTIVE" || d.Clusters[0].RegisteredContainerInstancesCount != 1 {
			t.Errorf("refused delete changed the cluster: %+v", d.Clusters[0])
		}
	})
}

func TestUpdateClusterSettings(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	api := c.ECS()
	ctx := context.Background()
	if _, err := api.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		t.Fatal(err)
	}
	out, err := api.UpdateClusterSettings(ctx, &ecs.UpdateClusterSettingsInput{
		Cluster:  aws.String("default"),
		Settings: []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("enabled")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Cluster.Settings) != 1 || aws.ToString(out.Cluster.Settings[0].Value) != "enabled" {
		t.Errorf("settings = %+v", out.Cluster.Settings)
	}
	_, err = api.UpdateCluster(ctx, &ecs.UpdateClusterInput{Cluster: aws.String("nope")})
	wantCode(t, err, "ClusterNotFoundException")
	_, err = api.UpdateCluster(ctx, &ecs.UpdateClusterInput{
		Cluster:  aws.String("default"),
		Settings: []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("bogus")}},
	})
	wantCode(t, err, "InvalidParameterException")
}

func TestTags(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	api := c.ECS()
	ctx := context.Background()
	cl, err := api.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("tagged")})
	if err != nil {
		t.Fatal(err)
	}
	arn := cl.Cluster.ClusterArn

	// Concurrent TagResource calls must not lose each other's tags.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			_, err := api.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")}}})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	l, err := api.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: arn})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Tags) != 20 {
		t.Fatalf("after 20 concurrent TagResource calls: %d tags", len(l.Tags))
	}
	if _, err := api.UntagResource(ctx, &ecs.UntagResourceInput{ResourceArn: arn, TagKeys: []string{"k0", "k1"}}); err != nil {
		t.Fatal(err)
	}
	l, _ = api.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: arn})
	if len(l.Tags) != 18 {
		t.Errorf("after untag: %d tags", len(l.Tags))
	}

	t.Run("ErrTooMany", func(t *testing.T) {
		var many []types.Tag
		for i := range 40 {
			many = append(many, types.Tag{Key: aws.String(fmt.Sprintf("x%d", i)), Value: aws.String("v")})
		}
		_, err := api.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: arn, Tags: many})
		wantCode(t, err, "InvalidParameterException")
		l, _ := api.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: arn})
		if len(l.Tags) != 18 {
			t.Errorf("refused TagResource changed tags: %d", len(l.Tags))
		}
	})
	t.Run("ErrClusterNotFound", func(t *testing.T) {
		_, err := api.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ecs:us-east-1:123456789012:cluster/none")})
		wantCode(t, err, "ClusterNotFoundException")
	})
	t.Run("ErrBadARN", func(t *testing.T) {
		_, err := api.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String("not-an-arn")})
		wantCode(t, err, "InvalidParameterException")
	})
}
