package main

import (
	"context"
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/p2pshare/p2pshare/node/api"
)

func newDashboardCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Print the login link of the running daemon's web dashboard",
		Long: `Print the login link of the web dashboard that the daemon serves on its
API address: members and their states, connected peers with their RTT, the
catalog with its holders, the KV store and transfers in progress, refreshed
every second, with an upload form and a download button for every name.

The link carries the API token in its fragment (#token=...), which the
browser keeps to itself: the page moves it into the tab's sessionStorage and
sends it as a bearer header with every API call. Anyone with the link can
act as this node's owner, as with the repo's api.token file: keep it to
yourself.`,
		Example: `  p2pshare dashboard
  xdg-open "$(p2pshare dashboard)"
  p2pshare --repo /tmp/a dashboard --json | jq -r .url`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Ask the daemon first, so a stale api file is an error here
			// rather than a dead link in the browser.
			d, err := quickCall(cmd, "dashboard", func(c *api.Client, ctx context.Context) (map[string]string, error) {
				info, err := c.ID(ctx)
				link := c.Base() + api.DashboardPath + "#token=" + url.QueryEscape(c.Token())
				return map[string]string{"url": link, "id": info.ID}, err
			})
			if err != nil {
				return err
			}
			if jsonFlag(cmd) {
				return printJSON(cmd.OutOrStdout(), d)
			}
			fmt.Fprintln(cmd.OutOrStdout(), d["url"])
			return nil
		},
	}
	addJSONFlag(cmd)
	return cmd
}
