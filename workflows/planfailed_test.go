package workflows

import (
	"errors"
	"testing"

	"go.temporal.io/sdk/temporal"
)

// TestPlanFailedNamesThePage: a planning error names the page by its cursor, and the first
// page (empty cursor) as the first page rather than `after cursor ""`.
func TestPlanFailedNamesThePage(t *testing.T) {
	cause := temporal.NewNonRetryableApplicationError("planning es://x: no such index [x]", "NotFound", nil)
	for cursor, want := range map[string]string{
		"":            "planning the first page: planning es://x: no such index [x]",
		"logs/b.json": `planning the page after cursor "logs/b.json": planning es://x: no such index [x]`,
	} {
		var appErr *temporal.ApplicationError
		if err := planFailed(cursor, cause); !errors.As(err, &appErr) || appErr.Type() != ErrTypePlanFailed || appErr.Message() != want || !errors.Is(err, cause) {
			t.Errorf("cursor %q: %v, want %s %q wrapping the cause", cursor, err, ErrTypePlanFailed, want)
		}
	}
}
