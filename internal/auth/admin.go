package auth

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
)

// OpenKeyStore opens the API key store of a table; endpointURL ("" for the
// default) points at another DynamoDB endpoint, e.g. DynamoDB Local.
type OpenKeyStore func(ctx context.Context, table, endpointURL string) (KeyPutter, error)

const adminUsage = `usage: admin create-key --role read|write [--name NAME] [--description TEXT] [--table NAME] [--endpoint-url URL]
       admin name-keys [--table NAME] [--endpoint-url URL]

create-key generates an API key, stores its SHA-256 hash under a unique name
(default: the key's id) and prints the key once on stdout (nothing else goes
to stdout). The name is what GET/DELETE /v0/api_keys/{name} manage it by.

name-keys gives every key stored before keys had names its id as name, so
that /v0/api_keys lists it and can delete it (a one-off scan of the table;
idempotent). Such keys authenticate with or without it.

The table defaults to $SLUICE_TABLE.
`

// KeyNamer names the API keys stored before keys had names; *store.Dynamo
// satisfies it.
type KeyNamer interface {
	NameLegacyAPIKeys(ctx context.Context) ([]store.APIKey, error)
}

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
	if args[0] != "create-key" && args[0] != "name-keys" {
		fmt.Fprintf(stderr, "admin: unknown command %q\n\n%s", args[0], adminUsage)
		return 2
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	role, name, description := new(string), new(string), new(string)
	if args[0] == "create-key" {
		role = fs.String("role", "", "role of the key: read or write")
		name = fs.String("name", "", "unique name of the key (default: its id)")
		description = fs.String("description", "", "what the key is for (stored with it)")
	}
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
	var r store.Role
	if args[0] == "create-key" {
		r = store.Role(strings.ToLower(*role))
		if r != store.RoleRead && r != store.RoleWrite {
			fmt.Fprintln(stderr, "admin: --role must be read or write")
			return 2
		}
		if *name != "" {
			if err := domain.ValidateName(*name); err != nil {
				fmt.Fprintf(stderr, "admin: --name: %v\n", err)
				return 2
			}
		}
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
	if args[0] == "name-keys" {
		return nameKeys(ctx, keys, *table, stderr)
	}
	secret, key, err := CreateNamedKey(ctx, keys, *name, r, *description)
	if err != nil {
		fmt.Fprintf(stderr, "admin: %v\n", err)
		return 1
	}
	if _, err := fmt.Fprintln(stdout, secret); err != nil {
		fmt.Fprintf(stderr, "admin: writing the key: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "created API key %q, id %s (role %s) in table %s. The key above is shown only once: store it now.\n", key.Name, key.ID, key.Role, *table)
	return 0
}

func nameKeys(ctx context.Context, keys KeyPutter, table string, stderr io.Writer) int {
	namer, ok := keys.(KeyNamer)
	if !ok {
		fmt.Fprintln(stderr, "admin: this key store cannot name keys")
		return 1
	}
	named, err := namer.NameLegacyAPIKeys(ctx)
	for _, k := range named {
		fmt.Fprintf(stderr, "named API key id %s (role %s) %q\n", k.ID, k.Role, k.Name)
	}
	fmt.Fprintf(stderr, "%d API keys named in table %s\n", len(named), table)
	if err != nil {
		fmt.Fprintf(stderr, "admin: %v\n", err)
		return 1
	}
	return 0
}
