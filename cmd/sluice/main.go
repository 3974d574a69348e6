// Command sluice moves large datasets from S3 into Elasticsearch, durably, on Temporal.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
