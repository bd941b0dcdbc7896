package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/p2pshare/p2pshare/node/api"
)

const (
	optOutput = "output"
	optForce  = "force"
	// optStream and optViaDaemon force how get writes its output (for
	// tests and benchmarks): streamed through the command, or written by
	// the daemon.
	optStream    = "stream"
	optViaDaemon = "via-daemon"
	// maxParallelGets bounds the gets one command runs at once.
	maxParallelGets = 8
)

func newGetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get NAME|CID...|DIR/",
		Short: "Fetch files by name or CID from the peers that hold them",
		Long: `get resolves each NAME (in the catalog, else in its record's copy in the
DHT) or takes each CID, finds the peers that hold it (the live holders in
the catalog; the DHT's providers only if none of them can serve it), orders
them by measured round-trip time and streams the file one-to-one from the
closest. The bytes are hashed as they are written and checked against the
CID before the file is moved into place; a provider that fails, stalls or
sends corrupt bytes is left for the next. The answer names the peer that
served the file.

With one NAME, -o is the output file (or an existing directory to put it
in); the default is NAME in the current directory. With several, they are
fetched in parallel, each from its own provider, into the directory -o
(default the current directory), and --json prints a list.

DIR/ (a name ending in '/') gets every name shared under that folder (see
'share DIR'), in parallel, into the same tree under -o (default the
current directory): photos/ gets photos/a.jpg as ./photos/a.jpg.

An existing file is never overwritten unless --force is given; then it is
replaced in one step (readers see the old file or the new one, never a
mix). A transfer in progress is kept in the daemon's repo, not in the
output directory, so an interrupted get leaves nothing there.`,
		Example: `  p2pshare get notes.txt
  p2pshare get notes.txt -o /tmp/copy.txt --json
  p2pshare get bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku
  p2pshare get a.txt b.txt c.txt -o downloads/
  p2pshare get notes.txt -o notes.txt --force
  p2pshare get photos/ -o ~/Pictures`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{"get takes one or more NAME or CID arguments"}
			}
			return nil
		},
		RunE: runGet,
	}
	cmd.Flags().StringP(optOutput, "o", "", "output file (one NAME) or directory (several)")
	cmd.Flags().Bool(optForce, false, "replace an existing output file")
	cmd.Flags().Bool(optStream, false, "always stream the bytes through the command")
	cmd.Flags().Bool(optViaDaemon, false, "always let the daemon write the output file")
	_ = cmd.Flags().MarkHidden(optStream)
	_ = cmd.Flags().MarkHidden(optViaDaemon)
	cmd.MarkFlagsMutuallyExclusive(optStream, optViaDaemon)
	addJSONFlag(cmd)
	return cmd
}

// getOutcome is one line of a multi-get answer.
type getOutcome struct {
	Ref string `json:"ref"`
	*api.GetResult
	Error string `json:"error,omitempty"`
}

func runGet(cmd *cobra.Command, refs []string) error {
	out, _ := cmd.Flags().GetString(optOutput)
	force, _ := cmd.Flags().GetBool(optForce)
	folder := len(refs) == 1 && isFolderRef(refs[0])
	var reqs []api.GetRequest
	var c *api.Client
	var err error
	if folder {
		if c, err = client(cmd); err != nil {
			return err
		}
		ctx, cancel := quickCtx(cmd)
		reqs, err = folderRequests(ctx, c, refs[0], out, force)
		cancel()
		if err != nil {
			return fail("get "+refs[0], err)
		}
	} else if reqs, err = getRequests(refs, out); err != nil {
		return err
	}
	for i := range reqs {
		reqs[i].Force = force
		if p := outputPath(reqs[i]); !force && p != "" {
			if _, err := os.Lstat(p); err == nil {
				return fail("get", fmt.Errorf("%s exists: use --force to replace it", p))
			}
		}
	}
	if c == nil {
		if c, err = client(cmd); err != nil {
			return err
		}
	}
	how := pickGetPath(cmd, c, reqs)
	results := make([]getOutcome, len(reqs))
	conflict := make([]bool, len(reqs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallelGets)
	for i, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			var progress io.Writer
			if len(reqs) == 1 && showProgress(cmd) {
				progress = cmd.ErrOrStderr()
			}
			var res api.GetResult
			var err error
			if how == pathDaemon {
				if progress != nil {
					req.ID = transferID()
					stop := watchTransfer(cmd.Context(), c, req.ID, req.Ref, progress)
					defer stop()
				}
				res, err = c.Get(cmd.Context(), req)
			} else {
				res, err = streamGet(cmd.Context(), c, req, progress)
			}
			results[i].Ref = req.Ref
			if err != nil {
				var ee errExists
				conflict[i] = errors.Is(err, api.ErrExists) || errors.As(err, &ee)
				results[i].Error = err.Error()
				return
			}
			results[i].GetResult = &res
		}()
	}
	wg.Wait()

	w := cmd.OutOrStdout()
	var errs []error
	for i, r := range results {
		switch {
		case r.Error == "":
		case conflict[i]: // the daemon's answer names the path
			errs = append(errs, fmt.Errorf("get: %s", r.Error))
		default:
			errs = append(errs, fmt.Errorf("get %s: %s", r.Ref, r.Error))
		}
	}
	if jsonFlag(cmd) {
		if len(refs) == 1 && !folder {
			if len(errs) == 0 {
				if err := printJSON(w, results[0].GetResult); err != nil {
					return err
				}
			}
		} else if err := printJSON(w, results); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			if r.GetResult != nil {
				printGot(w, r.GetResult)
			}
		}
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return fail("", errs[0])
	}
	for _, e := range errs[:len(errs)-1] {
		fmt.Fprintf(cmd.ErrOrStderr(), "p2pshare: %v\n", e)
	}
	return fail("", fmt.Errorf("%w (and %d more failed)", errs[len(errs)-1], len(errs)-1))
}

