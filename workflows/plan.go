package workflows

import (
	"cmp"
	"slices"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicehq/sluice/activities"
)

// PlanName is the name PlanWorkflow is registered under.
const PlanName = "Plan"

const (
	planLargestListed = 5    // PlanResult.Largest
	planPagesPerRun   = 500  // PlanPage calls per run before continue-as-new (3,000 events or so)
	planSlicesListed  = 1000 // PlanResult.Slices: about 60 KiB of history
)

// PlanInput is the input of PlanWorkflow: the backfill it plans, and, across continue-as-new,
// where the listing stands and what it found so far.
type PlanInput struct {
	Backfill BackfillInput
	Cursor   string      // continuation token of the listing; "" at first
	Partial  *PlanResult // totals of the earlier runs; nil on the first
}

// PlanResult is what a backfill of the same input would load: PlanPage's chunks summed, without
// reading any record.
type PlanResult struct {
	Objects int64 // objects listed, empty ones included
	Empty   int64 // objects of 0 bytes: no chunk
	Chunks  int64 // IngestChunk activities the backfill would run
	Bytes   int64 // source bytes (compressed objects at their stored size)
	// ByCompression groups the objects by the compression the planner decided: none (cut into
	// ranges), gzip, zstd, or auto (a small whole object whose name says nothing: the engine
	// looks at its first bytes).
	ByCompression map[string]PlanGroup
	Largest       []PlannedObject // the largest objects, at most planLargestListed
	Format        string          // the record format of every object (one per backfill)
	ChunkSize     int64           // the chunk size asked for (a page of many objects may use a larger one)
	Pages         int             // listing pages
	// An es:// source is planned in slices, one per primary shard of each concrete index, so
	// Objects is then the concrete indices, Bytes stays 0 and Documents sums the slices'
	// documents (those matching the query). Slices lists them in plan order, at most
	// planSlicesListed; SlicesLeftOut counts the rest.
	Documents     int64
	Slices        []PlannedSlice
	SlicesLeftOut int64
}

// PlannedSlice is one slice of an es:// source's plan: a primary shard and its documents.
type PlannedSlice struct {
	Index     string
	Shard     int
	Documents int64
}

// PlanGroup is a count of objects, chunks and bytes.
type PlanGroup struct {
	Objects, Chunks, Bytes int64
}

// PlannedObject is one object of the plan.
type PlannedObject struct {
	Key         string
	Size        int64
	Chunks      int64
	Compression string
}

// PlanWorkflow lists the backfill's source page by page, as BackfillWorkflow would, and sums
// the chunks instead of running them. It never reads a record: it is `sluice ingest --plan`.
// The workers run it, with their own credentials.
func PlanWorkflow(ctx workflow.Context, in PlanInput) (PlanResult, error) {
	b := in.Backfill
	if err := b.validate(); err != nil {
		return PlanResult{}, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeBadInput, nil)
	}
	b = b.withDefaults()
	res := PlanResult{ByCompression: map[string]PlanGroup{}}
	if in.Partial != nil {
		res = *in.Partial
	}
	if res.ByCompression == nil {
		res.ByCompression = map[string]PlanGroup{}
	}
	res.Format = cmp.Or(b.Source.Format, "ndjson")
	res.ChunkSize = b.ChunkSize
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: planPageTimeout,
		RetryPolicy:         b.retryPolicy(),
	})
	cursor := in.Cursor
	for pages := 0; ; pages++ {
		if pages >= planPagesPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return PlanResult{}, workflow.NewContinueAsNewError(ctx, PlanName, PlanInput{Backfill: in.Backfill, Cursor: cursor, Partial: &res})
		}
		var out activities.PlanPageOutput
		err := workflow.ExecuteActivity(actx, activities.PlanPageName, activities.PlanPageInput{
			Source: b.Source, Cursor: cursor, PageSize: b.PageSize, ChunkSize: b.ChunkSize,
		}).Get(ctx, &out)
		if err != nil {
			return PlanResult{}, planFailed(cursor, err)
		}
		res.add(out)
		if cursor = out.Next; cursor == "" {
			return res, nil
		}
	}
}

// add sums one page. Objects with chunks are grouped by the chunks' compression; empty ones
// (no chunk) only counted.
func (r *PlanResult) add(page activities.PlanPageOutput) {
	r.Pages++
	r.Objects += int64(page.Objects)
	r.Chunks += int64(len(page.Chunks))
	if len(page.Chunks) > 0 && page.Chunks[0].Slice != nil {
		r.addSlices(page.Chunks)
		return
	}
	r.Bytes += page.Bytes
	var withChunks int64
	for i := 0; i < len(page.Chunks); {
		c := page.Chunks[i]
		if len(c.Objects) > 0 { // a packed chunk: whole small objects, one chunk
			for k, o := range c.Objects {
				comp := cmp.Or(o.Compression, "auto")
				g := r.ByCompression[comp]
				g.Objects, g.Bytes = g.Objects+1, g.Bytes+o.Size
				if k == 0 {
					g.Chunks++
				}
				r.ByCompression[comp] = g
				r.noteLargest(PlannedObject{Key: o.Key, Size: o.Size, Chunks: 1, Compression: comp})
				withChunks++
			}
			i++
			continue
		}
		j := i + 1
		for j < len(page.Chunks) && page.Chunks[j].Key == c.Key {
			j++
		}
		comp := cmp.Or(c.Compression, "auto")
		g := r.ByCompression[comp]
		g.Objects, g.Chunks, g.Bytes = g.Objects+1, g.Chunks+int64(j-i), g.Bytes+c.Size
		r.ByCompression[comp] = g
		r.noteLargest(PlannedObject{Key: c.Key, Size: c.Size, Chunks: int64(j - i), Compression: comp})
		withChunks++
		i = j
	}
	r.Empty += int64(page.Objects) - withChunks
}

// addSlices sums the slices of an es:// source's page: a slice's Size is its documents.
func (r *PlanResult) addSlices(chunks []activities.Chunk) {
	for _, c := range chunks {
		r.Documents += c.Size
		if len(r.Slices) == planSlicesListed {
			r.SlicesLeftOut++
			continue
		}
		r.Slices = append(r.Slices, PlannedSlice{Index: c.Slice.Index, Shard: c.Slice.Shard, Documents: c.Size})
	}
}

func (r *PlanResult) noteLargest(o PlannedObject) {
	if len(r.Largest) == planLargestListed && o.Size <= r.Largest[len(r.Largest)-1].Size {
		return
	}
	r.Largest = append(r.Largest, o)
	slices.SortStableFunc(r.Largest, func(a, b PlannedObject) int { return cmp.Compare(b.Size, a.Size) })
	r.Largest = r.Largest[:min(len(r.Largest), planLargestListed)]
}

// Estimate is the shape of the work a plan implies for a backfill of in.
type Estimate struct {
	Waves      int64 // rounds of Concurrency chunks
	Activities int64 // PlanPage and IngestChunk activities, plus the reconciliation
	Runs       int64 // workflow runs, continue-as-new included (from MaxHistoryEvents)
}

// EstimateOf estimates the backfill of in from its plan.
func EstimateOf(in BackfillInput, p PlanResult) Estimate {
	in = in.withDefaults()
	acts := p.Chunks + int64(p.Pages) + 1
	perRun := int64(max((in.MaxHistoryEvents-eventsPerRun)/eventsPerActivity, 1))
	return Estimate{
		Waves:      (p.Chunks + int64(in.Concurrency) - 1) / int64(in.Concurrency),
		Activities: acts,
		Runs:       (acts + perRun - 1) / perRun,
	}
}
