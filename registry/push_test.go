package registry_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestGoContainerRegistry pushes and pulls images and an index with
// go-containerregistry, checking every digest on the way back.
func TestGoContainerRegistry(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.createRepo(t, "team/app", "")
	img := image(t, layer(t, 1<<20), layer(t, 64<<10))
	want := e.push(t, "team/app:v1", img)
	if got, err := e.pullAll(t, "team/app:v1"); err != nil || got != want {
		t.Fatalf("pull by tag: %s, %v; want %s", got, err, want)
	}
	if got, err := e.pullAll(t, "team/app@"+want.String()); err != nil || got != want {
		t.Fatalf("pull by digest: %s, %v", got, err)
	}

	// A multi-platform index: its manifests go in untagged, the index tagged.
	arm, err := mutate.ConfigFile(image(t, layer(t, 2048)), &v1.ConfigFile{Architecture: "arm64", OS: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	if err := remote.WriteIndex(e.ref(t, "team/app:multi"), idx, e.remote()...); err != nil {
		t.Fatal(err)
	}
	got, err := remote.Index(e.ref(t, "team/app:multi"), e.remote()...)
	if err != nil {
		t.Fatal(err)
	}
	wantIdx, _ := idx.Digest()
	if d, _ := got.Digest(); d != wantIdx {
		t.Fatalf("index digest %s, want %s", d, wantIdx)
	}
	tags, err := remote.List(e.ref(t, "team/app").Context(), e.remote()...)
	if err != nil || strings.Join(tags, ",") != "multi,v1" {
		t.Fatalf("tags %v, %v", tags, err)
	}
}

// TestImmutableTags: in an IMMUTABLE repository a tag never moves, by push
// or by PutImage; pushing the same image again is fine (a retried push);
// the setting can change.
func TestImmutableTags(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	e.createRepo(t, "app", types.ImageTagMutabilityImmutable)
	first := image(t, layer(t, 1000))
	firstDigest := e.push(t, "app:v1", first)
	e.push(t, "app:v1", first) // same manifest: accepted

	err := remote.Write(e.ref(t, "app:v1"), image(t, layer(t, 1000)), e.remote()...)
	want := "The image tag 'v1' already exists in the 'app' repository and cannot be overwritten because the repository is immutable."
	if err == nil || !strings.Contains(err.Error(), "TAG_INVALID") || !strings.Contains(err.Error(), want) {
		t.Fatalf("moving an immutable tag: %v", err)
	}
	if got, _ := e.pullAll(t, "app:v1"); got != firstDigest {
		t.Fatalf("v1 is %s after a refused push, want %s", got, firstDigest)
	}
	// Other tags, and pushes by digest, are fine.
	e.push(t, "app:v2", image(t, layer(t, 1000)))

	// PutImage refuses the move with ECR's exception.
	other := image(t, layer(t, 10))
	e.push(t, "app@"+mustDigest(t, other), other)
	raw, _ := other.RawManifest()
	mt, _ := other.MediaType()
	_, err = e.api.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("app"), ImageTag: aws.String("v1"),
		ImageManifest: aws.String(string(raw)), ImageManifestMediaType: aws.String(string(mt))})
	var exists *types.ImageTagAlreadyExistsException
	if !asErr(err, &exists) {
		t.Fatalf("PutImage moving an immutable tag: %v", err)
	}

	// Concurrent pushes of different images to one new immutable tag:
	// exactly one wins, and the tag stays on it.
	var wg sync.WaitGroup
	errs := make([]error, 6)
	imgs := make([]v1.Image, len(errs))
	for i := range imgs {
		imgs[i] = image(t, layer(t, 500))
	}
	for i := range errs {
		wg.Go(func() { errs[i] = remote.Write(e.ref(t, "app:race"), imgs[i], e.remote()...) })
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		if err == nil {
			if won >= 0 {
				t.Fatalf("pushes %d and %d both set the immutable tag", won, i)
			}
			won = i
		} else if !strings.Contains(err.Error(), "TAG_INVALID") {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no push won")
	}
	if got, _ := e.pullAll(t, "app:race"); got.String() != mustDigest(t, imgs[won]) {
		t.Fatalf("race tag is %s, want the winner's %s", got, mustDigest(t, imgs[won]))
	}

	if _, err := e.api.PutImageTagMutability(ctx, &ecr.PutImageTagMutabilityInput{RepositoryName: aws.String("app"),
		ImageTagMutability: types.ImageTagMutabilityMutable}); err != nil {
		t.Fatal(err)
	}
	e.push(t, "app:v1", image(t, layer(t, 1000)))
}

// TestConcurrentPushesShareLayer: many clients push images that share a
// large layer, to one repository and to several, at once; all succeed and
// every image pulls back whole.
func TestConcurrentPushesShareLayer(t *testing.T) {
	t.Parallel()
	e := setup(t)
	shared := layer(t, 8<<20)
	const n = 8
	for i := range 3 {
		e.createRepo(t, fmt.Sprintf("repo%d", i), "")
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	want := make([]v1.Hash, n)
	for i := range n {
		img := image(t, shared, layer(t, 4096))
		want[i], _ = img.Digest()
		wg.Go(func() {
			errs[i] = remote.Write(e.ref(t, fmt.Sprintf("repo%d:img%d", i%3, i)), img, e.remote()...)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("push %d: %v", i, err)
		}
	}
	for i := range n {
		if got, err := e.pullAll(t, fmt.Sprintf("repo%d:img%d", i%3, i)); err != nil || got != want[i] {
			t.Errorf("pull %d: %s, %v; want %s", i, got, err, want[i])
		}
	}
}

// TestDeleteKeepsSharedLayers: deleting an image, or a whole repository,
// never takes a layer from an image that still uses it, in the same
// repository or another.
func TestDeleteKeepsSharedLayers(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	shared := layer(t, 1<<20)
	e.createRepo(t, "aa", "")
	e.createRepo(t, "bb", "")
	e.createRepo(t, "aa/nested", "")
	one := e.push(t, "aa:one", image(t, shared, layer(t, 100)))
	two := e.push(t, "aa:two", image(t, shared, layer(t, 100)))
	three := e.push(t, "bb:three", image(t, shared))
	nested := e.push(t, "aa/nested:x", image(t, shared))

	out, err := e.api.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("aa"),
		ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(one.String())}}})
	if err != nil || len(out.Failures) != 0 || len(out.ImageIds) != 1 {
		t.Fatalf("BatchDeleteImage: %+v, %v", out, err)
	}
	if _, err := e.pullAll(t, "aa:one"); err == nil {
		t.Fatal("a deleted image still pulls")
	}
	for ref, want := range map[string]v1.Hash{"aa:two": two, "bb:three": three, "aa/nested:x": nested} {
		if got, err := e.pullAll(t, ref); err != nil || got != want {
			t.Fatalf("%s after deleting a:one: %s, %v", ref, got, err)
		}
	}
	// A whole repository, forced; the nested one is not part of it.
	if _, err := e.api.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("aa"), Force: true}); err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]v1.Hash{"bb:three": three, "aa/nested:x": nested} {
		if got, err := e.pullAll(t, ref); err != nil || got != want {
			t.Fatalf("%s after deleting repository aa: %s, %v", ref, got, err)
		}
	}
	// The name starts afresh.
	e.createRepo(t, "aa", "")
	if imgs, err := e.api.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String("aa")}); err != nil || len(imgs.ImageIds) != 0 {
		t.Fatalf("re-created repository lists %v, %v", imgs, err)
	}
}

func mustDigest(t testing.TB, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
