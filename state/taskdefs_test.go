package state_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/testcluster"
	"github.com/gantry-dev/gantry/state"
)

var scope = ecs.Scope{Partition: "aws", Region: testcluster.Region, AccountID: testcluster.AccountID}

func register(t *testing.T, s *state.Store, family string) *ecs.TaskDefinitionRecord {
	t.Helper()
	rec := &ecs.TaskDefinitionRecord{TaskDefinition: ecs.TaskDefinition{Family: family}}
	out, err := s.RegisterTaskDefinition(context.Background(), rec, func(rev int32) string { return scope.TaskDefinitionARN(family, rev) })
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func listAll(t *testing.T, s *state.Store, status ecs.TaskDefinitionStatus, family string, desc bool, page int) []string {
	t.Helper()
	var out []string
	after := ""
	for {
		ids, next, err := s.ListTaskDefinitions(context.Background(), status, family, desc, after, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			out = append(out, fmt.Sprintf("%s:%d", id.Family, id.Revision))
		}
		if next == "" {
			return out
		}
		after = next
	}
}

func families(t *testing.T, s *state.Store, prefix string, status ecs.TaskDefinitionFamilyStatus, page int) []string {
	t.Helper()
	var out []string
	after := ""
	for {
		fs, next, err := s.ListTaskDefinitionFamilies(context.Background(), prefix, status, after, page)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fs...)
		if next == "" {
			return out
		}
		after = next
	}
}

// TestRegisterTaskDefinitionConcurrent: concurrent registrations of one
// family get distinct, consecutive revisions, and none is lost, both within
// one Store and across Stores sharing an etcd (as several gantry servers do;
// each Store serialises only its own writers).
func TestRegisterTaskDefinitionConcurrent(t *testing.T) {
	t.Parallel()
	s := testcluster.Start(t).Server.Store()
	servers := []*state.Store{s, state.New(s.Client()), state.New(s.Client())}
	const n = 24
	revs := make(chan int32, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s := servers[i%len(servers)]
			rec := &ecs.TaskDefinitionRecord{TaskDefinition: ecs.TaskDefinition{Family: "busy"}}
			out, err := s.RegisterTaskDefinition(context.Background(), rec, func(rev int32) string { return scope.TaskDefinitionARN("busy", rev) })
			if err != nil {
				t.Error(err)
				return
			}
			if out.TaskDefinitionARN != scope.TaskDefinitionARN("busy", out.Revision) {
				t.Errorf("revision %d has ARN %s", out.Revision, out.TaskDefinitionARN)
			}
			revs <- out.Revision
		})
	}
	wg.Wait()
	close(revs)
	var got []int
	for r := range revs {
		got = append(got, int(r))
	}
	sort.Ints(got)
	for i, r := range got {
		if r != i+1 {
			t.Fatalf("revisions = %v, want 1..%d each once", got, n)
		}
	}
	if l := listAll(t, s, ecs.TaskDefinitionStatusActive, "busy", false, 7); len(l) != n {
		t.Errorf("listed %d ACTIVE revisions, want %d", len(l), n)
	}
	if rec, err := s.LatestActiveTaskDefinition(context.Background(), "busy"); err != nil || rec.Revision != n {
		t.Errorf("latest = %v, %v; want revision %d", rec, err, n)
	}
}

