package registry

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/distribution/distribution/v3/registry/api/errcode"
	v2 "github.com/distribution/distribution/v3/registry/api/v2"
	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"

	"github.com/gantry-dev/gantry/ecr"
	"github.com/gantry-dev/gantry/state"
)

// maxManifestBytes is the embedded application's own limit on a manifest
// body; the front reads at most this much to check a tag.
const maxManifestBytes = 4 << 20

// ServeHTTP answers /v2/: authenticate, check the repository and the
// operation against ECR's rules, then hand the request to the embedded
// distribution application.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	acc, err := r.authenticate(req)
	if err != nil {
		r.authFailed(w, err)
		return
	}
	var m mux.RouteMatch
	if !r.router.Match(req, &m) || m.Route == nil {
		serveError(w, unroutable(req.URL.Path))
		return
	}
	route, name := m.Route.GetName(), m.Vars["name"]
	if !slices.Contains(routeMethods[route], req.Method) {
		w.Header().Set("Allow", strings.Join(routeMethods[route], ", "))
		serveError(w, errcode.ErrorCodeUnsupported.WithMessage(req.Method+" is not supported here"))
		return
	}
	switch route {
	case v2.RouteNameBase:
		r.app.ServeHTTP(w, req)
		return
	case v2.RouteNameCatalog:
		if acc != accessPush {
			serveError(w, errcode.ErrorCodeDenied.WithMessage("agent credentials cannot list repositories"))
			return
		}
		r.app.ServeHTTP(w, req)
		return
	}

	write := req.Method != http.MethodGet && req.Method != http.MethodHead
	if write && acc != accessPush {
		serveError(w, errcode.ErrorCodeDenied.WithMessage("agent credentials can only pull images"))
		return
	}
	if route == v2.RouteNameBlob && req.Method == http.MethodDelete {
		// Unlinking a layer from a repository would break every image in it
		// that uses the layer; ECR has no such operation either.
		serveError(w, errcode.ErrorCodeUnsupported.WithMessage("blobs cannot be deleted; delete images with BatchDeleteImage"))
		return
	}
	rec, err := r.store.GetRepository(req.Context(), name)
	if errors.Is(err, state.ErrNotFound) {
		serveError(w, errcode.ErrorCodeNameUnknown.WithMessage(
			"The repository with name '"+name+"' does not exist in the registry with id '"+r.scope.AccountID+"'"))
		return
	}
	if err != nil {
		r.internal(w, err)
		return
	}
	if route == v2.RouteNameBlobUploadChunk {
		if err := checkUploadChunk(req); err != nil {
			serveError(w, err)
			return
		}
	}
	if route == v2.RouteNameBlobUpload && req.URL.Query().Has("from") {
		r.checkMountSource(req)
	}
	if route == v2.RouteNameManifest && req.Method == http.MethodPut {
		tag := m.Vars["reference"]
		if ecr.ValidImageTag(tag) && ecr.TagImmutable(rec.ImageTagMutability, rec.ImageTagMutabilityExclusionFilters, tag) {
			r.putImmutable(w, req, name, tag)
			return
		}
	}
	r.app.ServeHTTP(w, req)
}

// routeMethods are the methods each route answers (the embedded
// application would answer others with a plain-text 405).
var routeMethods = map[string][]string{
	v2.RouteNameBase:            {http.MethodGet, http.MethodHead},
	v2.RouteNameCatalog:         {http.MethodGet},
	v2.RouteNameTags:            {http.MethodGet},
	v2.RouteNameManifest:        {http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete},
	v2.RouteNameBlob:            {http.MethodGet, http.MethodHead, http.MethodDelete},
	v2.RouteNameBlobUpload:      {http.MethodPost},
	v2.RouteNameBlobUploadChunk: {http.MethodGet, http.MethodPatch, http.MethodPut, http.MethodDelete},
}

// checkMountSource drops a cross-repository mount from a repository that
// does not exist (any more): the client then uploads the blob as usual,
// rather than reaching leftovers of a deleted repository.
func (r *Registry) checkMountSource(req *http.Request) {
	q := req.URL.Query()
	if _, err := r.store.GetRepository(req.Context(), q.Get("from")); err == nil {
		return
	}
	q.Del("from")
	q.Del("mount")
	req.URL.RawQuery = q.Encode()
}

