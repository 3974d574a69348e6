package worker

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/sluicehq/sluice/workflows"
)

// RegisterSearchAttributes adds sluice's search attributes (workflows.SearchAttributeIndex,
// SearchAttributeSource) to namespace when they are missing. It needs the operator API: a
// local or self-hosted server allows it; where it is refused (Temporal Cloud, a restricted
// role), register them once by hand, or run without them (backfills start all the same).
func RegisterSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	ops := c.OperatorService()
	have, err := ops.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("listing the search attributes of namespace %s: %w", namespace, err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for _, name := range []string{workflows.SearchAttributeIndex.GetName(), workflows.SearchAttributeSource.GetName()} {
		if _, ok := have.GetCustomAttributes()[name]; !ok {
			missing[name] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := ops.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing}); err != nil {
		return fmt.Errorf("adding search attributes to namespace %s: %w", namespace, err)
	}
	return nil
}
