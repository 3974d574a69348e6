package main

import (
	"context"
	"time"

	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/ingest/essource"
	"github.com/sluicehq/sluice/workflows"
)

// Progress inside running chunks. The workflow counts a chunk when it finishes; until then its
// counters live in its heartbeats, which DescribeWorkflowExecution shows as the heartbeat
// details of the pending IngestChunk activities (an activities.ChunkProgress each). sluice adds
// the two, and derives rates and an ETA from the source bytes done.

// rateWindow is how far back --wait's rates look; `sluice status` (one look) averages over the
// whole run instead.
const rateWindow = 30 * time.Second

// sourceUnit is what the sizes of a backfill's source count: Progress.Bytes and BytesDone,
// BackfillResult.Bytes, ChunkProgress.SourceBytes and the derived rates and ETA. They are bytes
// of the stored objects for an s3:// source and documents for an es:// source (a slice's
// Chunk.Size is its document count); ChunkStats.Bytes then counts hits, not bytes.
type sourceUnit int

const (
	unitBytes sourceUnit = iota // s3:// objects, and sources sluice does not know
	unitDocs                    // es://[CLUSTER/]INDEX
)

// unitOf is the unit of source (a URI from the memo or the input; "" when unknown: bytes, as
// every backfill before es:// sources).
func unitOf(source string) sourceUnit {
	if essource.Is(source) {
		return unitDocs
	}
	return unitBytes
}

// String is the unit's name in text and in JSON's source_unit.
func (u sourceUnit) String() string {
	if u == unitDocs {
		return "documents"
	}
	return "bytes"
}

// amount is n in the unit, for a person: "3.0 GiB", "12,345 docs".
func (u sourceUnit) amount(n int64) string {
	if u == unitDocs {
		return commas(n) + " docs"
	}
	return humanBytes(n)
}

// of is done of total: "3.0 GiB of 10.0 GiB", "12,345 of 200,000 docs".
func (u sourceUnit) of(done, total int64) string {
	if u == unitDocs {
		return commas(done) + " of " + commas(total) + " docs"
	}
	return humanBytes(done) + " of " + humanBytes(total)
}

// rate is perSecond in the unit: "30.7 MiB/s", "1,234 docs/s".
func (u sourceUnit) rate(perSecond float64) string {
	n := int64(perSecond + 0.5)
	if u == unitDocs {
		return commas(n) + " docs/s"
	}
	return humanBytes(n) + "/s"
}

// parts is what a source is made of, for a person: objects, or the concrete indices of an
// es:// source (PlanPageOutput.Objects counts them).
func (u sourceUnit) parts(n int64) string {
	if u == unitDocs {
		return commas(n) + " indices"
	}
	return commas(n) + " objects"
}

// runningChunks is what the last heartbeats of a backfill's running chunks say.
type runningChunks struct {
	Chunks      int                   // IngestChunk activities pending (running or waiting to retry)
	Heartbeated int                   // of them, those with progress in a heartbeat
	Stats       activities.ChunkStats // their counters: records behind their checkpoints
	SourceBytes int64                 // source bytes (documents of an es:// source) behind their checkpoints (see ChunkProgress.SourceBytes)
}

// runningOf sums the heartbeat details of the pending IngestChunk activities. Details that do
// not decode (another version's) count the chunk without progress.
func runningOf(pending []*workflowpb.PendingActivityInfo) runningChunks {
	dc := converter.GetDefaultDataConverter()
	var r runningChunks
	for _, pa := range pending {
		if pa.GetActivityType().GetName() != activities.IngestChunkName {
			continue
		}
		r.Chunks++
		var cp activities.ChunkProgress
		if d := pa.GetHeartbeatDetails(); d == nil || dc.FromPayloads(d, &cp) != nil {
			continue
		}
		r.Heartbeated++
		r.Stats.Add(cp.Stats)
		r.SourceBytes += cp.SourceBytes
	}
	return r
}

