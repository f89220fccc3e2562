package ecr

import (
	"strings"
	"testing"
)

var testRegistry = Registry{AccountID: "123456789012", Region: "us-east-1", Host: "127.0.0.1:4747", Aliases: []string{"registry.example.com:4747"}}

func TestResolve(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		image, want string
		builtin     bool
	}{
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1", "127.0.0.1:4747/web:v1", true},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com/team/web", "127.0.0.1:4747/team/web", true},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com/web@" + d, "127.0.0.1:4747/web@" + d, true},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1@" + d, "127.0.0.1:4747/web:v1@" + d, true},
		{"123456789012.DKR.ECR.US-EAST-1.AMAZONAWS.COM/web:v1", "127.0.0.1:4747/web:v1", true},
		{"127.0.0.1:4747/web:v1", "127.0.0.1:4747/web:v1", true},
		{"registry.example.com:4747/web:v1", "127.0.0.1:4747/web:v1", true},
		// Someone else's ECR, another region, other registries: untouched.
		{"999999999999.dkr.ecr.us-east-1.amazonaws.com/web:v1", "999999999999.dkr.ecr.us-east-1.amazonaws.com/web:v1", false},
		{"123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:v1", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:v1", false},
		{"nginx:latest", "nginx:latest", false},
		{"library/nginx", "library/nginx", false},
		{"ghcr.io/a/b:c", "ghcr.io/a/b:c", false},
		{"127.0.0.1:4748/web", "127.0.0.1:4748/web", false},
		// Ours but malformed: left for the engine to refuse in its words.
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com/Web:v1", "123456789012.dkr.ecr.us-east-1.amazonaws.com/Web:v1", false},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com/", "123456789012.dkr.ecr.us-east-1.amazonaws.com/", false},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com/web:", "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:", false},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:xyz", "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:xyz", false},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com/a//b", "123456789012.dkr.ecr.us-east-1.amazonaws.com/a//b", false},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com/x", "123456789012.dkr.ecr.us-east-1.amazonaws.com/x", false}, // ECR names have 2+ characters
		{"", "", false},
	} {
		got, builtin := testRegistry.Resolve(tc.image)
		if got != tc.want || builtin != tc.builtin {
			t.Errorf("Resolve(%q) = %q, %v; want %q, %v", tc.image, got, builtin, tc.want, tc.builtin)
		}
	}
}

func TestRegistryFor(t *testing.T) {
	const arn = "arn:aws:ecs:eu-west-1:123456789012:container-instance/default/0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		url, host string
		err       bool
	}{
		{"http://127.0.0.1:4747", "127.0.0.1:4747", false},
		{"http://gantry.internal", "gantry.internal:80", false},
		{"https://gantry.internal", "gantry.internal", false},
		{"https://[::1]:4747/", "[::1]:4747", false},
		{"ftp://x", "", true},
		{"127.0.0.1:4747", "", true},
	} {
		r, err := RegistryFor(tc.url, arn)
		if (err != nil) != tc.err || r.Host != tc.host {
			t.Errorf("RegistryFor(%q) = %+v, %v", tc.url, r, err)
			continue
		}
		if !tc.err && (r.AccountID != "123456789012" || r.Region != "eu-west-1") {
			t.Errorf("RegistryFor(%q) = %+v", tc.url, r)
		}
	}
	if _, err := RegistryFor("http://x:1", "not-an-arn"); err == nil {
		t.Error("RegistryFor accepted a bad ARN")
	}
}

// FuzzResolve: whatever the input, Resolve does not panic; a reference it
// does not claim comes back unchanged; one it claims names Host, is a
// fixed point, and keeps everything after the registry host.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1", "127.0.0.1:4747/a/b@sha256:" + strings.Repeat("a", 64),
		"nginx", "", "/", "a/b/c:d@e", "123456789012.dkr.ecr.us-east-1.amazonaws.com/\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, image string) {
		got, builtin := testRegistry.Resolve(image)
		if !builtin {
			if got != image {
				t.Fatalf("Resolve(%q) changed an image it did not claim: %q", image, got)
			}
			return
		}
		if !strings.HasPrefix(got, testRegistry.Host+"/") {
			t.Fatalf("Resolve(%q) = %q, not on %s", image, got, testRegistry.Host)
		}
		_, rest, _ := strings.Cut(image, "/")
		if got != testRegistry.Host+"/"+rest {
			t.Fatalf("Resolve(%q) = %q, lost part of the reference", image, got)
		}
		if again, ok := testRegistry.Resolve(got); !ok || again != got {
			t.Fatalf("Resolve(%q) = %q, %v; want a fixed point", got, again, ok)
		}
	})
}
