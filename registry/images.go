package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"time"

	"github.com/distribution/distribution/v3"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-dev/gantry/ecr"
	"github.com/gantry-dev/gantry/internal/awsproto"
)

// The ECR API's view of images, read from and written to the registry's
// storage. The distribution storage layout (/docker/registry/v2/...) is the
// format every distribution release reads and writes; listing walks it
// directly because that yields each manifest's push time with its digest.
const storageRoot = "/docker/registry/v2"

func repoPath(name string) string      { return storageRoot + "/repositories/" + name }
func revisionsPath(name string) string { return repoPath(name) + "/_manifests/revisions" }

// noURLs refuses manifests with foreign-layer URLs, as the embedded
// application does by default.
var noURLs = regexp.MustCompile("^$")

var errNotFound = errors.New("not found")

// Image is one image manifest of a repository as the storage knows it.
type Image struct {
	Digest   string
	Tags     []string // sorted
	PushedAt time.Time
}

// Images lists a repository's images in digest order, with their tags. A
// repository with nothing pushed has none.
func (r *Registry) Images(ctx context.Context, repo string) ([]Image, error) {
	pushed := map[string]time.Time{}
	err := r.driver.Walk(ctx, revisionsPath(repo), func(fi storagedriver.FileInfo) error {
		if d, ok := revisionDigest(fi); ok {
			pushed[d] = fi.ModTime()
		}
		return nil
	})
	if err != nil && !isPathNotFound(err) {
		return nil, err
	}
	if len(pushed) == 0 {
		return nil, nil
	}
	tags, err := r.tags(ctx, repo)
	if err != nil {
		return nil, err
	}
	out := make([]Image, 0, len(pushed))
	for d, at := range pushed {
		t := tags[d]
		slices.Sort(t)
		out = append(out, Image{Digest: d, Tags: t, PushedAt: at})
	}
	slices.SortFunc(out, func(a, b Image) int { return cmpString(a.Digest, b.Digest) })
	return out, nil
}

// HasImages reports whether anything was pushed to repo and not deleted.
func (r *Registry) HasImages(ctx context.Context, repo string) (bool, error) {
	found := false
	err := r.driver.Walk(ctx, revisionsPath(repo), func(fi storagedriver.FileInfo) error {
		if _, ok := revisionDigest(fi); ok {
			found = true
			return storagedriver.ErrFilledBuffer
		}
		return nil
	})
	if err != nil && !isPathNotFound(err) && !errors.Is(err, storagedriver.ErrFilledBuffer) {
		return false, err
	}
	return found, nil
}

// revisionDigest recognises ".../_manifests/revisions/<alg>/<hex>/link".
func revisionDigest(fi storagedriver.FileInfo) (string, bool) {
	if fi.IsDir() || path.Base(fi.Path()) != "link" {
		return "", false
	}
	dir := path.Dir(fi.Path())
	d := digest.NewDigestFromEncoded(digest.Algorithm(path.Base(path.Dir(dir))), path.Base(dir))
	if d.Validate() != nil {
		return "", false
	}
	return d.String(), true
}

// tags maps each digest of repo to the tags that name it.
func (r *Registry) tags(ctx context.Context, repo string) (map[string][]string, error) {
	rp, err := r.repository(ctx, repo)
	if err != nil {
		return nil, err
	}
	ts := rp.Tags(ctx)
	all, err := ts.All(ctx)
	if err != nil {
		var unknown distribution.ErrRepositoryUnknown
		if errors.As(err, &unknown) || isPathNotFound(err) {
			return map[string][]string{}, nil
		}
		return nil, err
	}
	out := make(map[string][]string, len(all))
	for _, t := range all {
		desc, err := ts.Get(ctx, t)
		if err != nil {
			var unknown distribution.ErrTagUnknown
			if errors.As(err, &unknown) {
				continue // untagged meanwhile
			}
			return nil, err
		}
		out[desc.Digest.String()] = append(out[desc.Digest.String()], t)
	}
	return out, nil
}

