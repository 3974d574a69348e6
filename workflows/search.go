package workflows

import (
	"go.temporal.io/sdk/temporal"

	"github.com/sluicehq/sluice/activities"
)

// Search attributes sluice sets on the backfills it starts, so that runs can be found in the
// Temporal UI (SluiceIndex = 'logs') and listed by `sluice list`. Both are Keyword attributes of
// the namespace: sluice workers register them when missing (worker.RegisterSearchAttributes),
// or an operator does (temporal operator search-attribute create --name SluiceIndex --type
// Keyword). They hold what the memo holds, never a secret.
var (
	SearchAttributeIndex  = temporal.NewSearchAttributeKeyKeyword("SluiceIndex")
	SearchAttributeSource = temporal.NewSearchAttributeKeyKeyword("SluiceSource")
)

// SearchAttributes are the search attributes of a backfill of src.
func SearchAttributes(src activities.Source) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(SearchAttributeIndex.ValueSet(src.Index), SearchAttributeSource.ValueSet(src.URI))
}
