package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, configFile), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestConfigFileSetsUnsetFlagsAndCommandLineWins(t *testing.T) {
	dir := writeConfig(t, `{"replicas": 3, "no-mdns": true, "listen": ["/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1/udp/1/quic-v1"], "max-peers": 50}`)
	d := newDaemonCmd()
	if err := d.ParseFlags([]string{"--max-peers", "7"}); err != nil {
		t.Fatal(err)
	}
	set, err := loadConfigFile(d.Flags(), dir)
	if err != nil {
		t.Fatal(err)
	}
	f := d.Flags()
	if r, _ := f.GetInt(optReplicas); r != 3 || !set[optReplicas] {
		t.Fatalf("replicas = %d (set %v), want 3 from the file", r, set[optReplicas])
	}
	if m, _ := f.GetBool(optNoMDNS); !m {
		t.Fatal("no-mdns not taken from the file")
	}
	if l, _ := f.GetStringArray(optListen); len(l) != 2 {
		t.Fatalf("listen = %v, want the file's two addresses", l)
	}
	if p, _ := f.GetInt(optMaxPeers); p != 7 || set[optMaxPeers] {
		t.Fatalf("max-peers = %d, want 7 from the command line", p)
	}
}

func TestConfigFileErrorsSayWhatIsWrong(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`{"replica": 3}`, `unknown setting "replica"`},
		{`[1,2]`, "not a JSON object"},
		{`{"replicas": "many"}`, `"replicas" = many`},
		{`{"help": true}`, `unknown setting "help"`},
		{`{`, "not a JSON object"},
	} {
		_, err := loadConfigFile(newDaemonCmd().Flags(), writeConfig(t, c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %s: error %v, want it to say %q", c.body, err, c.want)
		}
	}
	if set, err := loadConfigFile(newDaemonCmd().Flags(), t.TempDir()); err != nil || len(set) != 0 {
		t.Fatalf("no config file: %v %v", set, err)
	}
}
