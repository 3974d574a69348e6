package workflows

import "github.com/sluicehq/sluice/activities"

// chunkLimits are the limits a chunk starts with: the input's, and its share of the run-wide
// rate caps. The share is 1/Concurrency (the window in force when the chunk starts), so the
// chunks running at once never send faster than the caps together, on however many workers;
// while fewer chunks run than the window (the tail of a run), the run stays below the caps.
func (b *backfill) chunkLimits() activities.Limits {
	l := b.in.Limits
	n := float64(max(b.st.Concurrency, 1))
	if b.in.MaxDocsPerSecond > 0 {
		l.MaxDocsPerSecond = b.in.MaxDocsPerSecond / n
	}
	if b.in.MaxBytesPerSecond > 0 {
		l.MaxBytesPerSecond = b.in.MaxBytesPerSecond / n
	}
	return l
}
