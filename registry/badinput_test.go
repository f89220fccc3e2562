package registry_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/internal/testcluster"
)

// TestBadInput: malformed names, references, digests, ranges and page
// sizes get the OCI error for them, never a 5xx.
func TestBadInput(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.createRepo(t, "app", "")
	e.createRepo(t, "frozen", "IMMUTABLE")
	img := image(t, layer(t, 3000))
	d := e.push(t, "app:v1", img)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	blob := "/v2/app/blobs/" + ld.String()
	upload := e.startUpload(t, "app")
	missing := "sha256:" + strings.Repeat("0", 64)
	unknownBlobManifest := `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",` +
		`"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"` + missing + `"},"layers":[]}`
	huge := bytes.Repeat([]byte(" "), 5<<20)

	for _, tc := range []struct {
		name, method, path string
		body               []byte
		hdr                []string
		status             int
		code               string // "" for HEAD (no body) or any error code
	}{
		{"UppercaseName", "GET", "/v2/App/manifests/v1", nil, nil, 400, "NAME_INVALID"},
		// net/http's mux sends unclean paths to their clean form.
		{"DoubleSlashName", "GET", "/v2/a//b/manifests/v1", nil, nil, 307, ""},
		{"DotDot", "GET", "/v2/app/../etc/manifests/v1", nil, nil, 307, ""},
		{"NoName", "GET", "/v2/_/manifests/v1", nil, nil, 400, "NAME_INVALID"},
		{"UnknownPath", "GET", "/v2/app/whatever", nil, nil, 400, "NAME_INVALID"},
		{"BadTag", "GET", "/v2/app/manifests/-v1", nil, nil, 400, "TAG_INVALID"},
		{"LongTag", "GET", "/v2/app/manifests/" + strings.Repeat("t", 129), nil, nil, 400, "TAG_INVALID"},
		{"UnknownTag", "GET", "/v2/app/manifests/nope", nil, nil, 404, "MANIFEST_UNKNOWN"},
		{"ShortDigest", "GET", "/v2/app/manifests/sha256:abc", nil, nil, 400, "DIGEST_INVALID"},
		{"BadDigestAlgorithm", "GET", "/v2/app/manifests/md5:" + strings.Repeat("a", 32), nil, nil, 400, "DIGEST_INVALID"},
		{"UppercaseDigest", "GET", "/v2/app/blobs/sha256:" + strings.Repeat("A", 64), nil, nil, 400, "DIGEST_INVALID"},
		{"BlobNotDigest", "GET", "/v2/app/blobs/latest", nil, nil, 400, "DIGEST_INVALID"},
		{"UnknownBlob", "GET", "/v2/app/blobs/" + missing, nil, nil, 404, "BLOB_UNKNOWN"},
		{"UnknownManifestDigest", "GET", "/v2/app/manifests/" + missing, nil, nil, 404, "MANIFEST_UNKNOWN"},
		{"RangeBeyondEnd", "GET", blob, nil, []string{"Range", "bytes=99999999-"}, 416, ""},
		{"RangeGarbage", "GET", blob, nil, []string{"Range", "bytes=zz-"}, 416, ""},
		{"RangeHuge", "GET", blob, nil, []string{"Range", "bytes=0-99999999999999999999999"}, 416, ""},
		{"TagsHugeN", "GET", "/v2/app/tags/list?n=99999999999999999999", nil, nil, 400, "PAGINATION_NUMBER_INVALID"},
		{"TagsNegativeN", "GET", "/v2/app/tags/list?n=-1", nil, nil, 400, "PAGINATION_NUMBER_INVALID"},
		{"TagsGarbageN", "GET", "/v2/app/tags/list?n=ten", nil, nil, 400, "PAGINATION_NUMBER_INVALID"},
		{"CatalogHugeN", "GET", "/v2/_catalog?n=99999999999999999999", nil, nil, 400, "PAGINATION_NUMBER_INVALID"},
		{"CatalogOverMaxN", "GET", "/v2/_catalog?n=1001", nil, nil, 400, "PAGINATION_NUMBER_INVALID"},
		{"UploadBadDigest", "PUT", upload + "&digest=sha256:xyz", []byte("x"), nil, 400, "DIGEST_INVALID"},
		{"UploadNoDigest", "PUT", upload, []byte("x"), nil, 400, "DIGEST_INVALID"},
		{"UploadRangeGap", "PATCH", upload, []byte("abc"), []string{"Content-Range", "100-102"}, 416, "RANGE_INVALID"},
		{"UploadRangeGarbage", "PATCH", upload, []byte("abc"), []string{"Content-Range", "a-b"}, 416, "RANGE_INVALID"},
		{"UploadRangeOverflow", "PATCH", upload, []byte("abc"), []string{"Content-Range", "0-99999999999999999999"}, 416, "RANGE_INVALID"},
		{"UploadRangeBackwards", "PATCH", upload, []byte("abc"), []string{"Content-Range", "2-0"}, 416, "RANGE_INVALID"},
		{"UploadRangeWrongLength", "PATCH", upload, []byte("abc"), []string{"Content-Range", "0-9"}, 400, "SIZE_INVALID"},
		{"UploadNotBytes", "PATCH", upload, []byte("abc"), []string{"Content-Type", "text/plain"}, 404, "BLOB_UPLOAD_INVALID"},
		{"UploadPutRangeGarbage", "PUT", upload + "&digest=" + missing, []byte("abc"), []string{"Content-Range", "x"}, 416, "RANGE_INVALID"},
		{"UploadUnknownID", "PATCH", "/v2/app/blobs/uploads/0123", []byte("abc"), nil, 404, "BLOB_UPLOAD_INVALID"},
		{"UploadForgedState", "PATCH", "/v2/app/blobs/uploads/0123?_state=Zm9v", []byte("abc"), nil, 404, "BLOB_UPLOAD_INVALID"},
		{"ManifestGarbage", "PUT", "/v2/app/manifests/x", []byte("{not json"), []string{"Content-Type", "application/vnd.docker.distribution.manifest.v2+json"}, 400, "MANIFEST_INVALID"},
		{"ManifestUnknownType", "PUT", "/v2/app/manifests/x", []byte("{}"), []string{"Content-Type", "text/plain"}, 400, "MANIFEST_INVALID"},
		{"ManifestUnknownBlobs", "PUT", "/v2/app/manifests/x", []byte(unknownBlobManifest), []string{"Content-Type", "application/vnd.docker.distribution.manifest.v2+json"}, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"ManifestTooLarge", "PUT", "/v2/app/manifests/x", huge, []string{"Content-Type", "application/vnd.docker.distribution.manifest.v2+json"}, 400, "MANIFEST_INVALID"},
		{"ManifestTooLargeImmutable", "PUT", "/v2/frozen/manifests/x", huge, []string{"Content-Type", "application/vnd.docker.distribution.manifest.v2+json"}, 400, "MANIFEST_INVALID"},
		{"ManifestDigestMismatch", "PUT", "/v2/app/manifests/" + missing, []byte(unknownBlobManifest), []string{"Content-Type", "application/vnd.docker.distribution.manifest.v2+json"}, 400, ""},
		{"DeleteBlob", "DELETE", blob, nil, nil, 405, "UNSUPPORTED"},
		{"DeleteUnknownManifest", "DELETE", "/v2/app/manifests/" + missing, nil, nil, 404, "MANIFEST_UNKNOWN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != nil {
				body = bytes.NewReader(tc.body)
			}
			resp := e.do(t, tc.method, tc.path, body, tc.hdr...)
			if tc.code == "" {
				if resp.StatusCode != tc.status {
					b, _ := io.ReadAll(resp.Body)
					t.Fatalf("%s %s: %d %s; want %d", tc.method, tc.path, resp.StatusCode, b, tc.status)
				}
				return
			}
			wantError(t, resp, tc.status, tc.code)
		})
	}
	// Nothing above changed the image.
	if got, err := e.pullAll(t, "app:v1"); err != nil || got != d {
		t.Fatalf("app:v1 after the bad requests: %s, %v", got, err)
	}
}

