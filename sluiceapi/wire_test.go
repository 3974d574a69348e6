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

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/sluiceapi"
	"github.com/sluicehq/sluice/workflows"
)

// The types of this package and the worker's (package workflows) are separate, so that this
// package stays light; these tests hold them to one wire shape. Each value is filled in every
// field, sent through Temporal's data converter into the other type and back, and must come
// out the same: a field that one side lacks, or names or types differently, fails here.

func TestBackfillInputWireShape(t *testing.T) {
	// State is the workflow's own continue-as-new state, not for callers.
	checkWireShape[sluiceapi.BackfillInput, workflows.BackfillInput](t, "State")
}

func TestBackfillResultWireShape(t *testing.T) {
	checkWireShape[sluiceapi.BackfillResult, workflows.BackfillResult](t)
}

func TestReindexInputWireShape(t *testing.T) {
	var api sluiceapi.ReindexInput
	if fill(reflect.ValueOf(&api).Elem(), new(int)); api.KeepOld == nil || len(api.IndexConfig) == 0 {
		t.Fatalf("fill left KeepOld or IndexConfig empty: %+v", api)
	}
	checkWireShape[sluiceapi.ReindexInput, workflows.ReindexInput](t, "Backfill.State")
}

func TestReindexResultWireShape(t *testing.T) {
	checkWireShape[sluiceapi.ReindexResult, workflows.ReindexResult](t)
}

// checkWireShape fills an A (this package's type) in every field and sends it to the worker's
// type W, then fills a W and sends it to A: each must arrive unchanged. workerOnly are the
// dotted paths of W's fields that callers never send (they must arrive empty, and A lacks them).
func checkWireShape[A, W any](t *testing.T, workerOnly ...string) {
	t.Helper()
	var api A
	fill(reflect.ValueOf(&api).Elem(), new(int))
	got := roundTrip[W](t, api)
	for _, path := range workerOnly {
		if v := cut(got, path); v != nil {
			t.Fatalf("%s arrives as %v, want nil", path, v)
		}
	}
	if want := asMap(t, api); !reflect.DeepEqual(got, want) {
		t.Fatalf("a %T sent to the worker arrives as\n%v\nwant\n%v", api, got, want)
	}

	var wf W
	fill(reflect.ValueOf(&wf).Elem(), new(int))
	got = roundTrip[A](t, wf)
	want := asMap(t, wf)
	for _, path := range workerOnly {
		cut(want, path)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%T has fields %T lacks:\n%v\nwant\n%v", wf, api, got, want)
	}
}

// cut deletes the field at the dotted path from m and returns its value.
func cut(m map[string]any, path string) any {
	head, rest, nested := strings.Cut(path, ".")
	if !nested {
		v := m[head]
		delete(m, head)
		return v
	}
	inner, _ := m[head].(map[string]any)
	return cut(inner, rest)
}

func TestNamesMatchTheWorker(t *testing.T) {
	if sluiceapi.BackfillVersion != workflows.BackfillVersion || sluiceapi.ReindexVersion != workflows.ReindexVersion {
		t.Errorf("sluiceapi writes versions %d/%d, the worker reads up to %d/%d", sluiceapi.BackfillVersion,
			sluiceapi.ReindexVersion, workflows.BackfillVersion, workflows.ReindexVersion)
	}
	for _, c := range [][2]string{
		{sluiceapi.BackfillWorkflow, workflows.BackfillName},
		{sluiceapi.ErrTypeChunksFailed, workflows.ErrTypeChunksFailed},
		{sluiceapi.ErrTypePlanFailed, workflows.ErrTypePlanFailed},
		{sluiceapi.ErrTypeBadInput, activities.ErrTypeBadInput},
		{sluiceapi.ReindexWorkflow, workflows.ReindexName},
		{sluiceapi.ErrTypeLoadFailed, workflows.ErrTypeLoadFailed},
		{sluiceapi.ErrTypeVerifyFailed, workflows.ErrTypeVerifyFailed},
		{sluiceapi.ErrTypeIndexExists, activities.ErrTypeIndexExists},
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

var rawMessage = reflect.TypeFor[json.RawMessage]()

// fill sets every exported field of v to a distinct non-zero value (slices get one element,
// pointers a filled value, a json.RawMessage a small JSON object).
func fill(v reflect.Value, n *int) {
	*n++
	if v.Type() == rawMessage {
		v.SetBytes(fmt.Appendf(nil, `{"n":%d}`, *n))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), n)
		v.Set(p)
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
