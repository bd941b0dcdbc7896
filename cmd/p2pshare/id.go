package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newIDCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "id",
		Short: "Show the running node's peer ID, addresses and API URL",
		Example: `  p2pshare id
  p2pshare id --json | jq -r '.addrs[0]'    # an address others can --bootstrap to`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := quickCtx(cmd)
			defer cancel()
			info, err := c.ID(ctx)
			if err != nil {
				return fail("id", err)
			}
			out := cmd.OutOrStdout()
			if jsonFlag(cmd) {
				return printJSON(out, info)
			}
			fmt.Fprintf(out, "peer  %s\napi   %s\n", info.ID, info.API)
			for _, a := range info.Addrs {
				fmt.Fprintf(out, "addr  %s\n", a)
			}
			return nil
		},
	}
	addJSONFlag(cmd)
	return cmd
}
