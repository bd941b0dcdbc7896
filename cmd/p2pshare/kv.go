package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/p2pshare/p2pshare/node/api"
)

const (
	optTTL  = "ttl"
	optFile = "file"
	optRaw  = "raw"
)

// maxKVInput bounds what kv put reads from a file or stdin before the
// daemon's own limit (64 KiB by default) answers.
const maxKVInput = api.MaxKVBody

func newKVCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kv",
		Short: "Read and write the network's replicated key-value store",
		Long: `kv reads and writes a small key-value store that every node keeps a copy
of. A write is signed by the node that makes it and carries a hybrid logical
clock: the last write wins everywhere (ties broken by peer ID), a delete
wins the same way, and an entry with a TTL disappears from every node when
it expires. Reads are answered from this node's copy at once.

Keys are 1-256 bytes of UTF-8 without control characters; values are at
most 64 KiB (the daemon's limit).`,
		Example: `  p2pshare kv put motd "lab closed on Friday"
  p2pshare kv put session/42 token --ttl 15m
  p2pshare kv put config.json --file ./config.json
  p2pshare kv get motd
  p2pshare kv ls --json
  p2pshare kv del motd`,
		RunE: groupRunE,
	}
	cmd.AddCommand(newKVPutCmd(), newKVGetCmd(), newKVDelCmd(), newKVLsCmd())
	return cmd
}

func newKVPutCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "put KEY [VALUE]",
		Short: "Write KEY = VALUE on every node",
		Long: `put writes KEY = VALUE. The value is VALUE, or the contents of --file F, or
standard input when VALUE is '-' or left out (and stdin is not a terminal).
--ttl makes the entry expire everywhere after the given duration (90s, 15m,
2h, ...).`,
		Example: `  p2pshare kv put motd "lab closed on Friday"
  p2pshare kv put lock/printer node-3 --ttl 30s
  p2pshare kv put notes --file notes.txt --json
  date | p2pshare kv put last-boot`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageError{fmt.Sprintf("kv put takes KEY and an optional VALUE, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			key := args[0]
			file, _ := cmd.Flags().GetString(optFile)
			ttl, _ := cmd.Flags().GetString(optTTL)
			if cmd.Flags().Changed(optTTL) {
				if err := checkTTL(ttl); err != nil {
					return fail(fmt.Sprintf("kv put %q", key), err)
				}
			}
			var value []byte
			var err error
			switch {
			case file != "" && len(args) == 2:
				return usageError{"kv put takes a VALUE or --file, not both"}
			case file != "":
				value, err = readLimited(file, func() (io.ReadCloser, error) { return os.Open(file) })
			case len(args) == 2 && args[1] != "-":
				value = []byte(args[1])
			default:
				if fi, serr := os.Stdin.Stat(); serr == nil && fi.Mode()&os.ModeCharDevice != 0 && len(args) == 1 {
					return usageError{"kv put needs a VALUE, --file F, or a value on standard input"}
				}
				value, err = readLimited("standard input", func() (io.ReadCloser, error) { return io.NopCloser(os.Stdin), nil })
			}
			if err != nil {
				return fail(fmt.Sprintf("kv put %q", key), err)
			}
			e, err := quickCall(cmd, "", func(c *api.Client, ctx context.Context) (api.KVEntry, error) {
				return c.KVPut(ctx, api.KVPutRequest{Key: key, Value: value, TTL: ttl})
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if jsonFlag(cmd) {
				return printJSON(out, e)
			}
			fmt.Fprintf(out, "put %q (%d bytes) by %s at %s", e.Key, e.Size, e.Writer, e.Time)
			if e.Expires != "" {
				fmt.Fprintf(out, ", expires %s", e.Expires)
			}
			fmt.Fprintln(out)
			return nil
		},
	}
	cmd.Flags().String(optTTL, "", "expire the entry everywhere after this duration (e.g. 90s, 15m, 2h)")
	cmd.Flags().String(optFile, "", "read the value from this file")
	addJSONFlag(cmd)
	return cmd
}

// checkTTL checks a --ttl before the daemon is asked, for a clear message.
func checkTTL(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("bad TTL %q: want a duration such as 90s, 15m or 2h", s)
	}
	if d <= 0 {
		return fmt.Errorf("bad TTL %q: must be positive", s)
	}
	return nil
}

