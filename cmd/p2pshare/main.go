// Command p2pshare is the command line of p2pshare: `p2pshare daemon` runs a
// node (package node); the other commands are thin clients of the running
// daemon's local HTTP API (package node/api, found through the repo's api
// and api.token files), except keygen, config, ca init, ca admit,
// id --offline and version, which work on files alone (ca with package
// node/admit).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/p2pshare/p2pshare/node"
	"github.com/p2pshare/p2pshare/node/api"
)

// Option names shared by several commands.
const (
	optRepo = "repo"
	optJSON = "json"
	envRepo = "P2PSHARE_REPO"
)

// exitError carries an error of a command that ran (exit 1), as opposed to
// a usage error found by the flag and argument parser (exit 2).
type exitError struct{ err error }

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// fail wraps err as a runtime failure: "WHAT: WHY".
func fail(what string, err error) error {
	if what == "" {
		return exitError{err}
	}
	return exitError{fmt.Errorf("%s: %w", what, err)}
}

// usageError is a usage error raised by a command itself.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit code: 0 ok, 1 failure,
// 2 usage error. Every error is one line on stderr: "p2pshare: WHAT: WHY".
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	root.InitDefaultCompletionCmd()
	addCompletionExamples(root)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	var ee exitError
	if errors.As(err, &ee) {
		fmt.Fprintf(stderr, "p2pshare: %s\n", msg)
		return 1
	}
	fmt.Fprintf(stderr, "p2pshare: usage: %s (see 'p2pshare --help')\n", msg)
	return 2
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "p2pshare",
		Short: "Share text files between trusting machines, peer to peer",
		Long: `p2pshare shares files across a group of machines without a central server.

Start a daemon on each machine (any daemon can be the bootstrap of the
others), then share a file on one and get it by name on any other: the bytes
come straight from a peer that holds them, verified against their CID, and
the answer says which peer served them.

The repo (--repo, $P2PSHARE_REPO, default ~/.p2pshare) holds the node's
identity, its content store and the running daemon's API address; the
other commands talk to the daemon of the repo, except keygen, config,
ca init, ca admit, id --offline and version, which work on files alone.`,
		Example: `  p2pshare daemon --repo /tmp/a &
  p2pshare --repo /tmp/a share notes.txt
  p2pshare --repo /tmp/b get notes.txt -o /tmp/notes.txt`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	bi := readBuildInfo()
	node.Version = bi.Version
	// --version is this command's own flag, not cobra's Version: cobra
	// prints a custom version line through a text/template, and a
	// reachable template makes the linker keep every exported method of
	// every type in the binary (reflect's MethodByName could call any of
	// them): the binary grows by 6.5 MB, and each daemon maps more of
	// it. TestLinkerDropsUnusedMethods keeps this and every dependency's
	// reflection in check.
	root.Flags().BoolP("version", "v", false, "print the version line, as 'p2pshare version' does")
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if v, _ := cmd.Flags().GetBool("version"); v {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), bi)
			return err
		}
		return groupRunE(cmd, args)
	}
	root.PersistentFlags().String(optRepo, "", "the node's repo directory (env "+envRepo+", default ~/.p2pshare)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err.Error()} })
	root.AddCommand(
		newDaemonCmd(),
		newIDCmd(),
		newShareCmd(),
		newGetCmd(),
		newPeersCmd(),
		newMembersCmd(),
		newLeaveCmd(),
		newKeygenCmd(),
		newKVCmd(),
		newCACmd(),
		newConfigCmd(),
		newLsCmd(),
		newSearchCmd(),
		newDashboardCmd(),
		newVersionCmd(),
	)
	return root
}

// repoDir returns the repo directory from --repo, $P2PSHARE_REPO or the default.
func repoDir(cmd *cobra.Command) (string, error) {
	dir, _ := cmd.Flags().GetString(optRepo)
	if dir == "" {
		dir = os.Getenv(envRepo)
	}
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fail("repo", fmt.Errorf("no --repo given and no home directory: %w", err))
		}
		dir = filepath.Join(home, ".p2pshare")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fail("repo", err)
	}
	return abs, nil
}

// client connects to the daemon of the command's repo.
func client(cmd *cobra.Command) (*api.Client, error) {
	dir, err := repoDir(cmd)
	if err != nil {
		return nil, err
	}
	c, err := api.Dial(dir)
	if err != nil {
		return nil, fail("", err)
	}
	return c, nil
}

// quickTimeout bounds commands that only ask the daemon for its state, so
// a wedged daemon cannot hang a script.
const quickTimeout = 30 * time.Second

// quickCtx is the command's context with quickTimeout.
func quickCtx(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), quickTimeout)
}

// quickCall dials the daemon of the command's repo and makes one call
// bounded by quickTimeout. A failed call is "WHAT: WHY", or "WHY" alone
// when what is "" (the daemon's message already names the thing).
func quickCall[T any](cmd *cobra.Command, what string, call func(*api.Client, context.Context) (T, error)) (T, error) {
	var zero T
	c, err := client(cmd)
	if err != nil {
		return zero, err
	}
	ctx, cancel := quickCtx(cmd)
	defer cancel()
	v, err := call(c, ctx)
	if err != nil {
		return zero, fail(what, err)
	}
	return v, nil
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// groupRunE runs a command that only groups subcommands (kv, ca): alone it
// prints its help; with an argument that names no subcommand it is a usage
// error (without it, cobra prints the help and exits 0, so a mistyped
// 'kv gte KEY' in a script would look like a success).
func groupRunE(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())}
	}
	return cmd.Help()
}

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Sprintf("%s takes %s, got %d arguments", cmd.Name(), what, len(args))}
		}
		return nil
	}
}

func addJSONFlag(cmd *cobra.Command) {
	cmd.Flags().Bool(optJSON, false, "print the answer as JSON")
}

func jsonFlag(cmd *cobra.Command) bool {
	v, _ := cmd.Flags().GetBool(optJSON)
	return v
}

// completionExamples are the examples of cobra's generated completion
// commands, which come without any.
var completionExamples = map[string]string{
	"completion": "  p2pshare completion bash > /etc/bash_completion.d/p2pshare\n  source <(p2pshare completion zsh)",
	"bash":       "  source <(p2pshare completion bash)\n  p2pshare completion bash > /etc/bash_completion.d/p2pshare",
	"zsh":        "  p2pshare completion zsh > \"${fpath[1]}/_p2pshare\"",
	"fish":       "  p2pshare completion fish > ~/.config/fish/completions/p2pshare.fish",
	"powershell": "  p2pshare completion powershell | Out-String | Invoke-Expression",
}

// addCompletionExamples gives cobra's completion commands examples.
func addCompletionExamples(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		c.Example = completionExamples["completion"]
		for _, sub := range c.Commands() {
			sub.Example = completionExamples[sub.Name()]
		}
	}
}
