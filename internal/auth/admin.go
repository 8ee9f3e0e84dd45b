package auth

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/sluicehq/sluice/internal/store"
)

// OpenKeyStore opens the API key store of a table; endpointURL ("" for the
// default) points at another DynamoDB endpoint, e.g. DynamoDB Local.
type OpenKeyStore func(ctx context.Context, table, endpointURL string) (KeyPutter, error)

const adminUsage = `usage: admin create-key --role read|write [--description TEXT] [--table NAME] [--endpoint-url URL]

create-key generates an API key, stores its SHA-256 hash and prints the key
once on stdout (nothing else goes to stdout). The table defaults to $SLUICE_TABLE.
`

// RunAdmin is the admin CLI (infra/admin): args without the program
// name. It returns the process exit code: 0 done, 1 failed, 2 usage error.
// Only the new key is written to stdout; everything else goes to stderr.
func RunAdmin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, open OpenKeyStore) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, adminUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] != "create-key" {
		fmt.Fprintf(stderr, "admin: unknown command %q\n\n%s", args[0], adminUsage)
		return 2
	}
	fs := flag.NewFlagSet("create-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	role := fs.String("role", "", "role of the key: read or write")
	description := fs.String("description", "", "what the key is for (stored with it)")
	table := fs.String("table", getenv("SLUICE_TABLE"), "DynamoDB table (default $SLUICE_TABLE)")
	endpoint := fs.String("endpoint-url", "", "DynamoDB endpoint URL (e.g. DynamoDB Local)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "admin: unexpected arguments %q\n", fs.Args())
		return 2
	}
	r := store.Role(strings.ToLower(*role))
	if r != store.RoleRead && r != store.RoleWrite {
		fmt.Fprintln(stderr, "admin: --role must be read or write")
		return 2
	}
	if *table == "" {
		fmt.Fprintln(stderr, "admin: no table: pass --table or set SLUICE_TABLE")
		return 2
	}
	keys, err := open(ctx, *table, *endpoint)
	if err != nil {
		fmt.Fprintf(stderr, "admin: opening table %s: %v\n", *table, err)
		return 1
	}
	secret, key, err := CreateKey(ctx, keys, r, *description)
	if err != nil {
		fmt.Fprintf(stderr, "admin: %v\n", err)
		return 1
	}
	if _, err := fmt.Fprintln(stdout, secret); err != nil {
		fmt.Fprintf(stderr, "admin: writing the key: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "created API key id %s (role %s) in table %s. The key above is shown only once: store it now.\n", key.ID, key.Role, *table)
	return 0
}
