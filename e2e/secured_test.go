package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testenv"
)

// The secured node is Elasticsearch with TLS from a private CA and a file-realm user, as every
// Elasticsearch 8 installs by default. OpenSearch's node runs without its security plugin.

// TestSecuredDev is the path a new user of a secured cluster takes: `sluice dev` with
// ELASTICSEARCH_URL=https://…, ELASTICSEARCH_USERNAME/ELASTICSEARCH_PASSWORD and
// ELASTICSEARCH_CA_CERT (this panicked at start-up before issue 11), then `sluice ingest
// --wait`: every valid record is indexed, the invalid one is in the dead-letter index, and the
// password is in no output.
func TestSecuredDev(t *testing.T) {
	e := newSecuredEnv(t)
	r := rand.New(rand.NewPCG(11, 12))
	var objs []object
	for i := range 3 {
		bad := map[int]bool{}
		if i == 1 {
			bad[7] = true
		}
		objs = append(objs, ndjsonObject(r, fmt.Sprintf("secured/part-%d.ndjson", i), 200, 80, bad, false).plain())
	}
	for _, o := range objs {
		e.s3.Put(t, e.bucket, o.Key, o.Body)
	}
	valid, invalid := count(objs)

	port := freePort(t)
	e.startDev(port, filepath.Join(e.dir, "temporal"), true)
	index := e.index("secured")
	res := e.run(ingestTimeout, e.procEnv("TEMPORAL_ADDRESS="+temporalAddr(port)), "ingest",
		"--source", "s3://"+e.bucket+"/secured/", "--index", index, "--chunk-size", "8KiB", "--wait", "--json")
	if res.code != 0 {
		t.Fatalf("sluice ingest --wait: exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	st := parseStatus(t, res)
	if st.Result == nil || st.Result.Records.Indexed != valid || st.Result.Records.DeadLettered != invalid || st.Result.ChunksFailed != 0 {
		t.Fatalf("summary: %s; want %d indexed, %d dead-lettered", res.stdout, valid, invalid)
	}
	checkDocuments(t, e, index, objs)
	checkDeadLetterIndex(t, e, index, objs)
}

// TestSecuredWorkerRefused: `sluice worker` with a wrong password, or a CA that did not sign
// the node, exits at once with one message that says what to fix, before it tries Temporal
// (nothing listens at the address it is given).
func TestSecuredWorkerRefused(t *testing.T) {
	e := newSecuredEnv(t)
	otherCA := filepath.Join(e.dir, "other-ca.pem")
	if err := os.WriteFile(otherCA, testenv.NewCA(t, "sluice throwaway CA").PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, env, want string
	}{
		{"wrong password", "ELASTICSEARCH_PASSWORD=wrong-" + e.es.node.password, "check ELASTICSEARCH_USERNAME/ELASTICSEARCH_PASSWORD"},
		{"certificate from another CA", "ELASTICSEARCH_CA_CERT=" + otherCA, "certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			res := e.run(time.Minute, e.procEnv(tc.env), "worker", "--temporal-address", "127.0.0.1:1")
			took := time.Since(start)
			if res.code != 1 || !strings.Contains(res.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 1 and %q", res.code, res.stderr, tc.want)
			}
			if lines := strings.Count(strings.TrimSpace(res.stderr), "\n") + 1; lines != 1 {
				t.Errorf("%d lines on stderr, want one message:\n%s", lines, res.stderr)
			}
			// One answer, no retry loop, which would run for the backoff's MaxElapsed (5 minutes);
			// the process starts and fails in under a second on an idle machine.
			if took > 30*time.Second {
				t.Errorf("took %s to fail, want a prompt exit", took)
			}
		})
	}
}
