package ecsapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gantry-dev/gantry/internal/testcluster"
)

// taskDefKeys summarises the task definition keys in etcd: how many there
// are and the newest modification, so any write shows.
func taskDefKeys(t testing.TB, cli *clientv3.Client) (count, lastMod int64) {
	t.Helper()
	ctx := context.Background()
	const prefix = "/gantry/v1/taskdef"
	n, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	last, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend), clientv3.WithLimit(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(last.Kvs) > 0 {
		lastMod = last.Kvs[0].ModRevision
	}
	return n.Count, lastMod
}

// FuzzRegisterTaskDefinition sends arbitrary bodies as RegisterTaskDefinition
// to a real server. Whatever the input: no 5xx (so no panic, which the HTTP
// server would turn into a dropped connection), a well-formed JSON answer,
// nothing stored when the answer is an error, and a stored revision that
// describes as registered when it is not.
//
//	go test ./ecsapi -run '^$' -fuzz FuzzRegisterTaskDefinition -fuzztime 2m
func FuzzRegisterTaskDefinition(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "RegisterTaskDefinition", "*.json"))
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		var gc goldenCase
		if err := json.Unmarshal(b, &gc); err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(gc.Request))
	}
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `"x"`, `{"family":"f"}`,
		`{"family":"f","containerDefinitions":[{}]}`,
		`{"family":"f","containerDefinitions":null}`,
		`{"family":"f","containerDefinitions":[{"name":"a","image":"b","memory":2147483647}],"cpu":"2147483647 vcpu"}`,
		`{"family":"f","containerDefinitions":[{"name":"a","image":"b","memory":64,"portMappings":[{"containerPortRange":"1-"}]}]}`,
		`{"family":"f","networkMode":"awsvpc","containerDefinitions":[{"name":"a","image":"b","memory":64,"portMappings":[{"containerPort":1,"hostPort":0}]}]}`,
		`{"family":"f","containerDefinitions":[{"name":"a","image":"b","memory":64,"dependsOn":[{"containerName":"a","condition":"START"}]}]}`,
		`{"family":"f","containerDefinitions":[{"name":"a","image":"b","memory":64}],"tags":[{"key":"","value":""}]}`,
	} {
		f.Add([]byte(s))
	}
	c := testcluster.Start(f)
	raw := newRawClient(c)
	etcd := c.Server.Store().Client()
	f.Fuzz(func(t *testing.T, body []byte) {
		count, lastMod := taskDefKeys(t, etcd)
		status, resp := raw.call(t, "RegisterTaskDefinition", body)
		if status >= 500 {
			t.Fatalf("status %d for %q: %s", status, body, resp)
		}
		var answer map[string]json.RawMessage
		if err := json.Unmarshal(resp, &answer); err != nil {
			t.Fatalf("answer is not a JSON object: %q", resp)
		}
		if status != http.StatusOK {
			if _, ok := answer["__type"]; !ok {
				t.Fatalf("error %d without __type: %s", status, resp)
			}
			if n, m := taskDefKeys(t, etcd); n != count || m != lastMod {
				t.Fatalf("refused request (%s) changed the store: %d keys (was %d), last write %d (was %d)", resp, n, count, m, lastMod)
			}
			return
		}
		var reg struct {
			TaskDefinition struct {
				ARN string `json:"taskDefinitionArn"`
			} `json:"taskDefinition"`
		}
		if err := json.Unmarshal(resp, &reg); err != nil || reg.TaskDefinition.ARN == "" {
			t.Fatalf("registered without an ARN: %s", resp)
		}
		req, _ := json.Marshal(map[string]string{"taskDefinition": reg.TaskDefinition.ARN})
		st, desc := raw.call(t, "DescribeTaskDefinition", req)
		var d map[string]json.RawMessage
		if st != http.StatusOK || json.Unmarshal(desc, &d) != nil {
			t.Fatalf("describe of a registered revision: %d %s", st, desc)
		}
		if string(d["taskDefinition"]) != string(answer["taskDefinition"]) {
			t.Fatalf("describe answered\n%s\nregister answered\n%s", d["taskDefinition"], answer["taskDefinition"])
		}
	})
}
