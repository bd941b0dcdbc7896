package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/spf13/cobra"
)

func newKeygenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "keygen",
		Short: "Print a new swarm key (IPFS private-network format)",
		Long: `keygen prints a new random 256-bit pre-shared key in the file format of IPFS
private networks. Daemons started with --swarm-key FILE (or with a swarm.key
file in their repo) talk only to daemons that have the same key.`,
		Example: `  p2pshare keygen > swarm.key
  p2pshare daemon --swarm-key swarm.key`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			k := make([]byte, 32)
			if _, err := rand.Read(k); err != nil {
				return fail("keygen", err)
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "/key/swarm/psk/1.0.0/\n/base16/\n%s\n", hex.EncodeToString(k))
			return err
		},
	}
}
