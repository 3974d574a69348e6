package ingest

// Stats are the counters of a chunk. Once a chunk is finished, Read == Indexed + DeadLettered.
type Stats struct {
	Read         int64 // records read (documents and refused records)
	Indexed      int64 // documents Elasticsearch acknowledged
	Retried      int64 // item sends repeated after a 429/5xx or a failed request
	DeadLettered int64 // records written to the dead-letter sink
	Bytes        int64 // bytes of the chunk's range behind the checkpoint (decompressed for compressed objects); the ranges of an object add up to its size
}

// Add accumulates o into s.
func (s *Stats) Add(o Stats) {
	s.Read += o.Read
	s.Indexed += o.Indexed
	s.Retried += o.Retried
	s.DeadLettered += o.DeadLettered
	s.Bytes += o.Bytes
}
