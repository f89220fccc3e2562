package ecrapi_test

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ggtypes "github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/gantry-dev/gantry/internal/testcluster"
)

// pusher pushes images built in memory to a cluster's registry.
type pusher struct {
	t    *testing.T
	host string
	auth remote.Option
}

func newPusher(t *testing.T, c *testcluster.Cluster) *pusher {
	out, err := c.ECR().GetAuthorizationToken(context.Background(), &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(*out.AuthorizationData[0].AuthorizationToken)
	_, pass, _ := strings.Cut(string(raw), ":")
	return &pusher{t: t, host: c.Server.RegistryHost(), auth: remote.WithAuth(&authn.Basic{Username: "AWS", Password: pass})}
}

func (p *pusher) image(layers ...v1.Layer) v1.Image {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		p.t.Fatal(err)
	}
	return img
}

func (p *pusher) layer(size int64) v1.Layer {
	l, err := random.Layer(size, ggtypes.DockerLayer)
	if err != nil {
		p.t.Fatal(err)
	}
	return l
}

func (p *pusher) push(ref string, img v1.Image) string {
	r, err := name.ParseReference(p.host+"/"+ref, name.Insecure)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := remote.Write(r, img, p.auth); err != nil {
		p.t.Fatalf("push %s: %v", ref, err)
	}
	d, _ := img.Digest()
	return d.String()
}

func layersSize(t *testing.T, img v1.Image) int64 {
	ls, _ := img.Layers()
	var n int64
	for _, l := range ls {
		s, err := l.Size()
		if err != nil {
			t.Fatal(err)
		}
		n += s
	}
	return n
}

