package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/p2pshare/p2pshare/node/api"
)

const optName = "name"

func newShareCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "share FILE|DIR",
		Short: "Share a file with the network under a name",
		Long: `share copies FILE into the node's store (hashing it on the way), writes the
name's record in the network's catalog (name -> CID, size, signed by this
node), which reaches every node by gossip, puts a copy of that record in the
DHT and announces this node as a provider. It returns once both are in the
DHT, so the name can be fetched from any node the moment share prints it.
The name defaults to FILE's base name; a later share of the same name wins.
FILE '-' reads standard input (then --name is required).

A directory DIR shares every regular file under it, each under its own
name DIR/relative/path (DIR's base name first), with the same checks on
every component of the name. A symlink is followed only to a file inside
DIR; others, and names that fail the checks, are reported and skipped
while the rest are shared; the summary counts both.`,
		Example: `  p2pshare share notes.txt
  p2pshare share ./build/report-v2.txt --name report.txt
  echo hello | p2pshare share - --name hello.txt --json
  p2pshare share ~/photos`,
		Args: exactArgs(1, "one FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			name, _ := cmd.Flags().GetString(optName)
			if cmd.Flags().Changed(optName) && name == "" {
				return fail("share "+file, errors.New("invalid name: empty (leave out --name to use the file's name)"))
			}
			req := api.ShareRequest{Name: name}
			if file == "-" {
				if name == "" {
					return usageError{"share - (standard input) needs --name"}
				}
				req.Body = os.Stdin
			} else {
				abs, err := filepath.Abs(file)
				if err != nil {
					return fail("share "+file, err)
				}
				fi, err := os.Stat(abs)
				if err != nil {
					var pe *os.PathError
					if errors.As(err, &pe) {
						err = pe.Err
					}
					return fail("share "+file, err)
				}
				if fi.IsDir() {
					if name != "" {
						return usageError{"share DIR takes no --name: its files are shared as DIR/relative/path"}
					}
					return shareFolder(cmd, file)
				}
				if !fi.Mode().IsRegular() {
					return fail("share "+file, errors.New("not a regular file"))
				}
				req.Path = abs
			}
			c, err := client(cmd)
			if err != nil {
				return err
			}
			if showProgress(cmd) {
				req.ID = transferID()
				stop := watchTransfer(cmd.Context(), c, req.ID, "share "+filepath.Base(file), cmd.ErrOrStderr())
				res, err := c.Share(cmd.Context(), req)
				stop()
				return printShare(cmd, file, res, err)
			}
			res, err := c.Share(cmd.Context(), req)
			return printShare(cmd, file, res, err)
		},
	}
	cmd.Flags().String(optName, "", "name to share the file under (default: FILE's base name)")
	addJSONFlag(cmd)
	return cmd
}

func printShare(cmd *cobra.Command, file string, res api.ShareResult, err error) error {
	if errors.Is(err, api.ErrSecret) {
		return fail("share", err) // the daemon's refusal names the file
	}
	if err != nil {
		return fail("share "+file, err)
	}
	out := cmd.OutOrStdout()
	if jsonFlag(cmd) {
		return printJSON(out, res)
	}
	fmt.Fprintf(out, "shared %s\n  cid  %s\n  size %d bytes\n", res.Name, res.CID, res.Size)
	if len(res.Replicas) > 0 {
		fmt.Fprintf(out, "  copies on %s\n", strings.Join(res.Replicas, ", "))
	}
	if res.ReplicaError != "" {
		fmt.Fprintf(out, "  warning: %s\n", res.ReplicaError)
	}
	if !res.Published {
		fmt.Fprintln(out, "  note: no peer connected yet; the name is announced when one connects")
	}
	return nil
}
