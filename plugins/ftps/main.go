// Command ftps is the FTPS source and sink (package connectors/ftps) served
// as a connector plugin.
//
//	make plugins    # bin/plugins.d/ftps, which bin/runner finds
//
//	sinks:
//	  - ftps:
//	      host: ftp.example.com
//	      user: partner
//	      password: ${FTPS_PASSWORD}
//	      ca_file: /etc/mftflow/partner-ca.pem
//	      directory: /inbound
//	      trigger: "{name}.done"
package main

import (
	"fmt"
	"os"

	"github.com/mftflow/mftflow/connectors/ftps"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/plugins/sdk"
)

func main() {
	r := pipeline.NewRegistry()
	if err := ftps.Register(r); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sdk.Serve(r, sdk.Version("1.0.0"))
}
