package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/p2pshare/p2pshare/node"
)

// commit is the VCS revision of a release build, set with
// -ldflags "-X main.commit=REV"; without it the revision Go stamped into
// the binary is used.
var commit string

// buildInfo is what `p2pshare version` prints.
type buildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

// readBuildInfo returns the version of this binary: the one set with
// -ldflags "-X github.com/p2pshare/p2pshare/node.Version=V", else the
// module version (go install ...@vX.Y.Z), else the development version;
// and the commit, with "+modified" when the tree had uncommitted changes.
func readBuildInfo() buildInfo {
	b := buildInfo{Version: node.Version, Commit: commit, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if b.Version == node.DevVersion && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	if b.Commit != "" {
		return b
	}
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	} else if modified {
		b.Commit += "+modified"
	}
	return b
}

func (b buildInfo) String() string {
	return fmt.Sprintf("p2pshare %s (commit %s, %s, %s/%s)", b.Version, b.Commit, b.Go, b.OS, b.Arch)
}

func newVersionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version and commit of this binary (no daemon needed)",
		Long: `version prints the version of p2pshare, the commit it was built from
("+modified" when the tree had uncommitted changes), the Go release and the
platform. It needs no daemon; 'p2pshare --version' prints the same line.`,
		Example: `  p2pshare version
  p2pshare version --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := readBuildInfo()
			if asJSON, _ := cmd.Flags().GetBool(optJSON); asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				return enc.Encode(b)
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), b)
			return err
		},
	}
	cmd.Flags().Bool(optJSON, false, "print one JSON object: version, commit, go, os, arch")
	return cmd
}