// TagDigest returns the digest tag names in repo, or errNotFound.
func (r *Registry) TagDigest(ctx context.Context, repo, tag string) (string, error) {
	rp, err := r.repository(ctx, repo)
	if err != nil {
		return "", err
	}
	desc, err := rp.Tags(ctx).Get(ctx, tag)
	if err != nil {
		var unknown distribution.ErrTagUnknown
		if errors.As(err, &unknown) || isPathNotFound(err) {
			return "", errNotFound
		}
		return "", err
	}
	return desc.Digest.String(), nil
}

// IsNotFound reports whether err says an image or tag does not exist.
func IsNotFound(err error) bool { return errors.Is(err, errNotFound) }

// Manifest is an image manifest with what DescribeImages reports of it.
type Manifest struct {
	Digest            string
	MediaType         string
	ArtifactMediaType string // the config's media type, or the artifactType
	Payload           []byte
	// Size is ECR's imageSizeInBytes: the sum of the layers' (compressed)
	// sizes, or for an index the largest of its manifests' sizes.
	Size int64
	// Children are the manifests an index lists.
	Children []string
}

// manifestDoc is the part of any manifest or index the registry reads.
type manifestDoc struct {
	MediaType    string          `json:"mediaType"`
	ArtifactType string          `json:"artifactType"`
	Config       v1.Descriptor   `json:"config"`
	Layers       []v1.Descriptor `json:"layers"`
	Manifests    []v1.Descriptor `json:"manifests"`
}

// Manifest reads one manifest of repo by digest, or errNotFound.
func (r *Registry) Manifest(ctx context.Context, repo, dgst string) (*Manifest, error) {
	m, err := r.manifest(ctx, repo, dgst)
	if err != nil || len(m.Children) == 0 {
		return m, err
	}
	for _, c := range m.Children {
		child, err := r.manifest(ctx, repo, c)
		if IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		m.Size = max(m.Size, child.Size)
	}
	return m, nil
}

func (r *Registry) manifest(ctx context.Context, repo, dgst string) (*Manifest, error) {
	d, err := digest.Parse(dgst)
	if err != nil {
		return nil, errNotFound
	}
	rp, err := r.repository(ctx, repo)
	if err != nil {
		return nil, err
	}
	ms, err := rp.Manifests(ctx)
	if err != nil {
		return nil, err
	}
	man, err := ms.Get(ctx, d)
	if err != nil {
		var unknown distribution.ErrManifestUnknownRevision
		if errors.As(err, &unknown) || isPathNotFound(err) || errors.Is(err, distribution.ErrBlobUnknown) {
			return nil, errNotFound
		}
		return nil, err
	}
	mt, payload, err := man.Payload()
	if err != nil {
		return nil, err
	}
	var doc manifestDoc
	if err := json.Unmarshal(payload, &doc); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", dgst, err)
	}
	out := &Manifest{Digest: dgst, MediaType: mt, Payload: payload, ArtifactMediaType: doc.Config.MediaType}
	if doc.ArtifactType != "" {
		out.ArtifactMediaType = doc.ArtifactType
	}
	for _, l := range doc.Layers {
		out.Size += l.Size
	}
	for _, c := range doc.Manifests {
		out.Children = append(out.Children, c.Digest.String())
	}
	return out, nil
}

// Untag removes a tag from repo; the image it named stays.
func (r *Registry) Untag(ctx context.Context, repo, tag string) error {
	rp, err := r.repository(ctx, repo)
	if err != nil {
		return err
	}
	if err := rp.Tags(ctx).Untag(ctx, tag); err != nil && !isPathNotFound(err) {
		return err
	}
	return nil
}

// DeleteManifest deletes an image manifest and every tag naming it. Its
// layers stay: other images may use them (docs/registry.md).
func (r *Registry) DeleteManifest(ctx context.Context, repo, dgst string) error {
	d, err := digest.Parse(dgst)
	if err != nil {
		return errNotFound
	}
	tags, err := r.tags(ctx, repo)
	if err != nil {
		return err
	}
	for _, t := range tags[dgst] {
		if err := r.Untag(ctx, repo, t); err != nil {
			return err
		}
	}
	rp, err := r.repository(ctx, repo)
	if err != nil {
		return err
	}
	ms, err := rp.Manifests(ctx)
	if err != nil {
		return err
	}
	if err := ms.Delete(ctx, d); err != nil {
		var unknown distribution.ErrManifestUnknownRevision
		if errors.As(err, &unknown) || isPathNotFound(err) || errors.Is(err, distribution.ErrBlobUnknown) {
			return errNotFound
		}
		return err
	}
	return nil
}