// readLimited reads at most maxKVInput bytes from what open returns.
func readLimited(what string, open func() (io.ReadCloser, error)) ([]byte, error) {
	rc, err := open()
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxKVInput+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if len(b) > maxKVInput {
		return nil, fmt.Errorf("%s: value over %d bytes", what, maxKVInput)
	}
	return b, nil
}

func newKVGetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Print the value of KEY, with who wrote it and when",
		Long: `get prints KEY's value from this node's copy of the store (asking the DHT if
this node has never seen the key), followed by a line naming the writer and
the time of the write. --raw prints the value alone, byte for byte; --json
prints the whole entry.`,
		Example: `  p2pshare kv get motd
  p2pshare kv get config.json --raw > config.json
  p2pshare kv get motd --json | jq -r .writer`,
		Args: exactArgs(1, "one KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := quickCall(cmd, "", func(c *api.Client, ctx context.Context) (api.KVEntry, error) {
				return c.KVGet(ctx, args[0])
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if jsonFlag(cmd) {
				return printJSON(out, e)
			}
			v := e.Bytes()
			if _, err := out.Write(v); err != nil {
				return fail("kv get", err)
			}
			if raw, _ := cmd.Flags().GetBool(optRaw); raw {
				return nil
			}
			if len(v) > 0 && !bytes.HasSuffix(v, []byte("\n")) {
				fmt.Fprintln(out)
			}
			fmt.Fprintf(out, "-- written by %s at %s", e.Writer, e.Time)
			if e.Expires != "" {
				fmt.Fprintf(out, ", expires %s", e.Expires)
			}
			fmt.Fprintln(out)
			return nil
		},
	}
	cmd.Flags().Bool(optRaw, false, "print the value only, exactly as stored")
	addJSONFlag(cmd)
	return cmd
}

func newKVDelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "del KEY",
		Short: "Delete KEY on every node",
		Long: `del writes a tombstone for KEY: it wins over every earlier write on every
node, so the key is gone everywhere. Deleting a key that does not exist is
an error.`,
		Example: `  p2pshare kv del motd`,
		Args:    exactArgs(1, "one KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := quickCall(cmd, "", func(c *api.Client, ctx context.Context) (api.KVEntry, error) {
				return c.KVDelete(ctx, args[0])
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if jsonFlag(cmd) {
				return printJSON(out, e)
			}
			fmt.Fprintf(out, "deleted %q at %s\n", e.Key, e.Time)
			return nil
		},
	}
	addJSONFlag(cmd)
	return cmd
}

func newKVLsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "ls",
		Short:   "List every key with its size, writer and time",
		Example: "  p2pshare kv ls\n  p2pshare kv ls --json | jq -r '.[].key'",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			es, err := quickCall(cmd, "kv ls", (*api.Client).KVList)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if jsonFlag(cmd) {
				return printJSON(out, es)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tSIZE\tWRITER\tTIME\tEXPIRES")
			for _, e := range es {
				exp := "-"
				if e.Expires != "" {
					exp = e.Expires
				}
				fmt.Fprintf(tw, "%q\t%d\t%s\t%s\t%s\n", e.Key, e.Size, shortID(e.Writer), e.Time, exp)
			}
			return tw.Flush()
		},
	}
	addJSONFlag(cmd)
	return cmd
}

// shortID shortens a peer ID for tables: the last 8 characters, which
// differ between peers (the first ones are the same key-type prefix).
func shortID(id string) string {
	if len(id) <= 12 {
		return id
	}
	return "…" + id[len(id)-8:]
}
