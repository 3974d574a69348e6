package sluiceapi_test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.temporal.io/sdk/converter"

	"github.com/sluicehq/sluice/sluiceapi"
	"github.com/sluicehq/sluice/workflows"
)

// The types of this package and the worker's (package workflows) are separate, so that this
// package stays light; these tests hold them to one wire shape. Each value is filled in every
// field, sent through Temporal's data converter into the other type and back, and must come
// out the same: a field that one side lacks, or names or types differently, fails here.

func TestBackfillInputWireShape(t *testing.T) {
	var api sluiceapi.BackfillInput
	fill(reflect.ValueOf(&api).Elem(), new(int))
	got := roundTrip[workflows.BackfillInput](t, api)
	// The worker does not read Version yet: sluice's inputs have one shape so far (see the
	// package comment). Every other field must arrive.
	delete(got, "Version")
	if got["State"] != nil {
		t.Fatalf("State arrives as %v, want nil", got["State"])
	}
	delete(got, "State")
	want := asMap(t, api)
	delete(want, "Version")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("a sluiceapi.BackfillInput sent to the worker arrives as\n%v\nwant\n%v", got, want)
	}

	var wf workflows.BackfillInput
	fill(reflect.ValueOf(&wf).Elem(), new(int))
	wf.State = nil // the workflow's own continue-as-new state, not for callers
	got = roundTrip[sluiceapi.BackfillInput](t, wf)
	delete(got, "Version")
	want = asMap(t, wf)
	delete(want, "State")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("workflows.BackfillInput has fields sluiceapi.BackfillInput lacks:\n%v\nwant\n%v", got, want)
	}
}

func TestBackfillResultWireShape(t *testing.T) {
	var wf workflows.BackfillResult
	fill(reflect.ValueOf(&wf).Elem(), new(int))
	if got, want := roundTrip[sluiceapi.BackfillResult](t, wf), asMap(t, wf); !reflect.DeepEqual(got, want) {
		t.Fatalf("a workflows.BackfillResult decoded as sluiceapi.BackfillResult is\n%v\nwant\n%v", got, want)
	}
	var api sluiceapi.BackfillResult
	fill(reflect.ValueOf(&api).Elem(), new(int))
	if got, want := roundTrip[workflows.BackfillResult](t, api), asMap(t, api); !reflect.DeepEqual(got, want) {
		t.Fatalf("sluiceapi.BackfillResult has fields the worker does not send:\n%v\nwant\n%v", got, want)
	}
}

func TestNamesMatchTheWorker(t *testing.T) {
	for _, c := range [][2]string{
		{sluiceapi.BackfillWorkflow, workflows.BackfillName},
		{sluiceapi.ErrTypeChunksFailed, workflows.ErrTypeChunksFailed},
		{sluiceapi.ErrTypePlanFailed, workflows.ErrTypePlanFailed},
	} {
		if c[0] != c[1] {
			t.Errorf("sluiceapi says %q, the worker %q", c[0], c[1])
		}
	}
}

// TestLightDependencies keeps the ingest engine, the search and S3 clients and the Temporal
// server out of the binaries of users who import this package.
func TestLightDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/sluicehq/sluice/sluiceapi").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !slices.Contains(deps, "go.temporal.io/sdk/workflow") {
		t.Fatalf("go list -deps gave %d packages, without the SDK's workflow package: %q", len(deps), out)
	}
	for _, d := range deps {
		heavy := strings.HasPrefix(d, "github.com/sluicehq/sluice/") && d != "github.com/sluicehq/sluice/sluiceapi" ||
			strings.HasPrefix(d, "go.temporal.io/server") || strings.Contains(d, "aws-sdk-go") ||
			strings.Contains(d, "elastic")
		if heavy {
			t.Errorf("sluiceapi imports %s", d)
		}
	}
}

// roundTrip encodes v with Temporal's default data converter, decodes it into a T (as the
// other side does), and returns T's encoding as a generic map.
func roundTrip[T any](t *testing.T, v any) map[string]any {
	t.Helper()
	dc := converter.GetDefaultDataConverter()
	p, err := dc.ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := dc.FromPayload(p, &out); err != nil {
		t.Fatal(err)
	}
	return asMap(t, out)
}

func asMap(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// fill sets every exported field of v to a distinct non-zero value (slices get one element,
// pointers stay nil).
func fill(v reflect.Value, n *int) {
	*n++
	if v.Type() == reflect.TypeFor[json.RawMessage]() { // raw JSON must be JSON
		v.SetBytes(fmt.Appendf(nil, `{"n":%d}`, *n))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n)
			}
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), n)
		v.Set(s)
	case reflect.String:
		v.SetString("s" + strings.Repeat("x", *n))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n) + 0.5)
	case reflect.Bool:
		v.SetBool(true)
	}
}
