package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/p2pshare/p2pshare/node/api"
)

func newPeersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "peers",
		Short: "List connected peers with their round-trip time and path (direct or relayed)",
		Example: `  p2pshare peers
  p2pshare peers --json | jq length`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			peers, err := quickCall(cmd, "peers", (*api.Client).Peers)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if jsonFlag(cmd) {
				return printJSON(out, peers)
			}
			if len(peers) == 0 {
				fmt.Fprintln(out, "no connected peers")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PEER\tRTT\tVIA\tADDRESS")
			for _, p := range peers {
				rtt := "-"
				if p.RTTMillis > 0 {
					rtt = fmt.Sprintf("%.2f ms", p.RTTMillis)
				}
				via := p.Via
				if p.Relay != "" {
					via += " (relay " + p.Relay + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.ID, rtt, via, strings.Join(p.Addrs, " "))
			}
			return tw.Flush()
		},
	}
	addJSONFlag(cmd)
	return cmd
}
