package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/p2pshare/p2pshare/node/api"
)

func newMembersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List the network's members and whether each is alive, suspect, dead or left",
		Long: `members prints this node's members table: every node heard on the membership
topic, its state (alive, suspect, dead, left), when it was last heard from,
its incarnation (which grows on every restart), its RTT and how far its clock
is ahead of this node's (OFFSET; negative: behind; "-" until measured). An RTT
marked ~ is estimated from network coordinates, for a member this node has
not measured; --json gives both, as rtt_ms and rtt_est_ms.`,
		Example: `  p2pshare members
  p2pshare members --json | jq -r '.[] | select(.state=="dead") | .id'`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ms, err := quickCall(cmd, "members", (*api.Client).Members)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if jsonFlag(cmd) {
				return printJSON(out, ms)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PEER\tSTATE\tLAST SEEN\tRTT\tOFFSET\tFILES")
			for _, m := range ms {
				seen := "now"
				if t, err := time.Parse(time.RFC3339Nano, m.LastSeen); err == nil && !m.Self {
					seen = time.Since(t).Round(time.Millisecond).String() + " ago"
					if t.IsZero() { // known only from other members so far
						seen = "-"
					}
				}
				id := m.ID
				if m.Self {
					id += " (self)"
				}
				rtt := "-"
				switch {
				case m.RTTMillis > 0:
					rtt = fmt.Sprintf("%.2f ms", m.RTTMillis)
				case m.RTTEstMillis != nil:
					rtt = fmt.Sprintf("~%.2f ms", *m.RTTEstMillis)
				}
				offset := "-"
				if m.OffsetMillis != nil {
					offset = formatOffset(*m.OffsetMillis)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", id, m.State, seen, rtt, offset, m.Files)
			}
			return tw.Flush()
		},
	}
	addJSONFlag(cmd)
	return cmd
}

func newLeaveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "leave",
		Short: "Hand off files, leave the network gracefully and stop the daemon",
		Long: `leave first hands off every file this node holds that would otherwise fall
below R copies (or that only it holds): each goes to the closest live member
by RTT, which keeps it in custody until this node comes back (then gives it
back). It waits until every copy is verified there and prints what moved
where. Then it tells the network goodbye on the membership topic, so every
other node marks this one 'left' at once, and stops the daemon. If a file
cannot be handed off, the node stays and says why.`,
		Example: `  p2pshare leave
  p2pshare leave --json | jq -r '.moved[] | .cid + " -> " + .to'`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			res, err := c.Leave(cmd.Context())
			if err != nil {
				return fail("", err)
			}
			out := cmd.OutOrStdout()
			if jsonFlag(cmd) {
				return printJSON(out, res)
			}
			for _, m := range res.Moved {
				name := m.CID
				if len(m.Names) > 0 {
					name = strings.Join(m.Names, ", ")
				}
				fmt.Fprintf(out, "moved %s (%d bytes) to %s (rtt %.2f ms), in custody until this node returns\n", name, m.Size, m.To, m.RTTMillis)
			}
			if len(res.Moved) == 0 {
				fmt.Fprintln(out, "nothing to hand off: every file this node holds has enough other copies")
			}
			fmt.Fprintln(out, "left the network; the daemon is stopping")
			return nil
		},
	}
	addJSONFlag(cmd)
	return cmd
}

// formatOffset renders a clock offset in milliseconds with its sign, as a
// duration rounded to the millisecond.
func formatOffset(ms float64) string {
	d := time.Duration(ms * float64(time.Millisecond)).Round(time.Millisecond)
	if d > 0 {
		return "+" + d.String()
	}
	return d.String()
}
