package testnet

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDockerCompose builds the FROM-scratch image from a static binary,
// brings up testnet/docker-compose.yml (4 nodes, private network), shares on
// one container and gets on another, then cuts node3 off its Docker network
// and checks that the others see it dead and still serve its file from the
// replica. It needs a Docker engine and docker-compose; it skips without.
func TestDockerCompose(t *testing.T) {
	if testing.Short() {
		t.Skip("docker compose test: skipped in -short mode")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker compose test: no docker command on PATH")
	}
	if out, err := exec.Command("docker", "info").CombinedOutput(); err != nil {
		t.Skipf("docker compose test: no Docker engine answers ('docker info': %v: %s)", err, lastLine(out))
	}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("docker compose test: no docker-compose command on PATH")
	}
	start := time.Now()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	dir := t.TempDir()
	uniq := fmt.Sprintf("%d%d", os.Getpid(), time.Now().UnixNano()%1e9)

	// The build context: the static binary and the Dockerfile, nothing else.
	bctx := filepath.Join(dir, "context")
	if err := os.Mkdir(bctx, 0o755); err != nil {
		t.Fatal(err)
	}
	hostBin := filepath.Join(bctx, "p2pshare")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", hostBin, "./cmd/p2pshare")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build static binary: %v\n%s", err, out)
	}
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bctx, "Dockerfile"), df, 0o644); err != nil {
		t.Fatal(err)
	}
	image := "p2pshare-test:" + uniq
	t.Cleanup(func() { _, _ = dockerCmd(context.Background(), nil, nil, "docker", "rmi", "-f", image) })
	if _, err := dockerCmd(context.Background(), nil, nil, "docker", "build", "-q", "-t", image, bctx); err != nil {
		t.Fatalf("docker build: %v", err)
	}
	t.Logf("static binary and image %s built in %s", image, time.Since(start).Round(time.Millisecond))

	// node1's fixed identity and the network's swarm key.
	key, err := exec.Command(hostBin, "keygen").Output()
	if err != nil {
		t.Fatalf("keygen: %v", err)
	}
	swarmKey := filepath.Join(dir, "swarm.key")
	if err := os.WriteFile(swarmKey, key, 0o644); err != nil {
		t.Fatal(err)
	}
	node1Repo := filepath.Join(dir, "node1")
	idOut, err := exec.Command(hostBin, "--repo", node1Repo, "id", "--offline").Output()
	if err != nil {
		t.Fatalf("id --offline: %v", err)
	}
	node1ID := strings.TrimSpace(string(idOut))

	project := "p2psharetest" + uniq
	env := append(os.Environ(),
		"P2PSHARE_IMAGE="+image,
		"P2PSHARE_NODE1_ID="+node1ID,
		"P2PSHARE_NODE1_KEY="+filepath.Join(node1Repo, "identity.key"),
		"P2PSHARE_SWARM_KEY="+swarmKey,
	)
	composeFile := filepath.Join(root, "testnet", "docker-compose.yml")
	compose := func(ctx context.Context, args ...string) (string, error) {
		return dockerCmd(ctx, env, nil, "docker-compose", append([]string{"-f", composeFile, "-p", project}, args...)...)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if t.Failed() {
			logs, _ := compose(ctx, "logs", "--no-color", "--tail=25")
			t.Logf("compose logs:\n%s", logs)
		}
		if _, err := compose(ctx, "down", "-v", "--remove-orphans", "-t", "2"); err != nil {
			t.Errorf("compose down: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	upStart := time.Now()
	if _, err := compose(ctx, "up", "-d"); err != nil {
		t.Fatalf("compose up: %v", err)
	}
	nodes := map[string]*container{}
	for _, s := range []string{"node1", "node2", "node3", "node4"} {
		out, err := compose(ctx, "ps", "-q", s)
		if err != nil || strings.TrimSpace(out) == "" {
			t.Fatalf("compose ps -q %s: %q %v", s, out, err)
		}
		nodes[s] = &container{name: s, id: strings.TrimSpace(out)}
	}

	took := waitFor(t, 45*time.Second, "node1 sees 4 members alive", func() (bool, string) {
		ms, err := nodes["node1"].members(ctx)
		if err != nil {
			return false, err.Error()
		}
		alive := 0
		for _, m := range ms {
			if m.State == "alive" {
				alive++
			}
		}
		return alive == 4, fmt.Sprintf("%d alive: %+v", alive, ms)
	})
	t.Logf("compose up took %s; 4 members alive on node1 %s later", (time.Since(upStart) - took).Round(time.Millisecond), took.Round(time.Millisecond))
	for _, c := range nodes {
		var id struct{ ID string }
		if err := c.json(ctx, nil, &id, "id", "--json"); err != nil {
			t.Fatalf("%s id: %v", c.name, err)
		}
		c.peer = id.ID
	}
	if nodes["node1"].peer != node1ID {
		t.Fatalf("node1 is %s, want its fixed identity %s", nodes["node1"].peer, node1ID)
	}

	// Share on node2 (from stdin), get on a node that holds no copy: the
	// share returns once its replica is made, and a node holding one
	// serves itself.
	data := randomText(t, 64<<10)
	sh := nodes["node2"].share(t, ctx, "from-node2.txt", data)
	var getter *container
	for _, name := range []string{"node4", "node3", "node1"} {
		if !slices.Contains(sh.Replicas, nodes[name].peer) {
			getter = nodes[name]
			break
		}
	}
	got, res := getter.get(t, ctx, "from-node2.txt")
	if !bytes.Equal(got, data) {
		t.Fatalf("%s got %d bytes of from-node2.txt, not the %d shared on node2", getter.name, len(got), len(data))
	}
	if res.Provider == "" || res.Provider == getter.peer || res.CID != sh.CID {
		t.Fatalf("%s get: provider %q cid %s, want another node as provider and cid %s", getter.name, res.Provider, res.CID, sh.CID)
	}
	t.Logf("shared on node2 (replicas %v), got on %s from %s (%.2f ms)", sh.Replicas, getter.name, res.Provider, res.Millis)

	// Share on node3 with R=2, so a copy lives elsewhere, then cut node3 off.
	data3 := randomText(t, 32<<10)
	sh3 := nodes["node3"].share(t, ctx, "from-node3.txt", data3)
	if len(sh3.Replicas) == 0 {
		t.Fatalf("share on node3: no replica (%s)", sh3.ReplicaError)
	}
	network := project + "_p2pnet"
	cut := time.Now()
	if _, err := dockerCmd(ctx, nil, nil, "docker", "network", "disconnect", network, nodes["node3"].id); err != nil {
		t.Fatalf("disconnect node3: %v", err)
	}
	others := []*container{nodes["node1"], nodes["node2"], nodes["node4"]}
	waitFor(t, 30*time.Second, "node1, node2 and node4 see node3 dead", func() (bool, string) {
		var states []string
		ok := true
		for _, c := range others {
			ms, err := c.members(ctx)
			if err != nil {
				return false, err.Error()
			}
			st := "absent"
			for _, m := range ms {
				if m.ID == nodes["node3"].peer {
					st = m.State
				}
			}
			states = append(states, c.name+"="+st)
			ok = ok && st == "dead"
		}
		return ok, "node3 is " + strings.Join(states, ", ")
	})
	t.Logf("node3 disconnected: dead on node1, node2 and node4 after %s", time.Since(cut).Round(time.Millisecond))

	// Its file is still served, from the replica, on every other node.
	for _, c := range others {
		got, res := c.get(t, ctx, "from-node3.txt")
		if !bytes.Equal(got, data3) {
			t.Fatalf("%s got %d bytes of from-node3.txt after the cut, not the %d shared", c.name, len(got), len(data3))
		}
		if res.Provider == nodes["node3"].peer || res.Provider == "" {
			t.Fatalf("%s got from-node3.txt from %q after node3 was cut off", c.name, res.Provider)
		}
		if !slices.Contains(sh3.Replicas, res.Provider) && res.Provider != c.peer {
			t.Logf("%s got from-node3.txt from %s (not a replica of the share: %v; a copy made since)", c.name, res.Provider, sh3.Replicas)
		}
	}
	t.Logf("node3's file served by the others after the cut; compose part took %s", time.Since(upStart).Round(time.Millisecond))
}

// container is one compose service's container.
type container struct {
	name, id, peer string
}

type dockerMember struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

type dockerShare struct {
	CID          string   `json:"cid"`
	Replicas     []string `json:"replicas"`
	ReplicaError string   `json:"replica_error"`
}

type dockerGet struct {
	CID      string  `json:"cid"`
	Provider string  `json:"provider"`
	Path     string  `json:"path"`
	Millis   float64 `json:"elapsed_ms"`
}

// exec runs the CLI inside the container.
func (c *container) exec(ctx context.Context, stdin []byte, args ...string) (string, error) {
	dargs := []string{"exec"}
	if stdin != nil {
		dargs = append(dargs, "-i")
	}
	dargs = append(dargs, c.id, "/p2pshare", "--repo", "/data")
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return dockerCmd(ctx, nil, stdin, "docker", append(dargs, args...)...)
}

func (c *container) json(ctx context.Context, stdin []byte, v any, args ...string) error {
	out, err := c.exec(ctx, stdin, args...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("%s %s: %w: %q", c.name, strings.Join(args, " "), err, out)
	}
	return nil
}

func (c *container) members(ctx context.Context) ([]dockerMember, error) {
	var ms []dockerMember
	return ms, c.json(ctx, nil, &ms, "members", "--json")
}

func (c *container) share(t *testing.T, ctx context.Context, name string, data []byte) dockerShare {
	t.Helper()
	var res dockerShare
	if err := c.json(ctx, data, &res, "share", "-", "--name", name, "--json"); err != nil {
		t.Fatalf("share %s on %s: %v", name, c.name, err)
	}
	return res
}

// get fetches name into the container's /data/got-NAME and copies it out.
func (c *container) get(t *testing.T, ctx context.Context, name string) ([]byte, dockerGet) {
	t.Helper()
	var res dockerGet
	path := "/data/got-" + name
	if err := c.json(ctx, nil, &res, "get", name, "-o", path, "--json"); err != nil {
		t.Fatalf("get %s on %s: %v", name, c.name, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, "docker", "cp", c.id+":"+path, "-").Output()
	if err != nil {
		t.Fatalf("docker cp %s from %s: %v", path, c.name, err)
	}
	tr := tar.NewReader(bytes.NewReader(out))
	if _, err := tr.Next(); err != nil {
		t.Fatalf("docker cp %s from %s: %v", path, c.name, err)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		t.Fatalf("docker cp %s from %s: %v", path, c.name, err)
	}
	return b, res
}

// dockerCmd runs a docker or docker-compose command with stdin (if not
// nil); env nil keeps the test's environment.
func dockerCmd(ctx context.Context, env []string, stdin []byte, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w (timed out)", err)
		}
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// randomText is n/2 random bytes in hex.
func randomText(t *testing.T, n int) []byte {
	t.Helper()
	return []byte(randHex(t, n/2))
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