func TestTaskDefinitionLifecycle(t *testing.T) {
	t.Parallel()
	s := testcluster.Start(t).Server.Store()
	ctx := context.Background()
	for range 3 {
		register(t, s, "app")
	}
	at := time.Unix(1700000000, 0)

	// Deregister the newest: latest ACTIVE falls back to revision 2.
	rec, err := s.DeregisterTaskDefinition(ctx, "app", 3, at)
	if err != nil || rec.Status != ecs.TaskDefinitionStatusInactive || !rec.DeregisteredAt.Equal(at) {
		t.Fatalf("deregister = %+v, %v", rec, err)
	}
	if rec, err := s.LatestActiveTaskDefinition(ctx, "app"); err != nil || rec.Revision != 2 {
		t.Errorf("latest after deregistering 3 = %v, %v", rec, err)
	}
	// Deregistering again changes nothing.
	if again, err := s.DeregisterTaskDefinition(ctx, "app", 3, at.Add(time.Hour)); err != nil || !again.DeregisteredAt.Equal(at) {
		t.Errorf("second deregister = %+v, %v", again, err)
	}
	// Only INACTIVE revisions can be deleted.
	if _, err := s.DeleteTaskDefinition(ctx, "app", 1, at); !errors.Is(err, state.ErrTaskDefinitionActive) {
		t.Errorf("delete ACTIVE = %v, want ErrTaskDefinitionActive", err)
	}
	rec, err = s.DeleteTaskDefinition(ctx, "app", 3, at)
	if err != nil || rec.Status != ecs.TaskDefinitionStatusDeleteInProgress || !rec.DeleteRequestedAt.Equal(at) {
		t.Fatalf("delete = %+v, %v", rec, err)
	}
	if _, err := s.DeleteTaskDefinition(ctx, "app", 9, at); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("delete missing = %v", err)
	}
	if got, want := listAll(t, s, ecs.TaskDefinitionStatusActive, "", false, 100), []string{"app:1", "app:2"}; !slices.Equal(got, want) {
		t.Errorf("ACTIVE = %v, want %v", got, want)
	}
	if got := listAll(t, s, ecs.TaskDefinitionStatusInactive, "", false, 100); len(got) != 0 {
		t.Errorf("INACTIVE = %v", got)
	}
	if got, want := listAll(t, s, ecs.TaskDefinitionStatusDeleteInProgress, "", false, 100), []string{"app:3"}; !slices.Equal(got, want) {
		t.Errorf("DELETE_IN_PROGRESS = %v, want %v", got, want)
	}

	// A family with no ACTIVE revision is INACTIVE; numbering continues.
	for _, r := range []int32{1, 2} {
		if _, err := s.DeregisterTaskDefinition(ctx, "app", r, at); err != nil {
			t.Fatal(err)
		}
	}
	register(t, s, "other")
	if got, want := families(t, s, "", ecs.TaskDefinitionFamilyStatusInactive, 1), []string{"app"}; !slices.Equal(got, want) {
		t.Errorf("INACTIVE families = %v, want %v", got, want)
	}
	if got, want := families(t, s, "", ecs.TaskDefinitionFamilyStatusActive, 1), []string{"other"}; !slices.Equal(got, want) {
		t.Errorf("ACTIVE families = %v, want %v", got, want)
	}
	if _, err := s.LatestActiveTaskDefinition(ctx, "app"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("latest of inactive family = %v", err)
	}
	if rec := register(t, s, "app"); rec.Revision != 4 {
		t.Errorf("next revision = %d, want 4", rec.Revision)
	}
}

// TestListTaskDefinitionsOrder: key order is ECS's list order, family by
// family ("web" before "web-api") and revision by revision (2 before 10).
func TestListTaskDefinitionsOrder(t *testing.T) {
	t.Parallel()
	s := testcluster.Start(t).Server.Store()
	for range 10 {
		register(t, s, "web")
	}
	for _, f := range []string{"web-api", "web_x", "Web", "a"} {
		register(t, s, f)
	}
	asc := []string{"Web:1", "a:1"}
	for i := 1; i <= 10; i++ {
		asc = append(asc, fmt.Sprintf("web:%d", i))
	}
	asc = append(asc, "web-api:1", "web_x:1")
	for _, page := range []int{1, 3, 100} {
		if got := listAll(t, s, ecs.TaskDefinitionStatusActive, "", false, page); !slices.Equal(got, asc) {
			t.Errorf("ASC page %d = %v\nwant %v", page, got, asc)
		}
		desc := slices.Clone(asc)
		slices.Reverse(desc)
		if got := listAll(t, s, ecs.TaskDefinitionStatusActive, "", true, page); !slices.Equal(got, desc) {
			t.Errorf("DESC page %d = %v\nwant %v", page, got, desc)
		}
		if got := listAll(t, s, ecs.TaskDefinitionStatusActive, "web", true, page); len(got) != 10 || got[0] != "web:10" {
			t.Errorf("family web DESC page %d = %v", page, got)
		}
	}
	if got, want := families(t, s, "web", ecs.TaskDefinitionFamilyStatusAll, 2), []string{"web", "web-api", "web_x"}; !slices.Equal(got, want) {
		t.Errorf("families with prefix web = %v, want %v", got, want)
	}
}

// TestTaskDefinitionCountsUnderConcurrency: registrations and
// deregistrations racing on one family leave the family's ACTIVE count
// equal to its ACTIVE index keys.
func TestTaskDefinitionCountsUnderConcurrency(t *testing.T) {
	t.Parallel()
	s := testcluster.Start(t).Server.Store()
	ctx := context.Background()
	for range 10 {
		register(t, s, "race")
	}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if _, err := s.DeregisterTaskDefinition(ctx, "race", int32(i+1), time.Now()); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() { register(t, s, "race") })
	}
	wg.Wait()
	active := listAll(t, s, ecs.TaskDefinitionStatusActive, "race", false, 100)
	if len(active) != 10 || active[0] != "race:11" {
		t.Errorf("ACTIVE = %v", active)
	}
	// All of the family's revisions deregistered: it must list as INACTIVE.
	for r := 11; r <= 20; r++ {
		if _, err := s.DeregisterTaskDefinition(ctx, "race", int32(r), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if got := families(t, s, "", ecs.TaskDefinitionFamilyStatusActive, 10); len(got) != 0 {
		t.Errorf("ACTIVE families = %v, want none", got)
	}
	if got := families(t, s, "", ecs.TaskDefinitionFamilyStatusInactive, 10); !slices.Equal(got, []string{"race"}) {
		t.Errorf("INACTIVE families = %v", got)
	}
}
