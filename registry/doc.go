// Package registry is Gantry's built-in image registry: the OCI distribution
// API at /v2/ on the control plane's port, served by an embedded
// github.com/distribution/distribution/v3 application, behind a front that
// adds what ECR adds to a registry:
//
//   - authentication: every request carries Basic credentials, user "AWS"
//     and a token from ECR's GetAuthorizationToken (push and pull, 12 hours),
//     or an agent's instance token (pull only); nothing is anonymous;
//   - repositories exist only once CreateRepository stored them (state),
//     so a push to an unknown name is refused as ECR refuses it;
//   - immutable tags: a manifest PUT that would move such a tag is refused
//     (TAG_INVALID), checked and written under an etcd lock on the tag.
//
// It also answers the ECR API's questions about images (digests, tags,
// sizes, push times, manifests) from the registry's own storage, and
// deletes images and repositories there. It never deletes blobs: layers
// stay until a garbage collection Gantry does not run yet, so deleting an
// image can never take a layer from another (docs/registry.md).
//
// The embedded application's rough edges are handled here: its logrus
// output goes to slog, its panics on bad configuration become errors, its
// Prometheus endpoint stays off and its catalog is bounded.
package registry
