package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/p2pshare/p2pshare/catalog"
	"github.com/p2pshare/p2pshare/node/api"
)

// folderShare is the answer of share DIR.
type folderShare struct {
	Shared  []api.ShareResult `json:"shared"`
	Skipped []skippedFile     `json:"skipped"`
}

// skippedFile is a file under DIR that was not shared, and why.
type skippedFile struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// folderFile is a file of a folder to share: where it is and its name.
type folderFile struct {
	path, name string
}

// walkFolder lists the regular files under dir as names "BASE/rel/path"
// (BASE is dir's base name). A symlink is followed only to a regular file
// inside dir; one pointing outside dir (or to a directory, or broken) is
// skipped and reported, as are names that fail the name checks and files
// that are not regular.
func walkFolder(dir string) ([]folderFile, []skippedFile, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, nil, unwrapPath(err)
	}
	base := filepath.Base(abs)
	var files []folderFile
	var skipped []skippedFile
	err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			skipped = append(skipped, skippedFile{p, unwrapPath(err).Error()})
			if d != nil && d.IsDir() && p != abs {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(abs, p)
		name := base + "/" + filepath.ToSlash(rel)
		src := p
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := filepath.EvalSymlinks(p)
			if err != nil {
				skipped = append(skipped, skippedFile{p, "a symlink that leads nowhere: not followed"})
				return nil
			}
			if r, err := filepath.Rel(real, target); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
				skipped = append(skipped, skippedFile{p, "a symlink to " + target + ", outside " + dir + ": not followed"})
				return nil
			}
			fi, err := os.Stat(target)
			if err != nil || !fi.Mode().IsRegular() {
				skipped = append(skipped, skippedFile{p, "a symlink to something other than a file: not followed"})
				return nil
			}
			src = target
		case !d.Type().IsRegular():
			skipped = append(skipped, skippedFile{p, "not a regular file"})
			return nil
		}
		if err := catalog.ValidateName(name); err != nil {
			skipped = append(skipped, skippedFile{p, err.Error()})
			return nil
		}
		files = append(files, folderFile{src, name})
		return nil
	})
	return files, skipped, err
}

// shareFolder shares every file under dir (see walkFolder), several at
// once; a file that fails is reported and the others go on.
func shareFolder(cmd *cobra.Command, dir string) error {
	files, skipped, err := walkFolder(dir)
	if err != nil {
		return fail("share "+dir, err)
	}
	c, err := client(cmd)
	if err != nil {
		return err
	}
	res := folderShare{Shared: []api.ShareResult{}, Skipped: skipped}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallelGets)
	for _, f := range files {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := c.Share(cmd.Context(), api.ShareRequest{Name: f.name, Path: f.path})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Skipped = append(res.Skipped, skippedFile{f.path, err.Error()})
				return
			}
			res.Shared = append(res.Shared, r)
		})
	}
	wg.Wait()
	if res.Skipped == nil {
		res.Skipped = []skippedFile{}
	}
	if jsonFlag(cmd) {
		if err := printJSON(cmd.OutOrStdout(), res); err != nil {
			return err
		}
	} else {
		w := cmd.OutOrStdout()
		for _, r := range res.Shared {
			fmt.Fprintf(w, "shared %s  %s  %d bytes\n", r.Name, r.CID, r.Size)
		}
		for _, s := range res.Skipped {
			fmt.Fprintf(cmd.ErrOrStderr(), "skipped %s: %s\n", s.Path, s.Error)
		}
		fmt.Fprintf(w, "%d shared, %d skipped under %s/\n", len(res.Shared), len(res.Skipped), filepath.Base(filepath.Clean(dir)))
	}
	if len(res.Skipped) > 0 {
		return fail("share "+dir, fmt.Errorf("%d of %d files skipped (listed above); the others are shared", len(res.Skipped), len(res.Skipped)+len(res.Shared)))
	}
	return nil
}

// folderNames lists the catalog's names under prefix (which ends in '/').
func folderNames(ctx context.Context, c *api.Client, prefix string) ([]api.CatalogEntry, error) {
	es, err := c.Catalog(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []api.CatalogEntry
	for _, e := range es {
		if strings.HasPrefix(e.Name, prefix) {
			out = append(out, e)
		}
	}
	return out, nil
}

// folderRequests turns a get of prefix ("DIR/") into one request per
// name under it, each into its path under out (the current directory
// when empty). Every output path is checked first: an existing file
// (without force), a directory where a file must go, or a file where a
// directory must be stops the get before anything is fetched.
func folderRequests(ctx context.Context, c *api.Client, prefix, out string, force bool) ([]api.GetRequest, error) {
	if err := catalog.ValidateName(strings.TrimSuffix(prefix, "/")); err != nil {
		return nil, err
	}
	es, err := folderNames(ctx, c, prefix)
	if err != nil {
		return nil, err
	}
	if len(es) == 0 {
		return nil, fmt.Errorf("no shared name under %s (see 'p2pshare ls %s')", prefix, prefix)
	}
	if out == "" {
		out = "."
	}
	root, err := filepath.Abs(out)
	if err != nil {
		return nil, err
	}
	reqs := make([]api.GetRequest, 0, len(es))
	for _, e := range es {
		p := filepath.Join(root, filepath.FromSlash(e.Name))
		if err := checkTreePath(root, p, force); err != nil {
			return nil, err
		}
		reqs = append(reqs, api.GetRequest{Ref: e.Name, Path: p, Force: force})
	}
	for _, r := range reqs {
		if err := os.MkdirAll(filepath.Dir(r.Path), 0o777); err != nil {
			return nil, fmt.Errorf("create %s: %w", filepath.Dir(r.Path), unwrapPath(err))
		}
	}
	return reqs, nil
}

// checkTreePath checks that p (under root) can be written: every
// directory on the way is a directory or absent, and p is absent (or a
// file, with force).
func checkTreePath(root, p string, force bool) error {
	rel, _ := filepath.Rel(root, p)
	cur := root
	parts := strings.Split(rel, string(filepath.Separator))
	for _, part := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", cur, unwrapPath(err))
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s exists as a file where a directory must be: move it away or choose another -o", cur)
		}
	}
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", p, unwrapPath(err))
	case fi.IsDir():
		return fmt.Errorf("%s is a directory where a file must go: move it away or choose another -o", p)
	case !force:
		return errExists{p}
	}
	return nil
}

// isFolderRef reports whether ref names a folder: "DIR/".
func isFolderRef(ref string) bool { return strings.HasSuffix(ref, "/") && path.Clean(ref) != "/" }
