package tlsconfig

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
)

const certsUsage = `usage: tapir certs <command> [-dir DIR] [args]

Development certificate authority (ECDSA P-256) for tapir's mutual TLS.

  init                       create a CA in DIR (ca.pem, ca-key.pem)
  server NAME|IP...          issue server.pem for the collector's names
  sensor SENSOR-ID           issue sensor-<id>.pem (identity tapir://sensor/<id>)
  client [-role ROLE] USER   issue client-<user>.pem (identity tapir://user/<user>)

DIR defaults to ./tapir-certs. Keys are written with mode 0600.
`

// RunCertsCommand implements "tapir certs": args are the arguments after
// "certs". Output goes to stdout.
func RunCertsCommand(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, certsUsage)
		if len(args) == 0 {
			return fmt.Errorf("certs: missing command")
		}
		return nil
	}
	cmd := args[0]
	fs := flag.NewFlagSet("certs "+cmd, flag.ContinueOnError)
	fs.SetOutput(stdout)
	dir := fs.String("dir", "tapir-certs", "certificate directory")
	role := fs.String("role", "flows:read", "user role (client only): flows:read, pcap:read or admin, as the collector's api.cert_roles grants them")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	rest := fs.Args()
	var err error
	var issued string
	switch cmd {
	case "init":
		err, issued = GenerateCA(*dir), "ca"
	case "server":
		if len(rest) == 0 {
			return fmt.Errorf("certs server: give at least one DNS name or IP")
		}
		err, issued = IssueServer(*dir, rest...), "server"
	case "sensor":
		if len(rest) != 1 {
			return fmt.Errorf("certs sensor: give exactly one sensor id")
		}
		err, issued = IssueSensor(*dir, rest[0]), "sensor-"+rest[0]
	case "client":
		if len(rest) != 1 {
			return fmt.Errorf("certs client: give exactly one user name")
		}
		err, issued = IssueClient(*dir, rest[0], *role), "client-"+rest[0]
	default:
		fmt.Fprint(stdout, certsUsage)
		return fmt.Errorf("certs: unknown command %q", cmd)
	}
	if err != nil {
		return fmt.Errorf("certs %s: %w", cmd, err)
	}
	c, k := Paths(*dir, issued)
	fmt.Fprintf(stdout, "wrote %s\nwrote %s\n", c, k)
	if cmd != "init" {
		fmt.Fprintf(stdout, "signed by %s\n", CAPath(*dir))
	}
	return nil
}

// CAPath returns the CA certificate path in dir.
func CAPath(dir string) string { return filepath.Join(dir, CAFile) }
