package awsproto

import (
	"encoding/json"
	"testing"
	"time"
)

func TestTimestampMarshal(t *testing.T) {
	for _, tc := range []struct {
		in   time.Time
		want string
	}{
		{time.Unix(1700000000, 123e6), "1700000000.123"},
		{time.Unix(1700000000, 0), "1700000000"},
		{time.Unix(1700000000, 100e6), "1700000000.1"},
		{time.Unix(1700000000, 5e6), "1700000000.005"},
		{time.Unix(1700000000, 123456789), "1700000000.123"}, // truncated to ms
		{time.Unix(0, 0), "0"},
		{time.Unix(-2, 500e6), "-1.5"},
	} {
		got, err := json.Marshal(Timestamp{tc.in})
		if err != nil || string(got) != tc.want {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestTimestampUnmarshal(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: `1700000000`, want: time.Unix(1700000000, 0)},
		{in: `1700000000.123`, want: time.Unix(1700000000, 123e6)},
		{in: `1.700000000123E9`, want: time.Unix(1700000000, 123e6)},
		{in: `1.7e9`, want: time.Unix(1700000000, 0)},
		{in: `-1.5`, want: time.Unix(-2, 500e6)},
		{in: `"2023-11-14T22:13:20Z"`, want: time.Unix(1700000000, 0)},
		{in: `"2023-11-14T22:13:20.123Z"`, want: time.Unix(1700000000, 123e6)},
		{in: `"2023-11-15T00:13:20+02:00"`, want: time.Unix(1700000000, 0)},
		{in: `null`, want: time.Time{}},
		{in: `"1700000000"`, wantErr: true},
		{in: `"yesterday"`, wantErr: true},
		{in: `true`, wantErr: true},
		{in: `{}`, wantErr: true},
		{in: `[]`, wantErr: true},
		{in: `1e400`, wantErr: true},
		{in: `1e1000000000`, wantErr: true},
		{in: `1e25`, wantErr: true},
	} {
		var ts Timestamp
		err := json.Unmarshal([]byte(tc.in), &ts)
		switch {
		case tc.wantErr && err == nil:
			t.Errorf("Unmarshal(%s) = %v; want an error", tc.in, ts.Time)
		case !tc.wantErr && err != nil:
			t.Errorf("Unmarshal(%s): %v", tc.in, err)
		case !tc.wantErr && !ts.Equal(tc.want):
			t.Errorf("Unmarshal(%s) = %v; want %v", tc.in, ts.Time, tc.want)
		}
	}
}

func TestTimestampOmitzero(t *testing.T) {
	type s struct {
		At Timestamp `json:"at,omitzero"`
	}
	got, _ := json.Marshal(s{})
	if string(got) != `{}` {
		t.Errorf("zero timestamp: got %s, want {}", got)
	}
	got, _ = json.Marshal(s{Timestamp{time.Unix(1700000000, 250e6)}})
	if string(got) != `{"at":1700000000.25}` {
		t.Errorf("got %s", got)
	}
}

func TestValidationError(t *testing.T) {
	if got, want := Missing(JoinPath(IndexPath("containerDefinitions", 0), "name")).Error(),
		"containerDefinitions[0].name: required member is missing"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := InvalidEnum("launchType", "FOO", []string{"EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"}).Error(),
		`launchType: "FOO" is not a valid value; expected one of EC2, FARGATE, EXTERNAL, MANAGED_INSTANCES`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
