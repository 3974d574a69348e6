package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/sluicehq/sluice/ingest/es"
)

// Index admin activity names, registered by the worker and scheduled by ReindexWorkflow.
const (
	CheckAliasName    = "CheckAlias"
	CreateIndexName   = "CreateIndex"
	PutSettingsName   = "PutIndexSettings"
	RefreshCountName  = "RefreshAndCount"
	SwapAliasName     = "SwapAlias"
	DeleteIndexName   = "DeleteIndex"
	PruneIndicesName  = "PruneIndices"
	ErrTypeAliasIndex = "AliasIsIndex" // a concrete index has the alias's name
	// ErrTypeIndexExists: the index a reindex is about to create exists already on the first
	// attempt (another reindex of the alias started in the same millisecond, or a name taken
	// by hand). Later attempts take it as their own earlier success.
	ErrTypeIndexExists = "IndexExists"
	// ErrTypeAliasServes: DeleteIndex was asked to delete an index the alias points to.
	ErrTypeAliasServes = "AliasServesIndex"
)

// MaxIndexConfigBytes bounds the index configuration (settings and mappings) a reindex carries
// in its workflow input and CreateIndex's: it travels through the history, where Temporal
// warns past 512 KiB and fails past 2 MiB.
const MaxIndexConfigBytes = 256 << 10

// Load-friendly settings a reindex applies while it fills a new index, and the flat keys they
// replace; RestoreSettings puts back what the configuration said.
const (
	settingRefreshInterval = "index.refresh_interval"
	settingReplicas        = "index.number_of_replicas"
)

// Admin holds the index administration activities. Each does one small thing and is
// idempotent: running it again after a success (a retry after a lost answer) changes nothing
// more. Errors are classified once, here: bad input, bad configuration, refused credentials
// and blocked indices are non-retryable; anything else (5xx, no answer) is retried.
type Admin struct {
	ES *es.Client
}

