package ingest

// Progress is reported whenever the checkpoint advances.
type Progress struct {
	// Object is the index, within a packed chunk (IngestObjects), of the object Checkpoint is
	// an offset in: every object before it is finished. Always 0 for a single-object chunk.
	Object int
	// Checkpoint: every record that starts before it (in object Object) has been acknowledged.
	// A resumed attempt continues reading there.
	Checkpoint int64
	// Stats count the records before Checkpoint (so a resumed attempt that starts from them
	// counts nothing twice).
	Stats Stats
	// Failed lists the objects of a packed chunk before the checkpoint that changed or vanished
	// after planning (IngestObjects skips them and goes on), in order; Stats count the records
	// read of them before they failed.
	Failed []ObjectFailure
	// Search is where Checkpoint is in the point in time of a slice of an index source
	// (IngestSearch); nil for objects.
	Search *SearchCursor
}

// ObjectFailure is an object of a packed chunk that could not be read to its end: it changed
// (HTTP 412 on If-Match) or vanished (404) after planning. Its records before Offset were
// ingested.
type ObjectFailure struct {
	Object int    // index in the chunk
	Key    string // the object's key
	Offset int64  // where reading stopped
	Type   string // what ObjectsSpec.Unavailable called the error
	Err    string // what went wrong
}

// After reports whether p's checkpoint is past q's: a later object, or further in the same.
func (p Progress) After(q Progress) bool {
	return p.Object > q.Object || p.Object == q.Object && p.Checkpoint > q.Checkpoint
}
