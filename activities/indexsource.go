package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"go.temporal.io/sdk/temporal"

	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/ingest/essource"
)

// clusters is Activities.Clusters, or (when it is nil) one that reads only the worker's own
// cluster.
func (a *Activities) clusters() *essource.Clusters {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.Clusters == nil {
		a.Clusters = &essource.Clusters{Local: a.Engine.Bulk}
	}
	return a.Clusters
}

// indexSource parses an es:// source and its query, once, for planning and for each slice.
func indexSource(src Source) (essource.URI, error) {
	u, err := essource.Parse(src.URI)
	if err != nil {
		return u, err
	}
	switch {
	case len(src.Query) > essource.MaxQueryBytes:
		return u, fmt.Errorf("%w: the query of %s is %d bytes, at most %d", ingest.ErrBadInput, u, len(src.Query), essource.MaxQueryBytes)
	case src.Query != nil && !json.Valid(src.Query):
		return u, fmt.Errorf("%w: the query of %s is not valid JSON", ingest.ErrBadInput, u)
	case src.IDField != "":
		return u, fmt.Errorf("%w: an id field does not apply to %s: documents keep their _id", ingest.ErrBadInput, u)
	case src.Format != "" && src.Format != ingest.FormatNDJSON && src.Format != ingest.FormatDeadLetter:
		return u, fmt.Errorf("%w: format %q does not apply to %s (documents are read as JSON; %s reads a dead-letter index)", ingest.ErrBadInput, src.Format, u, ingest.FormatDeadLetter)
	}
	return u, nil
}

// planIndex is PlanPage for an es:// source: one chunk (Chunk.Slice) per primary shard of
// each concrete index the source names, with the shard's document count (matching the query)
// as its Size. Concrete indices are planned in name order; a page ends at an index boundary
// once it holds PageSize slices, and Next is the number of the next index.
func (a *Activities) planIndex(ctx context.Context, in PlanPageInput) (PlanPageOutput, error) {
	u, err := indexSource(in.Source)
	if err != nil {
		return PlanPageOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadInput, err)
	}
	where := "planning " + u.String()
	client, err := a.clusters().Client(ctx, u.Cluster)
	if err != nil {
		return PlanPageOutput{}, classify(err, where, nil)
	}
	indices, err := client.PrimaryShards(ctx, u.Index)
	if err != nil {
		return PlanPageOutput{}, classify(err, where, nil)
	}
	if err := readsItsTarget(u, in.Source.Index, indices); err != nil {
		return PlanPageOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadInput, err)
	}
	first := 0
	if in.Cursor != "" {
		if first, err = strconv.Atoi(in.Cursor); err != nil || first < 0 || first > len(indices) {
			err := fmt.Errorf("%s: cursor %q is not an index number of the %d indices", where, in.Cursor, len(indices))
			return PlanPageOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadInput, err)
		}
	}
	pageSize := min(cmpOr(in.PageSize, DefaultPageSize), MaxPageSize)
	var out PlanPageOutput
	for i := first; i < len(indices); i++ {
		if len(out.Chunks) > 0 && len(out.Chunks)+indices[i].Shards > pageSize {
			out.Next = strconv.Itoa(i)
			break
		}
		out.Objects++
		for shard := range indices[i].Shards {
			n, err := client.CountShard(ctx, indices[i].Index, shard, in.Source.Query)
			if err != nil {
				return PlanPageOutput{}, classify(err, fmt.Sprintf("%s: counting %s shard %d", where, indices[i].Index, shard), nil)
			}
			out.Chunks = append(out.Chunks, Chunk{Slice: &Slice{Index: indices[i].Index, Shard: shard}, Size: n, End: -1})
			out.Bytes += n
		}
	}
	return out, nil
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// sliceJob is the job of a chunk of an es:// source: one primary shard read through a point
// in time (ingest.Engine.IngestSearch). It resumes from the further of the earlier attempt's
// checkpoint (with its counters and cursor) and Chunk.Resume with Chunk.Search (without
// counters: the workflow kept them).
func (a *Activities) sliceJob(in IngestChunkInput, earlier *ChunkProgress) (chunkJob, error) {
	u, err := indexSource(in.Source)
	c := in.Chunk
	switch {
	case err != nil:
		return chunkJob{}, err
	case in.Source.Index == "":
		return chunkJob{}, errors.New("no target index")
	case c.Slice.Index == "" || c.Slice.Shard < 0 || c.Resume < 0:
		return chunkJob{}, fmt.Errorf("invalid slice %+v resuming at %d", *c.Slice, c.Resume)
	}
	resume := ingest.Progress{Checkpoint: c.Resume, Search: c.Search.engine()}
	if earlier != nil && earlier.Checkpoint >= c.Resume {
		resume = earlier.engine()
	}
	name := fmt.Sprintf("%s (index %s shard %d)", u, c.Slice.Index, c.Slice.Shard)
	spec := ingest.SearchSpec{
		Name: name, Index: c.Slice.Index, Shard: c.Slice.Shard, Query: in.Source.Query, Format: in.Source.Format,
		Target: in.Source.Index, Pipeline: in.Source.Pipeline, Resume: resume, Limits: in.Limits.engine(),
	}
	progress := func(p ingest.Progress) ChunkProgress {
		cp := progressOf(p)
		cp.SourceBytes = min(p.Checkpoint, c.Size)
		return cp
	}
	return chunkJob{
		from: resume, index: spec.Target, limits: spec.Limits,
		run: func(ctx context.Context, op string, sink ingest.DeadLetterSink, _ func(io.ReadCloser) io.ReadCloser, onProgress func(ChunkProgress)) (ChunkProgress, error) {
			spec := spec
			spec.Op = op
			client, err := a.clusters().Client(ctx, u.Cluster)
			if err != nil {
				return progress(spec.Resume), err
			}
			spec.Source = client
			prog, err := a.Engine.IngestSearch(ctx, spec, sink, func(p ingest.Progress) { onProgress(progress(p)) })
			return progress(prog), err
		},
		where:    func(at ingest.Progress) string { return fmt.Sprintf("%s at hit %d", name, at.Checkpoint) },
		logAttrs: func() []any { return []any{"source", u.String(), "index", c.Slice.Index, "shard", c.Slice.Shard} },
	}, nil
}

// indexMissing reports whether err says the source index does not exist.
func indexMissing(err error) bool { return es.ClassifyError(err) == es.IndexMissing }

// readsItsTarget refuses an es:// source of the worker's own cluster whose concrete indices
// include the target index beside others: the target's slices would read, through points in
// time opened while the other slices write into it, documents this backfill itself wrote (a
// `sluice reindex --source es://ALIAS-*` matches the new index, created before planning). The
// target alone, a copy onto itself, is allowed.
func readsItsTarget(u essource.URI, target string, indices []es.IndexShards) error {
	if u.Cluster != "" || target == "" || len(indices) < 2 {
		return nil
	}
	for _, ix := range indices {
		if ix.Index == target {
			return fmt.Errorf("%w: source %s resolves to %d indices including the target index %s, so it would read what it writes; name the source indices so that they leave it out",
				ingest.ErrBadInput, u, len(indices), target)
		}
	}
	return nil
}
