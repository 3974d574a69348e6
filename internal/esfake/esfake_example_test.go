package esfake_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/sluicehq/sluice/internal/esfake"
)

// A server that rejects the first send of document "b" with a 429, as a busy cluster does.
func ExampleNew() {
	es := esfake.New(esfake.Options{ItemFault: func(it *esfake.Item) esfake.ItemError {
		if it.ID == "b" && it.Attempt == 1 {
			return esfake.Rejected()
		}
		return esfake.ItemError{}
	}})
	defer es.Close()

	body := `{"index":{"_index":"logs","_id":"a"}}` + "\n" + `{"n":1}` + "\n" +
		`{"index":{"_index":"logs","_id":"b"}}` + "\n" + `{"n":2}` + "\n"
	resp, err := http.Post(es.URL()+"/_bulk", "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	st := es.Stats()
	fmt.Println(resp.StatusCode, es.Count("logs"), st.ItemStatuses[201], st.ItemStatuses[429])
	// Output: 200 1 1 1
}

// Faults for whole requests: the second bulk request gets a 503.
func ExampleServer_SetFault() {
	es := esfake.New(esfake.Options{})
	defer es.Close()
	es.SetFault(func(r *esfake.Request) esfake.Decision {
		if r.Endpoint == esfake.Bulk && r.Seq == 2 {
			return esfake.Decision{Status: http.StatusServiceUnavailable}
		}
		return esfake.Decision{}
	})
	for range 3 {
		resp, err := http.Post(es.URL()+"/logs/_bulk", "application/x-ndjson",
			strings.NewReader(`{"index":{}}`+"\n"+`{}`+"\n"))
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Print(resp.StatusCode, " ")
	}
	fmt.Println(es.Count("logs"))
	// Output: 200 503 200 2
}
