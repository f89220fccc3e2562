package testimage_test

import (
	"context"
	"slices"
	"testing"

	"github.com/docker/docker/api/types/image"

	"github.com/gantry-dev/gantry/internal/testimage"
)

func TestBuild(t *testing.T) {
	ref := testimage.Build(t, "gantry-testapp:testimage-test")
	if ref != "gantry-testapp:testimage-test" {
		t.Fatalf("ref = %q", ref)
	}
	if again := testimage.Build(t, "gantry-testapp:testimage-test"); again != ref {
		t.Fatalf("second Build = %q", again)
	}
	c := testimage.Client(t)
	img, err := c.ImageInspect(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(img.Config.Entrypoint, []string{"/testapp"}) || img.Config.Labels[testimage.HashLabel] == "" {
		t.Fatalf("entrypoint %q, labels %v", img.Config.Entrypoint, img.Config.Labels)
	}
	t.Cleanup(func() { c.ImageRemove(context.Background(), ref, image.RemoveOptions{PruneChildren: true}) })
}
