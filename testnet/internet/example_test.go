package internet_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/p2pshare/p2pshare/testnet"
	"github.com/p2pshare/p2pshare/testnet/internet"
)

// Daemons of a testnet.Network in an internet: node 1 on the public host,
// nodes 2 and 3 behind a home NAT and a symmetric NAT, 15 ms and 1 % loss
// on every link; then nat1's uplink is cut and restored.
func Example() {
	ctx := context.Background()
	topo := internet.TwoNATs(internet.KindMasquerade, internet.KindHard,
		internet.Link{Delay: 15 * time.Millisecond, Loss: 0.01})
	in, err := internet.Build(ctx, topo)
	if err != nil {
		log.Fatal(err) // a test skips on errors.Is(err, internet.ErrUnsupported)
	}
	defer in.Close()

	hosts := []string{"pub", "nat1-a", "nat2-a"}
	nw := testnet.New("/path/to/p2pshare", "/tmp/run")
	nw.Setup = func(d *testnet.Daemon) {
		h := in.Host(hosts[d.Index-1])
		d.Prefix = h.Prefix() // ip netns exec inet-TAG-HOST, for the daemon and its CLI
		d.Listen = []string{fmt.Sprintf("/ip4/%s/tcp/4040", h.IP), fmt.Sprintf("/ip4/%s/udp/4040/quic-v1", h.IP)}
	}
	if err := nw.Up(ctx, len(hosts)); err != nil { // 2 and 3 bootstrap to 1
		log.Fatal(err)
	}
	defer nw.Down()

	in.Cut("nat1") // nat1-a loses the internet; nobody is told
	in.Restore("nat1")
}
