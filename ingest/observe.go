package ingest

// Waiting is the number of callers blocked in Acquire for memory, for a gauge: more than 0
// means the budget is the bottleneck.
func (b *Budget) Waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.waiters)
}
