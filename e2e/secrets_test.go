package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/sluicehq/sluice/internal/esfake"
	"github.com/sluicehq/sluice/internal/s3test"
	"github.com/sluicehq/sluice/internal/testenv"
)

// TestSecretsNeverPrint runs two backfills with every kind of credential set, in the workers'
// and the CLI's environment: one into the secured Elasticsearch node (password, private CA),
// with a dead letter; one with an Elasticsearch API key into a fake cluster that refuses every
// _bulk (401), so that the run fails and its errors travel through the history. Then it reads
// everything a user or an operator can see: each workflow's whole history (every event, as
// protobuf and as JSON: inputs, results, heartbeat details, failures), the description of each
// execution (memo, search attributes, pending activities), and the output of every process,
// and asserts that no secret is in any of it: the Elasticsearch password and API key, the AWS
// secret access key.
func TestSecretsNeverPrint(t *testing.T) {
	e := newEnv(t)
	sec := testenv.SecuredElasticsearch(t)
	apiKey := fmt.Sprintf("c2x1aWNlLXNlY3JldC1hcGkta2V5-%d", rand.Int64())
	secrets := map[string]string{
		"Elasticsearch password": sec.Password,
		"Elasticsearch API key":  apiKey,
		"AWS secret access key":  s3test.SecretKey,
	}

	r := rand.New(rand.NewPCG(7, 8))
	for i := range 3 {
		bad := map[int]bool{}
		if i == 1 {
			bad[2] = true
		}
		o := ndjsonObject(r, fmt.Sprintf("secrets/part-%d.ndjson", i), 40, 80, bad, false).plain()
		e.s3.Put(t, e.bucket, o.Key, o.Body)
	}

	port := freePort(t)
	securedEnv := []string{"ELASTICSEARCH_URL=" + sec.URL, "ELASTICSEARCH_USERNAME=" + sec.Username,
		"ELASTICSEARCH_PASSWORD=" + sec.Password, "ELASTICSEARCH_CA_CERT=" + sec.CACert}
	dev := e.start("dev", e.procEnv(securedEnv...), "dev", "--port", strconv.Itoa(port),
		"--data-dir", filepath.Join(e.dir, "temporal"), "--log-level", "debug")
	c := dev.waitTemporal(t, port, devStartTimeout)
	dev.waitPoller(t, c, "", devStartTimeout)
	cliEnv := e.procEnv(append(securedEnv, "TEMPORAL_ADDRESS="+temporalAddr(port))...)

	// 1. The secured node: completes, with one dead letter.
	index := uniqueName("e2e-secrets")
	secured := newSecuredClient(t, sec)
	t.Cleanup(func() {
		secured.deleteIndex(index)
		secured.deleteIndex(index + "-dead-letters")
	})
	okID := "secrets-ok-" + index
	var outputs []string
	res := e.run(ingestTimeout, cliEnv, "ingest", "--source", "s3://"+e.bucket+"/secrets/", "--index", index,
		"--workflow-id", okID, "--wait", "--json")
	outputs = append(outputs, res.stdout, res.stderr)
	if res.code != 0 {
		t.Fatalf("ingest into the secured node: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if st := parseStatus(t, res); st.Result == nil || st.Result.Records.Indexed != 119 || st.Result.Records.DeadLettered != 1 {
		t.Fatalf("result %+v, want 119 indexed and 1 dead-lettered", st.Result)
	}

	// 2. An API key, and a cluster that refuses it on every _bulk: the run fails.
	fake := esfake.New(esfake.Options{Fault: func(r *esfake.Request) esfake.Decision {
		if r.Endpoint == esfake.Bulk {
			return esfake.Decision{Status: http.StatusUnauthorized}
		}
		return esfake.Decision{}
	}})
	t.Cleanup(fake.Close)
	const queue = "secrets-api-key"
	apiKeyEnv := []string{"ELASTICSEARCH_URL=" + fake.URL(), "ELASTICSEARCH_API_KEY=" + apiKey}
	e.start("worker", e.procEnv(apiKeyEnv...), "worker", "--temporal-address", temporalAddr(port),
		"--task-queue", queue, "--log-level", "debug")
	failID := "secrets-fail-" + index
	res = e.run(ingestTimeout, e.procEnv(append(apiKeyEnv, "TEMPORAL_ADDRESS="+temporalAddr(port))...), "ingest",
		"--source", "s3://"+e.bucket+"/secrets/", "--index", index+"-refused", "--task-queue", queue,
		"--workflow-id", failID, "--wait")
	outputs = append(outputs, res.stdout, res.stderr)
	if res.code != 1 || !strings.Contains(res.stdout+res.stderr, "Unauthorized") {
		t.Fatalf("ingest with a refused API key: exit %d, want 1 naming Unauthorized\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	res = e.run(time.Minute, cliEnv, "status", failID, "--json")
	outputs = append(outputs, res.stdout, res.stderr)

	seen := map[string][]byte{}
	for _, id := range []string{okID, failID} {
		for what, b := range workflowDump(t, c, id) {
			seen[what] = b
		}
	}
	for i, o := range outputs {
		seen[fmt.Sprintf("CLI output %d", i)] = []byte(o)
	}
	for _, p := range e.procs {
		seen["output of "+p.name+" ("+p.logPath+")"] = []byte(p.output())
	}
	// The dump is the real thing: it holds what the runs did, in plain text.
	var all []byte
	for _, b := range seen {
		all = append(all, b...)
	}
	for _, want := range []string{index, "Unauthorized", e.bucket} {
		if !bytes.Contains(all, []byte(want)) {
			t.Fatalf("the histories and outputs do not mention %q: the dump is not what the runs wrote", want)
		}
	}
	for where, b := range seen {
		for name, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("the %s is in %s", name, where)
			}
		}
	}
	t.Logf("looked for %d secrets in %d histories, descriptions and outputs", len(secrets), len(seen))
}

// workflowDump is everything the server holds about workflow id that a client can read: each
// event of its history as protobuf and as JSON, and its description.
func workflowDump(t *testing.T, c client.Client, id string) map[string][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := map[string][]byte{}
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("reading the history of %s: %v", id, err)
		}
		out[fmt.Sprintf("event %d (%s) of %s", ev.GetEventId(), ev.GetEventType(), id)] = encodings(t, ev)
	}
	if len(out) == 0 {
		t.Fatalf("workflow %s: empty history", id)
	}
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	out["description of "+id] = encodings(t, desc)
	return out
}

// encodings is m as protobuf (payloads as the bytes the converter wrote) followed by m as JSON.
func encodings(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	js, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, js...)
}

// newSecuredClient is an esClient of the secured node: its CA, its file-realm user.
func newSecuredClient(t *testing.T, sec testenv.Secured) *esClient {
	tr := &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: sec.CertPool(t)}}
	return &esClient{url: strings.TrimRight(sec.URL, "/"), hc: &http.Client{Timeout: httpTimeout,
		Transport: basicAuth{user: sec.Username, pass: sec.Password, next: tr}}}
}

type basicAuth struct {
	user, pass string
	next       http.RoundTripper
}

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.pass)
	return b.next.RoundTrip(r)
}
