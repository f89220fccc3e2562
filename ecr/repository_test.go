package ecr

import (
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/internal/awsproto"
)

func code(err error) string {
	if err == nil {
		return ""
	}
	return err.(*awsproto.Error).Code
}

func TestValidateRepositoryName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"web", true}, {"team/web", true}, {"a.b_c-d/e1", true}, {"ab", true}, {strings.Repeat("a", 256), true},
		{"a", false}, {strings.Repeat("a", 257), false}, {"Web", false}, {"web/", false}, {"/web", false},
		{"a//b", false}, {"a..b", false}, {"-web", false}, {"web-", false}, {"_manifests", false},
		{"a/_uploads", false}, {"web:v1", false}, {"we b", false}, {"wéb", false},
	} {
		err := ValidateRepositoryName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateRepositoryName(%q) = %v; want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && code(err) != ErrCodeInvalidParameterException {
			t.Errorf("ValidateRepositoryName(%q): code %s", tc.name, code(err))
		}
	}
}

func TestValidateRegistryID(t *testing.T) {
	const acct = "123456789012"
	for id, ok := range map[string]bool{"": true, acct: true, "210987654321": false, "12345": false, "abcdefghijkl": false} {
		if err := ValidateRegistryID(id, acct); (err == nil) != ok {
			t.Errorf("ValidateRegistryID(%q) = %v", id, err)
		}
	}
}

func TestValidateTags(t *testing.T) {
	many := make([]Tag, 51)
	for i := range many {
		many[i] = Tag{Key: strings.Repeat("k", i+1), Value: "v"}
	}
	for _, tc := range []struct {
		name string
		tags []Tag
		code string
	}{
		{"OK", []Tag{{Key: "team", Value: "a"}, {Key: "empty"}}, ""},
		{"TooMany", many, ErrCodeTooManyTagsException},
		{"Reserved", []Tag{{Key: "aws:x", Value: "v"}}, ErrCodeInvalidTagParameterException},
		{"LongKey", []Tag{{Key: strings.Repeat("k", 129), Value: "v"}}, ErrCodeInvalidTagParameterException},
		{"LongValue", []Tag{{Key: "k", Value: strings.Repeat("v", 257)}}, ErrCodeInvalidTagParameterException},
		{"Duplicate", []Tag{{Key: "k", Value: "1"}, {Key: "k", Value: "2"}}, ErrCodeInvalidTagParameterException},
	} {
		if got := code(ValidateTags(tc.tags)); got != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.code)
		}
	}
	got := MergeTags([]Tag{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}}, []Tag{{Key: "b", Value: "3"}, {Key: "c", Value: "4"}})
	if len(got) != 3 || got[1].Value != "3" || got[2].Key != "c" {
		t.Errorf("MergeTags = %v", got)
	}
}

func TestTagImmutable(t *testing.T) {
	f := []ImageTagMutabilityExclusionFilter{{FilterType: ImageTagMutabilityExclusionFilterTypeWildcard, Filter: "dev-*"},
		{FilterType: ImageTagMutabilityExclusionFilterTypeWildcard, Filter: "latest"}}
	for _, tc := range []struct {
		m    ImageTagMutability
		tag  string
		want bool
	}{
		{ImageTagMutabilityMutable, "v1", false},
		{ImageTagMutabilityImmutable, "v1", true},
		{ImageTagMutabilityImmutableWithExclusion, "v1", true},
		{ImageTagMutabilityImmutableWithExclusion, "latest", false},
		{ImageTagMutabilityImmutableWithExclusion, "dev-42", false},
		{ImageTagMutabilityMutableWithExclusion, "dev-42", true},
		{ImageTagMutabilityMutableWithExclusion, "v1", false},
		{"", "v1", false},
	} {
		if got := TagImmutable(tc.m, f, tc.tag); got != tc.want {
			t.Errorf("TagImmutable(%s, %q) = %v", tc.m, tc.tag, got)
		}
	}
	for _, tc := range []struct {
		m  ImageTagMutability
		f  []ImageTagMutabilityExclusionFilter
		ok bool
	}{
		{ImageTagMutabilityImmutable, nil, true},
		{ImageTagMutabilityImmutable, f, false},
		{ImageTagMutabilityImmutableWithExclusion, nil, false},
		{ImageTagMutabilityImmutableWithExclusion, f, true},
		{ImageTagMutabilityImmutableWithExclusion, []ImageTagMutabilityExclusionFilter{{Filter: "a[b"}}, false},
	} {
		if err := ValidateMutability(tc.m, tc.f); (err == nil) != tc.ok {
			t.Errorf("ValidateMutability(%s, %v) = %v", tc.m, tc.f, err)
		}
	}
}

func TestCheckImageID(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		id   ImageIdentifier
		code ImageFailureCode
	}{
		{ImageIdentifier{ImageTag: "v1"}, ""},
		{ImageIdentifier{ImageDigest: d}, ""},
		{ImageIdentifier{ImageDigest: d, ImageTag: "v1"}, ""},
		{ImageIdentifier{}, ImageFailureCodeMissingDigestAndTag},
		{ImageIdentifier{ImageDigest: "sha256:abc"}, ImageFailureCodeInvalidImageDigest},
		{ImageIdentifier{ImageDigest: "md5:" + strings.Repeat("a", 32)}, ImageFailureCodeInvalidImageDigest},
		{ImageIdentifier{ImageTag: ".hidden"}, ImageFailureCodeInvalidImageTag},
		{ImageIdentifier{ImageTag: strings.Repeat("t", 129)}, ImageFailureCodeInvalidImageTag},
	} {
		if got, _ := CheckImageID(tc.id); got != tc.code {
			t.Errorf("CheckImageID(%+v) = %q, want %q", tc.id, got, tc.code)
		}
	}
}