// Register registers the admin activities under their names.
func (a *Admin) Register(r registry) {
	for name, fn := range map[string]any{
		CheckAliasName:   a.CheckAlias,
		CreateIndexName:  a.CreateIndex,
		PutSettingsName:  a.PutSettings,
		RefreshCountName: a.RefreshAndCount,
		SwapAliasName:    a.SwapAlias,
		DeleteIndexName:  a.DeleteIndex,
		PruneIndicesName: a.PruneIndices,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}

// AliasInput names an alias.
type AliasInput struct {
	Alias string
}

// AliasState is what an alias points to.
type AliasState struct {
	Indices []string // sorted; empty when the alias does not exist
}

// CheckAlias returns the indices alias points to. A concrete index of that name is a
// non-retryable ErrTypeAliasIndex error: an alias cannot take its place.
func (a *Admin) CheckAlias(ctx context.Context, in AliasInput) (AliasState, error) {
	where := "checking alias " + in.Alias
	indices, _, err := a.ES.AliasIndices(ctx, in.Alias)
	if err != nil {
		return AliasState{}, classifyAdmin(err, where)
	}
	if len(indices) == 0 {
		exists, err := a.ES.IndexExists(ctx, in.Alias)
		if err != nil {
			return AliasState{}, classifyAdmin(err, where)
		}
		if exists {
			msg := fmt.Sprintf("%s: %q is an index, not an alias; reindex needs the name for an alias (rename or delete the index first)", where, in.Alias)
			return AliasState{}, temporal.NewNonRetryableApplicationError(msg, ErrTypeAliasIndex, nil)
		}
	}
	sort.Strings(indices)
	return AliasState{Indices: indices}, nil
}

// CreateIndexInput asks for a new index.
type CreateIndexInput struct {
	Index string
	// Config is the JSON of the index's settings and mappings ({"settings":…,"mappings":…}),
	// at most MaxIndexConfigBytes; empty: the cluster's defaults.
	Config json.RawMessage
}

// CreateIndexOutput says how to end the load.
type CreateIndexOutput struct {
	// Restore is the settings body that puts back what the configuration said for the
	// settings the load replaced (null: the cluster's default).
	Restore json.RawMessage
}

// CreateIndex creates in.Index from in.Config with load-friendly settings (no refresh, no
// replicas). On its first attempt an existing index of that name is a non-retryable
// ErrTypeIndexExists error; on later attempts it is this activity's own earlier success.
func (a *Admin) CreateIndex(ctx context.Context, in CreateIndexInput) (CreateIndexOutput, error) {
	where := "creating index " + in.Index
	body, restore, err := LoadConfig(in.Config)
	if err != nil {
		return CreateIndexOutput{}, temporal.NewNonRetryableApplicationError(where+": "+err.Error(), ErrTypeBadInput, nil)
	}
	err = a.ES.CreateIndex(ctx, in.Index, body)
	if es.IsAlreadyExists(err) {
		if activity.GetInfo(ctx).Attempt <= 1 {
			msg := fmt.Sprintf("%s: it exists already (another reindex of the alias started at the same time?)", where)
			return CreateIndexOutput{}, temporal.NewNonRetryableApplicationError(msg, ErrTypeIndexExists, nil)
		}
		err = nil
	}
	if err != nil {
		return CreateIndexOutput{}, classifyAdmin(err, where)
	}
	return CreateIndexOutput{Restore: restore}, nil
}

// IndexSettingsInput sets dynamic settings of an index.
type IndexSettingsInput struct {
	Index    string
	Settings json.RawMessage // flat or nested settings, as PUT /{index}/_settings takes them
}

// PutSettings updates the dynamic settings of an index.
func (a *Admin) PutSettings(ctx context.Context, in IndexSettingsInput) error {
	if err := a.ES.PutSettings(ctx, in.Index, in.Settings); err != nil {
		return classifyAdmin(err, "updating the settings of index "+in.Index)
	}
	return nil
}

// IndexInput names an index.
type IndexInput struct {
	Index string
}

// CountOutput is the number of documents an index holds.
type CountOutput struct {
	Count int64
}

// RefreshAndCount refreshes the index and counts its documents (see refreshAndCount); an
// index that does not exist is an ErrTypeNotFound failure.
func (a *Admin) RefreshAndCount(ctx context.Context, in IndexInput) (CountOutput, error) {
	n, err := refreshAndCount(ctx, a.ES, in.Index, false)
	return CountOutput{Count: n}, err
}

// refreshAndCount refreshes index and counts its documents: the one implementation behind
// the reindex's RefreshAndCount and the backfill's Reconcile (two activity names, because
// recorded histories schedule both). An index that does not exist counts 0 when
// missingIsEmpty, else fails. Errors are classified by classifyAdmin.
func refreshAndCount(ctx context.Context, c *es.Client, index string, missingIsEmpty bool) (int64, error) {
	err := c.Refresh(ctx, index)
	if err == nil {
		var n int64
		if n, err = c.Count(ctx, index, nil); err == nil {
			return n, nil
		}
	}
	if missingIsEmpty && es.ClassifyError(err) == es.IndexMissing {
		return 0, nil
	}
	return 0, classifyAdmin(err, "refreshing and counting index "+index)
}

// SwapAliasInput points an alias at one index.
type SwapAliasInput struct {
	Alias string
	Index string
}

// SwapAliasOutput names the indices the alias pointed to before.
type SwapAliasOutput struct {
	Previous []string // sorted
}

// SwapAlias moves the alias to in.Index in one atomic _aliases call: removed from every index
// it points to now (read just before), added to in.Index as its write index. After a success
// a retry finds the alias on in.Index only and adds it again, which changes nothing.
func (a *Admin) SwapAlias(ctx context.Context, in SwapAliasInput) (SwapAliasOutput, error) {
	where := fmt.Sprintf("moving alias %s to index %s", in.Alias, in.Index)
	current, _, err := a.ES.AliasIndices(ctx, in.Alias)
	if err != nil {
		return SwapAliasOutput{}, classifyAdmin(err, where)
	}
	sort.Strings(current)
	if err := a.ES.UpdateAliases(ctx, swapActions(in.Alias, in.Index, current)); err != nil {
		return SwapAliasOutput{}, classifyAdmin(err, where)
	}
	return SwapAliasOutput{Previous: slices.DeleteFunc(current, func(s string) bool { return s == in.Index })}, nil
}

// swapActions removes alias from every index of current but index, and adds it to index as
// the write index.
func swapActions(alias, index string, current []string) []es.AliasAction {
	var actions []es.AliasAction
	for _, old := range current {
		if old != index {
			actions = append(actions, es.AliasAction{Remove: &es.AliasRef{Index: old, Alias: alias}})
		}
	}
	write := true
	return append(actions, es.AliasAction{Add: &es.AliasRef{Index: index, Alias: alias, IsWriteIndex: &write}})
}

// DeleteIndexInput deletes an index that an alias must not point to.
type DeleteIndexInput struct {
	Index string
	// UnlessAlias: when the alias of that name points to Index, nothing is deleted and the
	// activity fails with ErrTypeAliasServes. Empty: no such check.
	UnlessAlias string
}

// DeleteIndex deletes an index; one that does not exist is not an error.
func (a *Admin) DeleteIndex(ctx context.Context, in DeleteIndexInput) error {
	where := "deleting index " + in.Index
	if in.UnlessAlias != "" {
		current, _, err := a.ES.AliasIndices(ctx, in.UnlessAlias)
		if err != nil {
			return classifyAdmin(err, where)
		}
		if slices.Contains(current, in.Index) {
			msg := fmt.Sprintf("%s: alias %s points to it; not deleted", where, in.UnlessAlias)
			return temporal.NewNonRetryableApplicationError(msg, ErrTypeAliasServes, nil)
		}
	}
	err := a.ES.DeleteIndex(ctx, in.Index)
	if se, ok := errors.AsType[*es.StatusError](err); ok && se.Class() == es.IndexMissing {
		err = nil
	}
	if err != nil {
		return classifyAdmin(err, where)
	}
	return nil
}

// PruneIndicesInput asks to delete the older indices of an alias.
type PruneIndicesInput struct {
	Alias   string
	Current string // the index the reindex just made; indices named after it are left alone
	Keep    int    // indices older than Current to keep, newest first
}

// PruneIndicesOutput names what was deleted.
type PruneIndicesOutput struct {
	Deleted []string
}

// PruneIndices deletes the indices named <alias>-<time> (ReindexIndexName's scheme) that sort
// before in.Current, but for the in.Keep newest of them and any the alias points to. Indices
// of other names are never touched.
func (a *Admin) PruneIndices(ctx context.Context, in PruneIndicesInput) (PruneIndicesOutput, error) {
	where := "deleting older indices of alias " + in.Alias
	settings, err := a.ES.GetSettings(ctx, in.Alias+"-*", true)
	if err != nil {
		return PruneIndicesOutput{}, classifyAdmin(err, where)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(settings, &all); err != nil {
		return PruneIndicesOutput{}, fmt.Errorf("%s: reading the index list: %w", where, err)
	}
	serving, _, err := a.ES.AliasIndices(ctx, in.Alias)
	if err != nil {
		return PruneIndicesOutput{}, classifyAdmin(err, where)
	}
	var out PruneIndicesOutput
	for _, name := range pruneCandidates(in.Alias, in.Current, in.Keep, keys(all)) {
		if slices.Contains(serving, name) {
			continue
		}
		if err := a.DeleteIndex(ctx, DeleteIndexInput{Index: name}); err != nil {
			return out, err
		}
		out.Deleted = append(out.Deleted, name)
	}
	return out, nil
}

func keys(m map[string]json.RawMessage) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// indexTimeLayout is the time part of ReindexIndexName: lowercase (index names must be), sorted
// as the times are, to the millisecond so that two reindexes started by hand do not collide.
const indexTimeLayout = "20060102t150405.000z"

var indexTimeRE = regexp.MustCompile(`^\d{8}t\d{6}\.\d{3}z$`)

// ReindexIndexName is the index a reindex of alias started at t builds: <alias>-<UTC time>,
// such as logs-20261201t001500.000z.
func ReindexIndexName(alias string, t time.Time) string {
	return alias + "-" + strings.ToLower(t.UTC().Format(indexTimeLayout))
}

// pruneCandidates returns the names of the scheme <alias>-<time> that sort before current,
// oldest first, without the keep newest of them.
func pruneCandidates(alias, current string, keep int, names []string) []string {
	var older []string
	for _, n := range names {
		suffix, ok := strings.CutPrefix(n, alias+"-")
		if ok && indexTimeRE.MatchString(suffix) && n < current {
			older = append(older, n)
		}
	}
	sort.Strings(older)
	return older[:max(len(older)-max(keep, 0), 0)]
}

// LoadConfig checks an index configuration and returns the body that creates the index with
// load-friendly settings (index.refresh_interval -1, index.number_of_replicas 0) and the
// settings body that restores what the configuration said for those two (null where it said
// nothing: the cluster's default). The configuration is a JSON object with "settings" and
// "mappings" only; settings may be nested ({"index":{"refresh_interval":"5s"}}), flat
// ("index.refresh_interval") or without the "index." prefix, as Elasticsearch takes them.
func LoadConfig(config json.RawMessage) (body, restore json.RawMessage, err error) {
	if len(config) > MaxIndexConfigBytes {
		return nil, nil, fmt.Errorf("index configuration of %d bytes: larger than %d", len(config), MaxIndexConfigBytes)
	}
	var top map[string]json.RawMessage
	if len(config) > 0 {
		if err := json.Unmarshal(config, &top); err != nil {
			return nil, nil, fmt.Errorf("index configuration: not a JSON object: %w", err)
		}
	}
	for k := range top {
		if k != "settings" && k != "mappings" {
			return nil, nil, fmt.Errorf("index configuration: unexpected key %q (want settings and mappings; the alias is set by the reindex)", k)
		}
	}
	flat := map[string]any{}
	if s := top["settings"]; len(s) > 0 && string(s) != "null" {
		var nested map[string]any
		if err := json.Unmarshal(s, &nested); err != nil {
			return nil, nil, fmt.Errorf("index configuration: settings: not a JSON object: %w", err)
		}
		flatten("", nested, flat)
	}
	restoreSettings := map[string]any{settingRefreshInterval: flat[settingRefreshInterval], settingReplicas: flat[settingReplicas]}
	flat[settingRefreshInterval] = "-1"
	flat[settingReplicas] = 0
	out := map[string]any{"settings": flat}
	if m := top["mappings"]; len(m) > 0 && string(m) != "null" {
		out["mappings"] = m
	}
	if body, err = json.Marshal(out); err != nil {
		return nil, nil, err
	}
	if restore, err = json.Marshal(restoreSettings); err != nil {
		return nil, nil, err
	}
	return body, restore, nil
}

// flatten writes the leaves of settings into flat under dotted keys that start with "index.".
func flatten(prefix string, settings map[string]any, flat map[string]any) {
	for k, v := range settings {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if m, ok := v.(map[string]any); ok {
			flatten(key, m, flat)
			continue
		}
		if !strings.HasPrefix(key, "index.") {
			key = "index." + key
		}
		flat[key] = v
	}
}

// classifyAdmin wraps an index operation's error with where it happened, once: non-retryable
// (with its activities error type) when a retry cannot fix it, retryable otherwise.
func classifyAdmin(err error, where string) error {
	typ := ""
	switch es.ClassifyError(err) {
	case es.Retry:
		return fmt.Errorf("%s: %w", where, err)
	case es.Unauthorized:
		typ = ErrTypeUnauthorized
	case es.IndexMissing:
		typ = ErrTypeNotFound
	case es.IndexClosed:
		typ = ErrTypeIndexNotAllowed
	case es.Rejected:
		typ = ErrTypeBadConfig
	default:
		typ = ErrTypePermanent
	}
	return temporal.NewNonRetryableApplicationError(where+": "+err.Error(), typ, err)
}