func TestImages(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	api := c.ECR()
	ctx := context.Background()
	repo := aws.String("web")
	if _, err := api.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: repo}); err != nil {
		t.Fatal(err)
	}
	p := newPusher(t, c)
	before := time.Now().Add(-time.Second)
	imgA := p.image(p.layer(5000), p.layer(7000))
	a := p.push("web:v1", imgA)
	p.push("web:latest", imgA)
	imgB := p.image(p.layer(100))
	b := p.push("web@"+mustDigest(t, imgB), imgB) // untagged

	t.Run("ListImages", func(t *testing.T) {
		out, err := api.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: repo})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, id := range out.ImageIds {
			got = append(got, aws.ToString(id.ImageDigest)+"|"+aws.ToString(id.ImageTag))
		}
		want := []string{a + "|latest", a + "|v1", b + "|"}
		slices.Sort(want)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("ListImages = %v, want %v", got, want)
		}
		tagged, _ := api.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: repo, Filter: &types.ListImagesFilter{TagStatus: types.TagStatusTagged}})
		untagged, _ := api.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: repo, Filter: &types.ListImagesFilter{TagStatus: types.TagStatusUntagged}})
		if len(tagged.ImageIds) != 2 || len(untagged.ImageIds) != 1 || *untagged.ImageIds[0].ImageDigest != b {
			t.Fatalf("filters: tagged %v, untagged %v", tagged.ImageIds, untagged.ImageIds)
		}
		// One per page.
		var paged []string
		var tok *string
		for range 10 {
			out, err := api.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: repo, MaxResults: aws.Int32(1), NextToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range out.ImageIds {
				paged = append(paged, aws.ToString(id.ImageDigest)+"|"+aws.ToString(id.ImageTag))
			}
			if tok = out.NextToken; tok == nil {
				break
			}
		}
		if strings.Join(paged, " ") != strings.Join(want, " ") {
			t.Fatalf("paged %v, want %v", paged, want)
		}
	})

	t.Run("DescribeImages", func(t *testing.T) {
		out, err := api.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: repo, ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
		if err != nil || len(out.ImageDetails) != 1 {
			t.Fatalf("DescribeImages: %+v, %v", out, err)
		}
		d := out.ImageDetails[0]
		if *d.ImageDigest != a || strings.Join(d.ImageTags, ",") != "latest,v1" || *d.RegistryId != testcluster.AccountID ||
			*d.ImageSizeInBytes != layersSize(t, imgA) || *d.ImageManifestMediaType != "application/vnd.docker.distribution.manifest.v2+json" ||
			*d.ArtifactMediaType != "application/vnd.docker.container.image.v1+json" ||
			d.ImagePushedAt.Before(before) || d.ImagePushedAt.After(time.Now().Add(time.Second)) {
			t.Fatalf("detail %+v (size want %d)", d, layersSize(t, imgA))
		}
		all, err := api.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: repo})
		if err != nil || len(all.ImageDetails) != 2 {
			t.Fatalf("all: %+v, %v", all, err)
		}
		for _, tc := range []struct {
			name string
			in   ecr.DescribeImagesInput
			code string
		}{
			{"ErrImageNotFound", ecr.DescribeImagesInput{RepositoryName: repo, ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("nope")}}}, "ImageNotFoundException"},
			{"ErrRepositoryNotFound", ecr.DescribeImagesInput{RepositoryName: aws.String("nope")}, "RepositoryNotFoundException"},
			{"ErrBadDigest", ecr.DescribeImagesInput{RepositoryName: repo, ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String("sha256:xyz")}}}, "InvalidParameterException"},
			{"ErrEmptyID", ecr.DescribeImagesInput{RepositoryName: repo, ImageIds: []types.ImageIdentifier{{}}}, "InvalidParameterException"},
			{"ErrHugeMaxResults", ecr.DescribeImagesInput{RepositoryName: repo, MaxResults: aws.Int32(1 << 30)}, "InvalidParameterException"},
			{"ErrOtherOpsToken", ecr.DescribeImagesInput{RepositoryName: repo, NextToken: aws.String("eyJvIjoiTGlzdEltYWdlcyIsImEiOiJ4In0")}, "InvalidParameterException"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := api.DescribeImages(ctx, &tc.in); code(err) != tc.code {
					t.Fatalf("got %v, want %s", err, tc.code)
				}
			})
		}
	})

	t.Run("BatchGetImage", func(t *testing.T) {
		out, err := api.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: repo, ImageIds: []types.ImageIdentifier{
			{ImageTag: aws.String("v1")}, {ImageDigest: aws.String(b)}, {ImageTag: aws.String("nope")},
			{ImageTag: aws.String("v1"), ImageDigest: aws.String(b)}, {ImageDigest: aws.String("sha256:bad")}, {},
		}})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := imgA.RawManifest()
		if len(out.Images) != 2 || *out.Images[0].ImageManifest != string(raw) || *out.Images[0].ImageId.ImageDigest != a {
			t.Fatalf("images %+v", out.Images)
		}
		var codes []string
		for _, f := range out.Failures {
			codes = append(codes, string(f.FailureCode))
		}
		if strings.Join(codes, ",") != "ImageNotFound,ImageTagDoesNotMatchDigest,InvalidImageDigest,MissingDigestAndTag" {
			t.Fatalf("failures %v", codes)
		}
	})

	t.Run("PutImage", func(t *testing.T) {
		raw, _ := imgA.RawManifest()
		mt, _ := imgA.MediaType()
		out, err := api.PutImage(ctx, &ecr.PutImageInput{RepositoryName: repo, ImageTag: aws.String("retagged"),
			ImageManifest: aws.String(string(raw)), ImageManifestMediaType: aws.String(string(mt))})
		if err != nil || *out.Image.ImageId.ImageDigest != a {
			t.Fatalf("PutImage: %+v, %v", out, err)
		}
		_, err = api.PutImage(ctx, &ecr.PutImageInput{RepositoryName: repo, ImageTag: aws.String("retagged"), ImageManifest: aws.String(string(raw))})
		if code(err) != "ImageAlreadyExistsException" {
			t.Fatalf("PutImage again: %v", err)
		}
		orphan := p.image(p.layer(10)) // its layer was never pushed
		oraw, _ := orphan.RawManifest()
		_, err = api.PutImage(ctx, &ecr.PutImageInput{RepositoryName: repo, ImageTag: aws.String("orphan"), ImageManifest: aws.String(string(oraw))})
		if code(err) != "LayersNotFoundException" {
			t.Fatalf("PutImage with missing layers: %v", err)
		}
		_, err = api.PutImage(ctx, &ecr.PutImageInput{RepositoryName: repo, ImageManifest: aws.String("{not json")})
		if code(err) != "InvalidParameterException" {
			t.Fatalf("PutImage with garbage: %v", err)
		}
		_, err = api.PutImage(ctx, &ecr.PutImageInput{RepositoryName: repo, ImageManifest: aws.String(string(raw)), ImageDigest: aws.String(b)})
		if code(err) != "ImageDigestDoesNotMatchException" {
			t.Fatalf("PutImage with the wrong digest: %v", err)
		}
	})

	t.Run("DeleteRepositoryNotEmpty", func(t *testing.T) {
		_, err := api.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: repo})
		if code(err) != "RepositoryNotEmptyException" {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("BatchDeleteImage", func(t *testing.T) {
		// Removing one of three tags keeps the image.
		out, err := api.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: repo, ImageIds: []types.ImageIdentifier{
			{ImageTag: aws.String("latest")}, {ImageTag: aws.String("nope")}}})
		if err != nil || len(out.ImageIds) != 1 || len(out.Failures) != 1 || out.Failures[0].FailureCode != types.ImageFailureCodeImageNotFound {
			t.Fatalf("delete a tag: %+v, %v", out, err)
		}
		// Removing the others deletes it: the image goes with its last tag.
		out, err = api.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: repo, ImageIds: []types.ImageIdentifier{
			{ImageTag: aws.String("v1")}, {ImageTag: aws.String("retagged")}}})
		if err != nil || len(out.ImageIds) != 2 {
			t.Fatalf("delete the last tags: %+v, %v", out, err)
		}
		left, _ := api.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: repo})
		if len(left.ImageIds) != 1 || *left.ImageIds[0].ImageDigest != b {
			t.Fatalf("left %+v", left.ImageIds)
		}
		out, err = api.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: repo, ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(b)}}})
		if err != nil || len(out.ImageIds) != 1 {
			t.Fatalf("delete by digest: %+v, %v", out, err)
		}
		if _, err := api.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: repo}); err != nil {
			t.Fatalf("delete the emptied repository: %v", err)
		}
	})
}

