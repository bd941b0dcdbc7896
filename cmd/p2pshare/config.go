package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// configFile is the daemon's config file in its repo: a JSON object whose
// keys are daemon flag names; a flag given on the command line wins.
const configFile = "config.json"

// maxConfigSize caps the config file.
const maxConfigSize = 64 << 10

// loadConfigFile reads REPO/config.json (if any) and sets every daemon
// flag it names that the command line did not set. It returns which flags
// it set.
func loadConfigFile(fs *pflag.FlagSet, repo string) (map[string]bool, error) {
	path := filepath.Join(repo, configFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	if len(b) > maxConfigSize {
		return nil, fmt.Errorf("config file %s: %d bytes, the limit is %d", path, len(b), maxConfigSize)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("config file %s: not a JSON object of flag names: %v", path, err)
	}
	set := map[string]bool{}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fl := fs.Lookup(k)
		if fl == nil || k == "help" {
			return nil, fmt.Errorf("config file %s: unknown setting %q (settings are the daemon's flag names; see 'p2pshare config show')", path, k)
		}
		if fl.Changed {
			continue // the command line wins
		}
		var vals []string
		var one any
		if err := json.Unmarshal(raw[k], &one); err != nil {
			return nil, fmt.Errorf("config file %s: %q: %v", path, k, err)
		}
		switch v := one.(type) {
		case []any:
			for _, e := range v {
				vals = append(vals, fmt.Sprint(e))
			}
		case nil:
			continue
		case float64:
			vals = []string{strings.TrimSuffix(fmt.Sprintf("%f", v), ".000000")}
		default:
			vals = []string{fmt.Sprint(v)}
		}
		for _, v := range vals {
			if err := fs.Set(k, v); err != nil {
				return nil, fmt.Errorf("config file %s: %q = %s: %v", path, k, v, err)
			}
		}
		set[k] = true
	}
	return set, nil
}

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the daemon's effective configuration",
		Long: `config works with the daemon's settings: the flags of 'p2pshare daemon',
which the repo's config file (REPO/config.json) can set and the command
line overrides.`,
		Example: `  p2pshare config show
  echo '{"replicas": 3, "no-mdns": true}' > ~/.p2pshare/config.json`,
		RunE: groupRunE,
	}
	show := &cobra.Command{
		Use:   "show",
		Short: "Print every daemon setting: its value, where it comes from and what it means",
		Long: `show prints every setting of 'p2pshare daemon' for the repo: its effective
value, whether it comes from the default or from the repo's config file
(REPO/config.json, a JSON object of flag names, e.g.
{"replicas": 3, "listen": ["/ip4/0.0.0.0/tcp/4040"], "no-mdns": true}),
and what it means. Flags given to 'daemon' on its command line override the
file.`,
		Example: `  p2pshare config show
  p2pshare config show --json | jq '.[] | select(.source=="config file")'`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := repoDir(cmd)
			if err != nil {
				return err
			}
			d := newDaemonCmd()
			fs := d.Flags()
			fromFile, err := loadConfigFile(fs, dir)
			if err != nil {
				return fail("config show", err)
			}
			type setting struct {
				Name    string `json:"name"`
				Value   string `json:"value"`
				Default string `json:"default"`
				Source  string `json:"source"`
				Meaning string `json:"meaning"`
			}
			var out []setting
			fs.VisitAll(func(fl *pflag.Flag) {
				if fl.Name == "help" {
					return
				}
				src := "default"
				if fromFile[fl.Name] {
					src = "config file"
				}
				out = append(out, setting{Name: fl.Name, Value: fl.Value.String(), Default: fl.DefValue, Source: src, Meaning: fl.Usage})
			})
			w := cmd.OutOrStdout()
			if jsonFlag(cmd) {
				return printJSON(w, out)
			}
			fmt.Fprintf(w, "repo %s (config file: %s)\n", dir, filepath.Join(dir, configFile))
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SETTING\tVALUE\tSOURCE\tMEANING")
			for _, s := range out {
				fmt.Fprintf(tw, "--%s\t%s\t%s\t%s\n", s.Name, s.Value, s.Source, s.Meaning)
			}
			return tw.Flush()
		},
	}
	addJSONFlag(show)
	cmd.AddCommand(show)
	return cmd
}
