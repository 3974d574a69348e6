package activities

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	for _, tc := range []struct {
		name, config      string
		settings, restore map[string]any
		mappings          string
		err               string
	}{
		{name: "empty", config: "",
			settings: map[string]any{"index.refresh_interval": "-1", "index.number_of_replicas": 0.0},
			restore:  map[string]any{"index.refresh_interval": nil, "index.number_of_replicas": nil}},
		{name: "nested, flat and bare keys",
			config:   `{"settings":{"index":{"refresh_interval":"5s","number_of_shards":2},"number_of_replicas":2,"index.analysis":{"analyzer":{"a":{"type":"standard"}}}},"mappings":{"properties":{"n":{"type":"long"}}}}`,
			settings: map[string]any{"index.refresh_interval": "-1", "index.number_of_replicas": 0.0, "index.number_of_shards": 2.0, "index.analysis.analyzer.a.type": "standard"},
			restore:  map[string]any{"index.refresh_interval": "5s", "index.number_of_replicas": 2.0},
			mappings: `{"properties":{"n":{"type":"long"}}}`},
		{name: "flat refresh interval", config: `{"settings":{"index.refresh_interval":"30s"}}`,
			settings: map[string]any{"index.refresh_interval": "-1", "index.number_of_replicas": 0.0},
			restore:  map[string]any{"index.refresh_interval": "30s", "index.number_of_replicas": nil}},
		{name: "aliases refused", config: `{"aliases":{"logs":{}}}`, err: `unexpected key "aliases"`},
		{name: "not an object", config: `[1]`, err: "not a JSON object"},
		{name: "settings not an object", config: `{"settings":3}`, err: "settings: not a JSON object"},
		{name: "too large", config: `{"settings":{"x":"` + strings.Repeat("y", MaxIndexConfigBytes) + `"}}`, err: "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, restore, err := LoadConfig(json.RawMessage(tc.config))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Settings map[string]any  `json:"settings"`
				Mappings json.RawMessage `json:"mappings"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Settings, tc.settings) || string(got.Mappings) != tc.mappings {
				t.Errorf("body %s, want settings %v, mappings %s", body, tc.settings, tc.mappings)
			}
			var gotRestore map[string]any
			if err := json.Unmarshal(restore, &gotRestore); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotRestore, tc.restore) {
				t.Errorf("restore %s, want %v", restore, tc.restore)
			}
		})
	}
}

func TestReindexIndexName(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 15, 0, 123_456_789, time.FixedZone("CET", 3600))
	if got, want := ReindexIndexName("logs", at), "logs-20261130t231500.123z"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestPruneCandidates(t *testing.T) {
	names := []string{
		"logs-20261101t000000.000z", "logs-20261103t000000.000z", "logs-20261102t000000.000z",
		"logs-20261104t000000.000z", // current
		"logs-20261105t000000.000z", // newer: another reindex's, left alone
		"logs-dead-letters", "logs-v1", "logs-x-20261101t000000.000z", "logs2-20261101t000000.000z",
	}
	const current = "logs-20261104t000000.000z"
	for _, tc := range []struct {
		keep int
		want []string
	}{
		{0, []string{"logs-20261101t000000.000z", "logs-20261102t000000.000z", "logs-20261103t000000.000z"}},
		{1, []string{"logs-20261101t000000.000z", "logs-20261102t000000.000z"}},
		{3, nil},
		{10, nil},
	} {
		got := pruneCandidates("logs", current, tc.keep, names)
		if len(got) == 0 && len(tc.want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("keep %d: %v, want %v", tc.keep, got, tc.want)
		}
	}
}

func TestSwapActions(t *testing.T) {
	got, err := json.Marshal(swapActions("logs", "logs-new", []string{"logs-a", "logs-new", "logs-b"}))
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"remove":{"index":"logs-a","alias":"logs"}},{"remove":{"index":"logs-b","alias":"logs"}},{"add":{"index":"logs-new","alias":"logs","is_write_index":true}}]`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
