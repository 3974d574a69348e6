package es_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/ingest/es"
)

// Finding 10 of issue 7: an address that is not a valid URL must not print its password in
// the error that stops start-up, nor through Config's String.
func TestMalformedAddressDoesNotPrintItsPassword(t *testing.T) {
	const secret = "s3cr3t-pa55"
	for _, addr := range []string{
		"http://elastic:" + secret + "@exa mple.com:9200",
		"http://elastic:" + secret + "@[::1:9200",
		"http://elastic:" + secret + "@host:port9200",
		"elastic:" + secret + "@host:9200",
		"ftp://elastic:" + secret + "@host:9200",
		"http://elastic:" + secret + "@host:9200/%zz",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := es.New(ctx, es.Config{Addresses: []string{addr}, Password: secret})
		cancel()
		if err == nil {
			t.Errorf("%q: accepted", strings.ReplaceAll(addr, secret, "***"))
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error prints the password: %s", strings.ReplaceAll(err.Error(), secret, "***"))
		}
		if s := (es.Config{Addresses: []string{addr}, Password: secret}).String(); strings.Contains(s, secret) {
			t.Errorf("Config.String prints the password: %s", strings.ReplaceAll(s, secret, "***"))
		}
	}
}
