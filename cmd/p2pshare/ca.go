package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/p2pshare/p2pshare/node/admit"
	"github.com/p2pshare/p2pshare/node/api"
)

const (
	optCA      = "ca"
	envCA      = "P2PSHARE_CA"
	optExpires = "expires"
)

func newCACmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Run the network authority: admission tickets and revocations",
		Long: `ca manages a network authority: a key that signs admission tickets for
peer IDs. A daemon started with the authority's public key (--authority)
and its own ticket (--ticket) talks only to peers that present a valid,
unexpired, unrevoked ticket right after connecting; every other peer is
disconnected before it reaches the DHT, GossipSub or the transfers. This
works over TCP and QUIC alike, unlike a swarm key.

The authority lives in a directory (--ca, $P2PSHARE_CA, default
~/.p2pshare-ca): authority.key (secret, 0600) and authority.pub (give it
to every node). Keep authority.key off the nodes.`,
		Example: `  p2pshare ca init
  p2pshare --repo /tmp/n1 id --offline           # the new node's peer ID
  p2pshare ca admit 12D3KooW... --expires 720h > /tmp/n1/ticket.json
  cp ~/.p2pshare-ca/authority.pub /tmp/n1/         # the daemon finds both in its repo
  p2pshare --repo /tmp/n1 daemon &
  p2pshare ca revoke 12D3KooW... --repo /tmp/n1    # spread by the running node`,
		RunE: groupRunE,
	}
	cmd.PersistentFlags().String(optCA, "", "authority directory (env "+envCA+", default ~/.p2pshare-ca)")
	cmd.AddCommand(newCAInitCmd(), newCAAdmitCmd(), newCARevokeCmd())
	return cmd
}

func caDir(cmd *cobra.Command) (string, error) {
	dir, _ := cmd.Flags().GetString(optCA)
	if dir == "" {
		dir = os.Getenv(envCA)
	}
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fail("ca", fmt.Errorf("no --ca given and no home directory: %w", err))
		}
		dir = filepath.Join(home, ".p2pshare-ca")
	}
	return filepath.Abs(dir)
}

func newCAInitCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "init",
		Short:   "Create a new network authority",
		Example: "  p2pshare ca init --ca ./lab-ca",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := caDir(cmd)
			if err != nil {
				return err
			}
			a, err := admit.NewAuthority()
			if err != nil {
				return fail("ca init", err)
			}
			if err := admit.SaveAuthority(dir, a); err != nil {
				return fail("ca init", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created a network authority in %s\n  secret key  %s (keep it off the nodes)\n  public key  %s (copy it into every node's repo, or pass --authority)\n",
				dir, filepath.Join(dir, admit.AuthorityKeyFile), filepath.Join(dir, admit.AuthorityPubFile))
			return nil
		},
	}
}

func newCAAdmitCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admit PEER_ID",
		Short: "Print an admission ticket for a peer ID",
		Long: `admit signs a ticket that admits PEER_ID to the network until it expires,
and prints it (one line of JSON) on stdout: save it as the node's
REPO/ticket.json or pass it with --ticket.`,
		Example: `  p2pshare ca admit 12D3KooW... --expires 720h > ticket.json`,
		Args:    exactArgs(1, "one PEER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := peer.Decode(args[0])
			if err != nil {
				return fail("ca admit", fmt.Errorf("%q is not a peer ID: %v", args[0], err))
			}
			d, _ := cmd.Flags().GetDuration(optExpires)
			if d <= 0 {
				return usageError{fmt.Sprintf("--%s %s: must be positive", optExpires, d)}
			}
			dir, err := caDir(cmd)
			if err != nil {
				return err
			}
			a, err := admit.LoadAuthority(dir)
			if err != nil {
				return fail("ca admit", err)
			}
			t, err := a.Admit(p, d, time.Now())
			if err != nil {
				return fail("ca admit", err)
			}
			_, err = cmd.OutOrStdout().Write(admit.Encode(t))
			return err
		},
	}
	cmd.Flags().Duration(optExpires, 365*24*time.Hour, "how long the ticket is valid (e.g. 720h)")
	return cmd
}

func newCARevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke PEER_ID",
		Short: "Revoke a peer's admission, network-wide and for good",
		Long: `revoke signs a revocation of PEER_ID and hands it to the daemon of --repo,
which applies it and spreads it to every node (they keep it, and nodes that
join later learn it); every node then disconnects the peer and refuses it.`,
		Example: `  p2pshare ca revoke 12D3KooW... --repo /tmp/n1`,
		Args:    exactArgs(1, "one PEER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := peer.Decode(args[0])
			if err != nil {
				return fail("ca revoke", fmt.Errorf("%q is not a peer ID: %v", args[0], err))
			}
			dir, err := caDir(cmd)
			if err != nil {
				return err
			}
			a, err := admit.LoadAuthority(dir)
			if err != nil {
				return fail("ca revoke", err)
			}
			r, err := a.Revoke(p, time.Now())
			if err != nil {
				return fail("ca revoke", err)
			}
			res, err := quickCall(cmd, "", func(c *api.Client, ctx context.Context) (api.RevokeResult, error) {
				return c.Revoke(ctx, admit.Encode(r))
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s; the network is being told\n", res.Peer)
			return nil
		},
	}
}

// loadAdmission reads the daemon's admission settings: flags first, then
// the repo's authority.pub, ticket.json and allowlist files.
func loadAdmission(cmd *cobra.Command, repo string) (admit.Config, error) {
	var cfg admit.Config
	f := cmd.Flags()
	authPath, _ := f.GetString(optAuthority)
	ticketPath, _ := f.GetString(optTicket)
	inRepo := func(flag, name string) string {
		if flag != "" {
			return flag
		}
		p := filepath.Join(repo, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		return ""
	}
	authPath = inRepo(authPath, admit.AuthorityPubFile)
	ticketPath = inRepo(ticketPath, admit.TicketFile)
	if authPath != "" {
		pub, err := admit.LoadPublic(authPath)
		if err != nil {
			return cfg, err
		}
		cfg.Authority = pub
		if ticketPath == "" {
			return cfg, errors.New("an authority is set but this node has no ticket (get one with 'p2pshare ca admit PEER_ID' into REPO/ticket.json, or pass --ticket)")
		}
		t, err := admit.LoadTicket(ticketPath)
		if err != nil {
			return cfg, err
		}
		cfg.Ticket = t
	} else if ticketPath != "" && f.Changed(optTicket) {
		return cfg, errors.New("--ticket needs --authority (the public key that signed it)")
	}
	allows, _ := f.GetStringArray(optAllow)
	for _, s := range allows {
		p, err := peer.Decode(s)
		if err != nil {
			return cfg, fmt.Errorf("--allow %q: not a peer ID: %v", s, err)
		}
		cfg.Allow = append(cfg.Allow, p)
	}
	if p := filepath.Join(repo, admit.AllowlistFile); fileExists(p) {
		more, err := admit.LoadAllowlist(p)
		if err != nil {
			return cfg, err
		}
		cfg.Allow = append(cfg.Allow, more...)
	}
	return cfg, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