// pickGetPath applies --stream, --via-daemon or chooseGetPath to the
// output directory of reqs.
func pickGetPath(cmd *cobra.Command, c *api.Client, reqs []api.GetRequest) getPath {
	if f, _ := cmd.Flags().GetBool(optStream); f {
		return pathStream
	}
	if f, _ := cmd.Flags().GetBool(optViaDaemon); f {
		return pathDaemon
	}
	dir := reqs[0].Path
	if !reqs[0].Dir {
		dir = filepath.Dir(dir)
	}
	repo, err := repoDir(cmd)
	if err != nil {
		return pathStream
	}
	ctx, cancel := quickCtx(cmd)
	defer cancel()
	how, why := chooseGetPath(ctx, c, repo, dir)
	slog.Debug("get: output path chosen", "daemon_writes", how == pathDaemon, "why", why)
	return how
}

// getRequests turns the refs and -o into API requests with absolute paths.
func getRequests(refs []string, out string) ([]api.GetRequest, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return nil, fail("get", err)
	}
	if len(refs) > 1 {
		dir := cwd
		if out != "" {
			if dir, err = filepath.Abs(out); err != nil {
				return nil, fail("get", err)
			}
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				return nil, fail("get", fmt.Errorf("-o %s: with several names -o must be an existing directory", out))
			}
		}
		reqs := make([]api.GetRequest, len(refs))
		for i, r := range refs {
			reqs[i] = api.GetRequest{Ref: r, Path: dir, Dir: true}
		}
		return reqs, nil
	}
	req := api.GetRequest{Ref: refs[0], Path: cwd, Dir: true}
	if out != "" {
		abs, err := filepath.Abs(out)
		if err != nil {
			return nil, fail("get", err)
		}
		if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
			req.Path = abs
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fail("get", fmt.Errorf("-o %s: %w", out, err))
		} else {
			req.Path, req.Dir = abs, false
		}
	}
	return []api.GetRequest{req}, nil
}

// outputPath is where req puts its file, when the CLI can tell before the
// daemon resolves the ref: a ref that is a name (or a CID) is saved under
// that name. "" when it cannot tell; the daemon checks again anyway.
func outputPath(req api.GetRequest) string {
	if !req.Dir {
		return req.Path
	}
	if req.Ref == "" || req.Ref == "." || req.Ref == ".." || strings.ContainsAny(req.Ref, "/\\") {
		return ""
	}
	return filepath.Join(req.Path, req.Ref)
}

func printGot(w io.Writer, r *api.GetResult) {
	label := r.Name
	if label == "" {
		label = r.CID
	}
	fmt.Fprintf(w, "got %s (%d bytes)\n  cid      %s\n  from     %s (rtt %.2f ms)\n  saved to %s\n", label, r.Size, r.CID, r.Provider, r.RTTMillis, r.Path)
	if len(r.Attempts) > 1 {
		fmt.Fprintf(w, "  tried    %d providers:\n", len(r.Attempts))
		for _, a := range r.Attempts {
			status := "served"
			if a.Error != "" {
				status = a.Error
			}
			fmt.Fprintf(w, "    %s at offset %d, %d bytes: %s\n", a.Peer, a.Offset, a.Bytes, status)
		}
	}
}
