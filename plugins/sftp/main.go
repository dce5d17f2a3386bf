// Command sftp is the SFTP source and sink (package connectors/sftp) served as a
// connector plugin.
//
//	make plugins    # bin/plugins.d/sftp, which bin/runner finds
//
//	sinks:
//	  - sftp:
//	      host: sftp.example.com
//	      user: partner
//	      private_key: /etc/mftflow/partner.key
//	      known_hosts: /etc/mftflow/known_hosts
//	      directory: /inbound
//	      trigger: "{name}.done"
package main

import (
	"fmt"
	"os"

	"github.com/mftflow/mftflow/connectors/sftp"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/plugins/sdk"
)

func main() {
	r := pipeline.NewRegistry()
	if err := sftp.Register(r); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sdk.Serve(r, sdk.Version("1.0.0"))
}