// RemoveRepository deletes everything stored for repo: its manifests, tags,
// layer links and unfinished uploads. Blobs stay (other repositories may
// link them), and so do repositories nested under the name ("repo/sub"),
// which distribution's own RepositoryRemover would delete with it.
func (r *Registry) RemoveRepository(ctx context.Context, repo string) error {
	for _, sub := range []string{"_manifests", "_layers", "_uploads"} {
		if err := r.driver.Delete(ctx, repoPath(repo)+"/"+sub); err != nil && !isPathNotFound(err) {
			return fmt.Errorf("remove %s of %s: %w", sub, repo, err)
		}
	}
	return nil
}

// PutImage stores a manifest, as ECR's PutImage does, under tag if one is
// given: the blobs it references must be in the repository already; an
// immutable tag may not move; storing what is already there is ECR's
// ImageAlreadyExistsException. It returns the manifest's digest.
func (r *Registry) PutImage(ctx context.Context, repo string, mutability ecr.ImageTagMutability,
	filters []ecr.ImageTagMutabilityExclusionFilter, tag, mediaType string, payload []byte) (string, error) {
	if mediaType == "" {
		var doc manifestDoc
		if json.Unmarshal(payload, &doc) == nil {
			mediaType = doc.MediaType
		}
	}
	man, desc, err := distribution.UnmarshalManifest(mediaType, payload)
	if err != nil {
		return "", ecr.InvalidParameter("Invalid parameter at 'imageManifest' failed to satisfy constraint: 'Invalid JSON syntax or manifest': %v", err)
	}
	dgst := desc.Digest.String()
	if tag != "" {
		unlock, err := r.store.LockTag(ctx, repo, tag)
		if err != nil {
			return "", err
		}
		defer unlock()
		cur, err := r.TagDigest(ctx, repo, tag)
		switch {
		case IsNotFound(err):
		case err != nil:
			return "", err
		case cur == dgst:
			return "", ecr.ImageAlreadyExists(dgst, tag, repo, r.scope.AccountID)
		case ecr.TagImmutable(mutability, filters, tag):
			return "", ecr.ImageTagAlreadyExists(tag, repo)
		}
	}
	rp, err := r.repository(ctx, repo)
	if err != nil {
		return "", err
	}
	ms, err := rp.Manifests(ctx)
	if err != nil {
		return "", err
	}
	if tag == "" {
		if ok, err := ms.Exists(ctx, desc.Digest); err != nil {
			return "", err
		} else if ok {
			return "", ecr.ImageAlreadyExists(dgst, "null", repo, r.scope.AccountID)
		}
	}
	if _, err := ms.Put(ctx, man); err != nil {
		return "", putError(err)
	}
	if tag != "" {
		if err := rp.Tags(ctx).Tag(ctx, tag, desc); err != nil {
			return "", err
		}
	}
	return dgst, nil
}

// putError turns distribution's verification errors into ECR's.
func putError(err error) error {
	var ver distribution.ErrManifestVerification
	if !errors.As(err, &ver) {
		return err
	}
	for _, e := range ver {
		var blob distribution.ErrManifestBlobUnknown
		if errors.As(e, &blob) {
			return awsErr(ecr.ErrCodeLayersNotFoundException, "The image manifest references blob %s, which is not in the repository", blob.Digest)
		}
		var rev distribution.ErrManifestUnknownRevision
		if errors.As(e, &rev) {
			return awsErr(ecr.ErrCodeReferencedImagesNotFoundException, "The image index references manifest %s, which is not in the repository", rev.Revision)
		}
	}
	return ecr.InvalidParameter("Invalid parameter at 'imageManifest': %v", err)
}

func (r *Registry) repository(ctx context.Context, name string) (distribution.Repository, error) {
	n, err := reference.WithName(name)
	if err != nil {
		return nil, fmt.Errorf("repository name %q: %w", name, err)
	}
	return r.ns.Repository(ctx, n)
}

func isPathNotFound(err error) bool {
	var pnf storagedriver.PathNotFoundError
	return errors.As(err, &pnf)
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func awsErr(code, format string, args ...any) error {
	return awsproto.Errorf(code, format, args...)
}
