package workflows

import "fmt"

// Versions of the inputs this worker reads. A caller (package sluiceapi, the CLI, a schedule)
// writes its version into the input's Version field; 0, from callers that predate the field,
// means 1. An input of a higher version was written by a newer sluice whose fields this worker
// would silently ignore (JSON decoding drops unknown fields), so it is refused, non-retryable,
// instead of run with a different meaning. The shapes only grow (see package sluiceapi), so
// every version up to these is read.
const (
	BackfillVersion = 1 // of BackfillInput
	ReindexVersion  = 1 // of ReindexInput
)

// checkVersion refuses an input of kind (e.g. "backfill") written at a version newer than
// understood.
func checkVersion(kind string, version, understood int) error {
	if version > understood {
		return fmt.Errorf("%s input written by a newer sluice: version %d, this worker understands up to %d; upgrade the workers", kind, version, understood)
	}
	return nil
}
