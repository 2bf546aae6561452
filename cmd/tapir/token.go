package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tapir-sensor/tapir/collector/api"
)

func init() {
	register(&command{name: "token", summary: "create an API bearer token and its hashed entry for the collector's tokens file", run: runToken})
}

// apiRoles are the roles the collector's API knows, in the order help
// lists them.
var apiRoles = []string{string(api.RoleFlowsRead), string(api.RolePcapRead), string(api.RoleAdmin)}

// runToken: tapir token create --name NAME --role ROLE[,ROLE] [--tokens-file F].
func runToken(_ context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "create" {
		return fmt.Errorf("%w: tapir token create --name NAME --role ROLE[,ROLE...] [--tokens-file FILE]", errUsage)
	}
	fs := flag.NewFlagSet("tapir token create", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	name := fs.String("name", "", "subject the token authenticates as (audit log name), e.g. alice")
	roles := fs.String("role", string(api.RoleFlowsRead), "roles, comma-separated: "+strings.Join(apiRoles, ", "))
	file := fs.String("tokens-file", "", "append the hashed entry to this tokens file (the collector's api.tokens_file; created 0600 if missing); default: print the entry on stderr")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	entry, tok, err := newTokenEntry(*name, *roles)
	if err != nil {
		return err
	}
	if *file == "" {
		fmt.Fprintf(e.stderr, "add this line to the collector's tokens file, then send it SIGHUP:\n%s", entry)
	} else {
		if err := appendTokenEntry(*file, entry); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "added %s's token to %s; send the collector SIGHUP to load it. The token is shown once:\n", *name, *file)
	}
	_, err = fmt.Fprintln(e.stdout, tok)
	return err
}

// newTokenEntry makes a random token and its tokens-file line: the hex
// SHA-256 of the token mapped to subject and roles.
func newTokenEntry(name, roles string) (entry, token string, err error) {
	if name == "" || strings.ContainsAny(name, "\n\r\"'{}[],:#") {
		return "", "", fmt.Errorf("%w: --name must be a plain non-empty name", errUsage)
	}
	var list []string
	for _, r := range strings.Split(roles, ",") {
		r = strings.TrimSpace(r)
		if !slices.Contains(apiRoles, r) {
			return "", "", fmt.Errorf("%w: unknown role %q (roles: %s)", errUsage, r, strings.Join(apiRoles, ", "))
		}
		list = append(list, r)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", "", fmt.Errorf("random token: %w", err)
	}
	token = "tapir_" + base64.RawURLEncoding.EncodeToString(raw[:])
	entry = fmt.Sprintf("%q: {subject: %q, roles: [%s]}\n", api.HashToken(token), name, strings.Join(list, ", "))
	return entry, token, nil
}

// appendTokenEntry adds entry to the tokens file, checking that the
// result still parses as the collector parses it, and replaces the file
// atomically (mode 0600).
func appendTokenEntry(path, entry string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read tokens file: %w", err)
	}
	if len(old) > 0 && old[len(old)-1] != '\n' {
		old = append(old, '\n')
	}
	data := append(old, entry...)
	if _, err := api.ParseTokens(data); err != nil {
		return fmt.Errorf("tokens file %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tokens-*")
	if err != nil {
		return fmt.Errorf("write tokens file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write tokens file: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write tokens file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write tokens file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write tokens file: %w", err)
	}
	return nil
}