// putImmutable stores a manifest under a tag that may not move: under the
// tag's lock, a tag that already names another manifest is refused with
// ECR's message; the same manifest again is accepted (a retried push).
func (r *Registry) putImmutable(w http.ResponseWriter, req *http.Request, repo, tag string) {
	body, err := io.ReadAll(io.LimitReader(req.Body, maxManifestBytes+1))
	if err != nil {
		serveError(w, errcode.ErrorCodeManifestInvalid.WithDetail(err.Error()))
		return
	}
	if len(body) > maxManifestBytes {
		serveError(w, errcode.ErrorCodeManifestInvalid.WithMessage("manifest is larger than 4 MiB"))
		return
	}
	ctx := req.Context()
	unlock, err := r.store.LockTag(ctx, repo, tag)
	if err != nil {
		r.internal(w, err)
		return
	}
	defer unlock()
	cur, err := r.TagDigest(ctx, repo, tag)
	switch {
	case errors.Is(err, errNotFound):
	case err != nil:
		r.internal(w, err)
		return
	case cur != digest.FromBytes(body).String():
		serveError(w, errcode.ErrorCodeTagInvalid.WithMessage(ecr.TagImmutableMessage(tag, repo)))
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	r.app.ServeHTTP(w, req)
}

func (r *Registry) authFailed(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errExpired):
		serveError(w, errcode.ErrorCodeDenied.WithMessage(err.Error()))
	case errors.Is(err, errNoCredentials), errors.Is(err, errBadToken):
		w.Header().Set("WWW-Authenticate", `Basic realm="Gantry ECR",service="ecr.amazonaws.com"`)
		serveError(w, errcode.ErrorCodeUnauthorized.WithMessage(err.Error()))
	default:
		r.internal(w, err)
	}
}

func (r *Registry) internal(w http.ResponseWriter, err error) {
	r.log.Error("registry request", "err", err)
	serveError(w, errcode.ErrorCodeUnknown.WithMessage("internal error; see the Gantry server log"))
}

func serveError(w http.ResponseWriter, err error) {
	errcode.ServeJSON(w, err)
}

// unroutable explains a /v2/ path that names no route: a malformed tag or
// digest after a valid repository name, or else a malformed name.
func unroutable(p string) error {
	for _, sep := range []string{"/manifests/", "/blobs/"} {
		i := strings.LastIndex(p, sep)
		if i < 0 {
			continue
		}
		name, ref := strings.TrimPrefix(p[:i], "/v2/"), p[i+len(sep):]
		if ecr.ValidateRepositoryName(name) != nil {
			break
		}
		if sep == "/manifests/" && !strings.Contains(ref, ":") {
			return errcode.ErrorCodeTagInvalid.WithMessage("invalid tag: " + ref)
		}
		return errcode.ErrorCodeDigestInvalid.WithMessage("invalid digest: " + ref)
	}
	return errcode.ErrorCodeNameInvalid.WithMessage("invalid repository name, reference or path")
}

// contentRange is the form of an upload chunk's Content-Range: two offsets
// that fit an int64.
var contentRange = regexp.MustCompile(`^[0-9]{1,18}-[0-9]{1,18}$`)

// checkUploadChunk refuses what the embedded application would answer with
// a 500: a malformed Content-Range, a PATCH that is not a byte stream.
func checkUploadChunk(req *http.Request) error {
	if req.Method != http.MethodPatch && req.Method != http.MethodPut {
		return nil
	}
	if cr := req.Header.Get("Content-Range"); cr != "" && !contentRange.MatchString(cr) {
		return errcode.ErrorCodeRangeInvalid.WithMessage("Content-Range must be <start>-<end>")
	}
	if ct := req.Header.Get("Content-Type"); req.Method == http.MethodPatch && ct != "" && ct != "application/octet-stream" {
		return errcode.ErrorCodeBlobUploadInvalid.WithMessage("upload chunks must be application/octet-stream")
	}
	return nil
}
