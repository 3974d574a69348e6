package e2e

import (
	"bytes"
	"context"
	"testing"
	"time"

	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/testenv"
)

// Settings of TestMigrateWithKills.
const (
	migrateDocs   = 200_000
	migrateShards = 4 // slices: one chunk each, all running at once (crashChunks)
	migrateKills  = 3
)

// TestMigrateWithKills migrates a few hundred thousand documents from the secured
// Elasticsearch node, which the workers know only as the source cluster "legacy"
// (SLUICE_CLUSTER_LEGACY_URL, _USERNAME, _PASSWORD, _CA_CERT in their environment), into the
// OpenSearch node, SIGKILLing the only worker inside its slices three times (runCrash: each
// kill lands where a slice heartbeated a checkpoint, a new worker resumes it from there, and
// what is re-sent stays within what was in flight plus what was acknowledged after the last
// heartbeat). At the end the copy holds every document once with its _id, _routing and
// contents, and the source cluster's password is nowhere in the workflow's history, its
// description or the processes' output.
func TestMigrateWithKills(t *testing.T) {
	e := newEnvOn(t, testenv.Engine{Name: testenv.OpenSearch, URL: testenv.OpenSearchURL(t)})
	sec := testenv.SecuredElasticsearch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	source, err := esclient.New(ctx, esclient.Config{Addresses: []string{sec.URL}, Username: sec.Username, Password: sec.Password, CACertFile: sec.CACert})
	if err != nil {
		t.Fatal(err)
	}
	src := uniqueName("e2e-migrate-src")
	testenv.CreateIndex(ctx, t, source, src, migrateShards)
	loaded := time.Now()
	testenv.LoadDocs(ctx, t, source, src, 0, migrateDocs)
	t.Logf("loaded %d documents into %s in %s", migrateDocs, src, time.Since(loaded).Round(100*time.Millisecond))

	res := runCrash(t, e, crashSetup{
		uri: "es://legacy/" + src, records: migrateDocs, maxOps: crashMaxOps, kills: migrateKills,
		workerEnv: []string{"SLUICE_CLUSTER_LEGACY_URL=" + sec.URL, "SLUICE_CLUSTER_LEGACY_USERNAME=" + sec.Username,
			"SLUICE_CLUSTER_LEGACY_PASSWORD=" + sec.Password, "SLUICE_CLUSTER_LEGACY_CA_CERT=" + sec.CACert},
	})
	if res.ChunksPlanned != migrateShards || res.Bytes != migrateDocs {
		t.Errorf("planned %d chunks of %d documents, want one per shard (%d) and %d", res.ChunksPlanned, res.Bytes, migrateShards, migrateDocs)
	}

	dest, err := esclient.New(ctx, esclient.Config{Addresses: []string{testenv.OpenSearchURL(t)}})
	if err != nil {
		t.Fatal(err)
	}
	index := res.Index
	if a, b := testenv.IndexDigest(ctx, t, source, src), testenv.IndexDigest(ctx, t, dest, index); a != b {
		t.Fatalf("source %s, copy %s", a, b)
	}

	c := dialTemporal(t, res.Port)
	seen := workflowDump(t, c, res.ID)
	for _, p := range e.procs {
		seen["output of "+p.name+" ("+p.logPath+")"] = []byte(p.output())
	}
	mentions := false
	for where, b := range seen {
		if bytes.Contains(b, []byte(sec.Password)) {
			t.Errorf("the source cluster's password is in %s", where)
		}
		mentions = mentions || bytes.Contains(b, []byte("es://legacy/"+src))
	}
	if !mentions {
		t.Fatal("the history and outputs do not mention the source: the dump is not what the run wrote")
	}
}