// FuzzRegistryRequest sends arbitrary methods, paths, queries, headers and
// bodies to /v2/ with valid credentials, through the real handler and
// storage: never a panic or a 5xx, and every error body is OCI-shaped.
func FuzzRegistryRequest(f *testing.F) {
	for _, s := range []struct{ method, path, hdr, body string }{
		{"GET", "/v2/app/manifests/v1", "", ""},
		{"GET", "/v2/app/tags/list?n=1&last=a", "", ""},
		{"GET", "/v2/_catalog?n=5", "", ""},
		{"HEAD", "/v2/app/blobs/sha256:" + strings.Repeat("a", 64), "Range: bytes=0-1", ""},
		{"POST", "/v2/app/blobs/uploads/?mount=sha256:" + strings.Repeat("b", 64) + "&from=other", "", ""},
		{"POST", "/v2/app/blobs/uploads/?digest=sha256:" + strings.Repeat("c", 64), "", "abc"},
		{"PUT", "/v2/app/manifests/v2", "Content-Type: application/vnd.oci.image.manifest.v1+json", `{"schemaVersion":2}`},
		{"DELETE", "/v2/app/manifests/v1", "", ""},
		{"PATCH", "/v2/app/blobs/uploads/x?_state=y", "Content-Range: 0-0", "a"},
	} {
		f.Add(s.method, s.path, s.hdr, []byte(s.body))
	}
	e := setup(f)
	e.createRepo(f, "app", "")
	e.push(f, "app:v1", image(f, layer(f, 100)))
	h := e.Server.Handler()
	f.Fuzz(func(t *testing.T, method, path, hdr string, body []byte) {
		if !strings.HasPrefix(path, "/v2/") {
			path = "/v2/" + path
		}
		req, err := http.NewRequest(method, "http://"+e.host+"/", bytes.NewReader(body))
		if err != nil {
			return
		}
		req.URL.RawPath, req.URL.Path = "", ""
		if req.URL, err = req.URL.Parse(path); err != nil || !strings.HasPrefix(req.URL.Path, "/v2/") {
			return
		}
		req.RequestURI = req.URL.RequestURI()
		req.SetBasicAuth("AWS", e.token)
		if k, v, ok := strings.Cut(hdr, ": "); ok && k != "" && !strings.EqualFold(k, "Authorization") {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, hdr, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && method != http.MethodHead && rec.Code != http.StatusRequestedRangeNotSatisfiable {
			var oe ociError
			if err := json.Unmarshal(rec.Body.Bytes(), &oe); err != nil || len(oe.Errors) == 0 {
				t.Fatalf("%s %s: %d with a body that is not an OCI error: %q", method, path, rec.Code, rec.Body)
			}
		}
	})
}

var _ = testcluster.Region