// queryLive asks a running backfill for its progress, then for its pending activities. In this
// order a chunk that finishes in between is missed once rather than counted twice, so the
// totals never run ahead of the truth.
func queryLive(ctx context.Context, c client.Client, id string) (*workflows.Progress, *runningChunks, error) {
	p, err := queryProgress(ctx, c, id, "", queryTimeout)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	resp, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return p, nil, nil // the query's answer alone is still worth showing
	}
	run := runningOf(resp.GetPendingActivities())
	return p, &run, nil
}

// snapshot is the progress of a backfill as sluice shows it: the workflow's answer to the
// progress query, the heartbeats of its running chunks, and what follows from both.
type snapshot struct {
	*workflows.Progress
	// Unit is what Bytes, BytesDone, BytesPerSecond and Running.SourceBytes count.
	Unit    sourceUnit
	Running runningChunks
	// Done counts the records of the finished and the running chunks (the latter as of their
	// last heartbeat).
	Done activities.ChunkStats
	// BytesDone is the source bytes of the finished and running chunks, at most Bytes, in the
	// units of Bytes (compressed objects count their compressed size).
	BytesDone      int64
	DocsPerSecond  float64       // documents indexed per second
	BytesPerSecond float64       // source bytes (documents of an es:// source) per second
	ETA            time.Duration // from the bytes (documents) remaining at BytesPerSecond; 0: unknown
}

// newSnapshot puts p and run, whose sizes count unit, together at now. meter (nil for one look) keeps recent samples for
// the rates; without enough of them the rates are averages since the backfill started.
func newSnapshot(p *workflows.Progress, run *runningChunks, unit sourceUnit, now time.Time, meter *rateMeter) *snapshot {
	q := *p
	if !p.StartTime.IsZero() && now.Sub(p.StartTime) > p.Elapsed {
		q.Elapsed = now.Sub(p.StartTime) // the workflow's own is as of its last task
	}
	s := &snapshot{Progress: &q, Unit: unit, Done: p.Stats, BytesDone: p.BytesDone}
	if run != nil {
		s.Running = *run
		s.Done.Add(run.Stats)
		s.BytesDone += run.SourceBytes
	}
	s.BytesDone = min(s.BytesDone, p.Bytes)
	ok := false
	if meter != nil {
		meter.add(now, s.Done.Indexed, s.BytesDone)
		s.DocsPerSecond, s.BytesPerSecond, ok = meter.rates()
	}
	if !ok {
		if secs := q.Elapsed.Seconds(); secs > 0 {
			s.DocsPerSecond, s.BytesPerSecond = float64(s.Done.Indexed)/secs, float64(s.BytesDone)/secs
		}
	}
	if p.ListingDone && !p.Paused && s.running() && s.BytesPerSecond > 0 {
		s.ETA = time.Duration(float64(p.Bytes-s.BytesDone) / s.BytesPerSecond * float64(time.Second))
	}
	return s
}

// running reports whether the backfill is still at work (its phase is not a final one).
func (s *snapshot) running() bool {
	switch s.Phase {
	case workflows.PhaseCanceled, workflows.PhaseFailed, workflows.PhaseCompleted, workflows.PhaseContinued:
		return false
	}
	return true
}

// rateMeter measures rates over the last rateWindow of samples.
type rateMeter struct {
	samples []rateSample
}

type rateSample struct {
	at          time.Time
	docs, bytes int64
}

func (m *rateMeter) add(at time.Time, docs, bytes int64) {
	m.samples = append(m.samples, rateSample{at, docs, bytes})
	i := 0
	for i < len(m.samples)-2 && at.Sub(m.samples[i+1].at) >= rateWindow {
		i++ // keep one sample at least rateWindow old, so the window stays full
	}
	m.samples = m.samples[i:]
}

// rates are the docs and bytes per second between the oldest and the newest sample, when they
// are at least a few seconds apart.
func (m *rateMeter) rates() (docs, bytes float64, ok bool) {
	if len(m.samples) < 2 {
		return 0, 0, false
	}
	first, last := m.samples[0], m.samples[len(m.samples)-1]
	secs := last.at.Sub(first.at).Seconds()
	if secs < 3 {
		return 0, 0, false
	}
	return float64(last.docs-first.docs) / secs, float64(last.bytes-first.bytes) / secs, true
}
