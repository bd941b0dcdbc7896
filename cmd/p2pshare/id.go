package main

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/p2pshare/p2pshare/node"
	"github.com/p2pshare/p2pshare/node/api"
)

func newIDCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "id",
		Short: "Show the running node's peer ID, addresses, reachability, API URL and clock offset",
		Long: `id prints the running node's peer ID, its addresses, its reachability
(public: peers on the internet can dial it; private: behind a NAT, reached
through relays; unknown: AutoNAT cannot tell, as on a LAN), the public
addresses others see, its API URL and how far its clock is from the
network's (the median of its peers' clocks). When its clock is off by more
than the records allow (30 s), it warns (JSON: the "clock" field): the node
refuses every write until the clock is fixed.`,
		Example: `  p2pshare id
  p2pshare id --json | jq -r '.addrs[0]'    # an address others can --bootstrap to`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if off, _ := cmd.Flags().GetBool(optOffline); off {
				return offlineID(cmd)
			}
			info, err := quickCall(cmd, "id", (*api.Client).ID)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if jsonFlag(cmd) {
				return printJSON(out, info)
			}
			fmt.Fprintf(out, "peer    %s\napi     %s\nreach   %s\n", info.ID, info.API, info.Reachability)
			for _, a := range info.Addrs {
				fmt.Fprintf(out, "addr    %s\n", a)
			}
			for _, a := range info.PublicAddrs {
				fmt.Fprintf(out, "public  %s\n", a)
			}
			if info.OffsetPeers > 0 {
				fmt.Fprintf(out, "clock   %s from the network (median of %d peers)\n", formatOffset(info.OffsetMillis), info.OffsetPeers)
			}
			if info.Clock != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "p2pshare: warning: %s\n", info.Clock)
			}
			return nil
		},
	}
	addJSONFlag(cmd)
	cmd.Flags().Bool(optOffline, false, "read the peer ID from the repo without a running daemon (creating the repo and its identity if new), e.g. to get a ticket before the first start")
	return cmd
}

const optOffline = "offline"

// offlineID prints the repo's peer ID, opening (and if new, creating) the
// repo as a daemon would.
func offlineID(cmd *cobra.Command) error {
	dir, err := repoDir(cmd)
	if err != nil {
		return err
	}
	r, err := node.OpenRepo(dir)
	if err != nil {
		return fail("id --offline", err)
	}
	defer r.Close()
	k, err := r.Identity()
	if err != nil {
		return fail("id --offline", err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		return fail("id --offline", err)
	}
	if jsonFlag(cmd) {
		return printJSON(cmd.OutOrStdout(), map[string]string{"id": id.String()})
	}
	fmt.Fprintln(cmd.OutOrStdout(), id)
	return nil
}
