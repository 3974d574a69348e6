package ingest

// Progress is reported whenever the checkpoint advances.
type Progress struct {
	// Checkpoint: every record that starts before it has been acknowledged. A resumed
	// attempt continues reading there.
	Checkpoint int64
	// Stats count the records before Checkpoint (so a resumed attempt that starts from them
	// counts nothing twice).
	Stats Stats
}
