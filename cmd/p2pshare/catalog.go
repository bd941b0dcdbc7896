package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/p2pshare/p2pshare/node/api"
)

func newLsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ls [DIR/]",
		Short: "List every name shared in the network",
		Long: `ls prints the network's catalog, which every node keeps a copy of: each
shared name with its CID, size, publisher, time and the peers that hold it.
It answers at once from this node's copy. With DIR/ it lists the names
under that folder (see 'share DIR').`,
		Example: `  p2pshare ls
  p2pshare ls photos/
  p2pshare ls --json | jq -r '.[].name'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 || len(args) == 1 && !isFolderRef(args[0]) {
				return usageError{"ls takes no argument, or one folder DIR/ (ending in '/')"}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				return runCatalog(cmd, "ls "+args[0], "", args[0])
			}
			return runCatalog(cmd, "ls", "", "")
		},
	}
	addJSONFlag(cmd)
	return cmd
}

func newSearchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "search TERM",
		Short: "List the shared names that contain TERM, in any case",
		Long: `search prints the catalog entries whose name holds TERM, ignoring case, from
this node's copy of the catalog.`,
		Example: `  p2pshare search notes
  p2pshare search .TXT --json`,
		Args: exactArgs(1, "one TERM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "" {
				return usageError{"search needs a non-empty TERM (use 'p2pshare ls' to list everything)"}
			}
			return runCatalog(cmd, "search", args[0], "")
		},
	}
	addJSONFlag(cmd)
	return cmd
}

// runCatalog prints the catalog's entries whose name holds term, or
// (prefix set) that are under the folder prefix.
func runCatalog(cmd *cobra.Command, what, term, prefix string) error {
	es, err := quickCall(cmd, what, func(c *api.Client, ctx context.Context) ([]api.CatalogEntry, error) {
		if prefix != "" {
			return folderNames(ctx, c, prefix)
		}
		return c.Catalog(ctx, term)
	})
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if jsonFlag(cmd) {
		if es == nil {
			es = []api.CatalogEntry{}
		}
		return printJSON(out, es)
	}
	if len(es) == 0 {
		switch {
		case prefix != "":
			fmt.Fprintf(cmd.ErrOrStderr(), "no shared name under %s\n", prefix)
		case term != "":
			fmt.Fprintf(cmd.ErrOrStderr(), "no shared name contains %q\n", term)
		default:
			fmt.Fprintln(cmd.ErrOrStderr(), "the catalog is empty: nothing is shared yet")
		}
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSIZE\tCID\tPUBLISHER\tHOLDERS")
	for _, e := range es {
		hs := make([]string, len(e.Holders))
		for i, h := range e.Holders {
			hs[i] = shortID(h.Peer)
			if h.State != "alive" && h.State != "" {
				hs[i] += " " + h.State
			}
			if h.CustodyFor != "" {
				hs[i] += " (for " + shortID(h.CustodyFor) + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", e.Name, e.Size, e.CID, shortID(e.Publisher), strings.Join(hs, ","))
	}
	return tw.Flush()
}