// TestIndexImages: an index's manifests cannot be deleted from under it.
func TestIndexImages(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t)
	api := c.ECR()
	ctx := context.Background()
	repo := aws.String("multi")
	if _, err := api.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: repo}); err != nil {
		t.Fatal(err)
	}
	p := newPusher(t, c)
	amd, arm := p.image(p.layer(3000)), p.image(p.layer(9000))
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: amd}, mutate.IndexAddendum{Add: arm})
	r, _ := name.ParseReference(p.host+"/multi:v1", name.Insecure)
	if err := remote.WriteIndex(r, idx, p.auth); err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := idx.Digest()
	out, err := api.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: repo, ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
	if err != nil {
		t.Fatal(err)
	}
	if d := out.ImageDetails[0]; *d.ImageDigest != idxDigest.String() || *d.ImageSizeInBytes != layersSize(t, arm) {
		t.Fatalf("index detail %+v; want the largest manifest's size %d", d, layersSize(t, arm))
	}
	del, err := api.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: repo, ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(mustDigest(t, amd))}}})
	if err != nil || len(del.Failures) != 1 || del.Failures[0].FailureCode != types.ImageFailureCodeImageReferencedByManifestList {
		t.Fatalf("deleting a manifest an index lists: %+v, %v", del, err)
	}
	// Once the index is gone, so can its manifests be.
	if _, err := api.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: repo, ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}}); err != nil {
		t.Fatal(err)
	}
	del, err = api.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: repo, ImageIds: []types.ImageIdentifier{
		{ImageDigest: aws.String(mustDigest(t, amd))}, {ImageDigest: aws.String(mustDigest(t, arm))}}})
	if err != nil || len(del.Failures) != 0 || len(del.ImageIds) != 2 {
		t.Fatalf("deleting the manifests after the index: %+v, %v", del, err)
	}
}

func mustDigest(t *testing.T, img v1.Image) string {
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
