package host_test

import (
	"testing"

	"github.com/mftflow/mftflow/testkit/ftpd"
)

// The FTPS plugin passes the conformance suites unchanged over RPC, against
// a real vsftpd.
func TestFTPSPluginConformanceOverRPC(t *testing.T) {
	srv := ftpd.Start(t, ftpd.Options{})
	reg, err := load(t, pluginsDir(t, "ftps"), nil)
	if err != nil {
		t.Fatal(err)
	}
	remoteConformanceOverRPC(t, reg, "ftps", srv.UserDir, map[string]any{
		"host": srv.Host, "port": srv.Port, "user": srv.User, "password": srv.Password,
		"ca_file": srv.CAFile, "disable_tls13": true,
	})
}

// The FTPS plugin's items open the files beside them and have their
// companions follow the after action over RPC.
func TestFTPSPluginSiblingsOverRPC(t *testing.T) {
	srv := ftpd.Start(t, ftpd.Options{})
	reg, err := load(t, pluginsDir(t, "ftps"), nil)
	if err != nil {
		t.Fatal(err)
	}
	remoteSiblingsOverRPC(t, reg, "ftps", srv.UserDir, map[string]any{
		"host": srv.Host, "port": srv.Port, "user": srv.User, "password": srv.Password,
		"ca_file": srv.CAFile, "disable_tls13": true,
	})
}
