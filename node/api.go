package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pshare/p2pshare/gossip"
	"github.com/p2pshare/p2pshare/gossip/kv"
	"github.com/p2pshare/p2pshare/node/api"
	"github.com/p2pshare/p2pshare/share"
)

// ID implements api.API.
func (c *CoreAPI) ID(context.Context) (api.IDInfo, error) {
	n := c.n
	info := api.IDInfo{ID: n.host.ID().String(), Addrs: n.p2pAddrs(), API: c.url, Clock: n.clockWarning(),
		Reachability: ReachabilityString(n.Reachability()), PublicAddrs: n.publicAddrs()}
	info.UID, info.Machine = os.Getuid(), api.Machine()
	if m := n.memb; m != nil {
		d, peers := m.ClockOffset()
		info.OffsetPeers = peers
		if peers > 0 {
			info.OffsetMillis = durationMillis(d)
		}
	}
	return info, nil
}

// p2pAddrs returns the host's addresses, each ending in /p2p/ID.
func (n *Node) p2pAddrs() []string {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	if err != nil {
		return nil
	}
	return FormatAddrs(addrs)
}

// Share implements api.API.
func (c *CoreAPI) Share(ctx context.Context, req api.ShareRequest) (api.ShareResult, error) {
	n := c.n
	// The network would refuse the name record of a node whose clock is
	// off: say so before storing anything.
	if err := n.clockError("share"); err != nil {
		return api.ShareResult{}, err
	}
	r := req.Body
	name := req.Name
	if r == nil {
		if !filepath.IsAbs(req.Path) {
			return api.ShareResult{}, api.Errorf(api.ErrBadInput, "share: path %q is not absolute", req.Path)
		}
		f, err := os.Open(req.Path)
		if err != nil {
			return api.ShareResult{}, api.Errorf(api.ErrBadInput, "share %s: %v", req.Path, unwrapPathErr(err))
		}
		defer f.Close()
		if err := n.refuseSecret(req.Path, f); err != nil {
			n.log.Warn("share: refused a secret file", "err", err)
			return api.ShareResult{}, err
		}
		fi, err := f.Stat()
		if err != nil {
			return api.ShareResult{}, api.Errorf(api.ErrBadInput, "share %s: %v", req.Path, err)
		}
		if !fi.Mode().IsRegular() {
			return api.ShareResult{}, api.Errorf(api.ErrBadInput, "share %s: not a regular file", req.Path)
		}
		if max := n.share.Config().MaxFileSize; fi.Size() > max {
			return api.ShareResult{}, api.Errorf(api.ErrTooLarge, "share %s: %d bytes is over the limit of %d", req.Path, fi.Size(), max)
		}
		if name == "" {
			name = filepath.Base(req.Path)
		}
		r = f
	}
	total := int64(-1)
	if f, ok := r.(*os.File); ok {
		if fi, err := f.Stat(); err == nil {
			total = fi.Size()
		}
	}
	tr, end := n.transfers.start(req.ID, "share", name, total)
	defer end()
	res, err := n.share.Share(ctx, countingReader{r: r, tr: tr}, name)
	n.countTransfer(err, res.Size)
	var ce *share.CatalogError
	if errors.As(err, &ce) {
		return api.ShareResult{}, catalogError(fmt.Sprintf("share %q: add to the catalog", ce.Name), ce.Err)
	}
	if err != nil {
		return api.ShareResult{}, apiError(err)
	}
	if err := n.kv.PublishHolding(ctx, res.CID, ""); err != nil {
		return api.ShareResult{}, catalogError(fmt.Sprintf("share %q: record holding in the catalog", res.Name), err)
	}
	n.pushCatalog(ctx)
	out := api.ShareResult{Name: res.Name, CID: res.CID.String(), Size: res.Size, Published: res.Published, Replicas: []string{}}
	reps, err := n.share.Replicate(ctx, res.CID, res.Size)
	for _, p := range reps {
		out.Replicas = append(out.Replicas, p.ID.String())
	}
	if err != nil {
		out.ReplicaError = err.Error()
		n.log.Warn("share: fewer copies than R", "name", res.Name, "err", err)
	}
	return out, nil
}

// Get implements api.API. The file is fetched into a private temp
// directory of the store and put at its path only once it is verified (see
// placeOutput); an existing file there is replaced only with req.Force.
func (c *CoreAPI) Get(ctx context.Context, req api.GetRequest) (api.GetResult, error) {
	n := c.n
	if req.Ref == "" {
		return api.GetResult{}, api.Errorf(api.ErrBadInput, "get: no name or CID given")
	}
	if !filepath.IsAbs(req.Path) {
		return api.GetResult{}, api.Errorf(api.ErrBadInput, "get: output path %q is not absolute", req.Path)
	}
	dir, file := req.Path, ""
	if !req.Dir {
		dir, file = filepath.Dir(req.Path), filepath.Base(req.Path)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return api.GetResult{}, api.Errorf(api.ErrBadInput, "get %s: output directory %s: %v", req.Ref, dir, unwrapPathErr(err))
	}
	defer root.Close()
	if file != "" && !req.Force {
		if _, err := root.Lstat(file); err == nil {
			return api.GetResult{}, errExists(req.Path)
		}
	}
	tmp, err := n.store.TempDir("get-*")
	if err != nil {
		return api.GetResult{}, fmt.Errorf("get %s: %w", req.Ref, err)
	}
	defer os.RemoveAll(tmp)
	troot, err := os.OpenRoot(tmp)
	if err != nil {
		return api.GetResult{}, fmt.Errorf("get %s: %w", req.Ref, err)
	}
	defer troot.Close()
	tr, end := n.transfers.start(req.ID, "get", req.Ref, -1)
	defer end()
	res, err := n.share.Get(ctx, req.Ref, troot, file, tr.progress)
	n.countTransfer(err, res.Size)
	if err != nil {
		return api.GetResult{}, apiError(err)
	}
	if err := n.placeOutput(filepath.Join(tmp, res.Path), root, dir, res.Path, req.Force); err != nil {
		return api.GetResult{}, err
	}
	out := toAPIResult(res)
	out.Path = filepath.Join(dir, res.Path)
	return out, nil
}

func toAPIResult(res share.GetResult) api.GetResult {
	out := api.GetResult{
		Name: res.Name, CID: res.CID.String(), Size: res.Size, Provider: res.Provider.String(),
		RTTMillis: millis(res.RTT), Millis: millis(res.Elapsed), Via: res.Via, ResumedFrom: res.ResumedFrom,
	}
	if len(res.Attempts) > 1 {
		for _, a := range res.Attempts {
			out.Attempts = append(out.Attempts, api.Attempt{Peer: a.Peer.String(), RTTMillis: millis(a.RTT), Offset: a.Offset, Bytes: a.Bytes, Error: a.Err})
		}
	}
	return out
}

func millis(d time.Duration) float64 {
	if d >= time.Hour {
		return 0
	}
	return float64(d.Microseconds()) / 1000
}

// Cat implements api.API: see streamCat.
func (c *CoreAPI) Cat(ctx context.Context, ref string) (api.GetResult, api.CatBody, error) {
	return c.n.streamCat(ctx, ref)
}

// Peers implements api.API: connected peers, lowest RTT first.
func (c *CoreAPI) Peers(ctx context.Context) ([]api.PeerInfo, error) {
	n := c.n
	n.peering.pingMissing(ctx)
	var out []api.PeerInfo
	for _, p := range n.host.Network().Peers() {
		pi := api.PeerInfo{ID: p.String(), RTTMillis: millis(n.host.Peerstore().LatencyEWMA(p))}
		for _, c := range n.host.Network().ConnsToPeer(p) {
			pi.Addrs = append(pi.Addrs, c.RemoteMultiaddr().String())
			switch via, relay := share.ConnVia(c); {
			case via == share.ViaDirect:
				pi.Via, pi.Relay = via, ""
			case pi.Via == "":
				pi.Via = via
				if relay != "" {
					pi.Relay = relay.String()
				}
			}
		}
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].RTTMillis, out[j].RTTMillis
		if (a == 0) != (b == 0) {
			return b == 0
		}
		if a != b {
			return a < b
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Members implements api.API.
func (c *CoreAPI) Members(context.Context) ([]api.MemberInfo, error) {
	n := c.n
	ms := n.memb.Members()
	out := make([]api.MemberInfo, 0, len(ms))
	for _, m := range ms {
		mi := api.MemberInfo{
			ID: m.ID.String(), State: m.State.String(), LastSeen: m.LastSeen.UTC().Format(time.RFC3339Nano),
			Since: m.Since.UTC().Format(time.RFC3339Nano), Incarnation: m.Inc, RTTMillis: millis(m.RTT),
			Files: m.Files, FreeBytes: m.FreeBytes, Addrs: m.Addrs, Self: m.Self,
			OffsetMillis: offsetMillis(m),
		}
		if est, ok := n.near.estimate(m.Coord); ok && !m.Self {
			v := durationMillis(est)
			mi.RTTEstMillis = &v
		}
		out = append(out, mi)
	}
	return out, nil
}

// offsetMillis is a member's clock offset for the API: nil when not
// measured, 0 for this node.
func offsetMillis(m gossip.Member) *float64 {
	if !m.Self && !m.OffsetKnown {
		return nil
	}
	v := durationMillis(m.Offset)
	return &v
}

// durationMillis is d in milliseconds, to the microsecond.
func durationMillis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Leave implements api.API: every file that would fall below R live
// copies is handed off to the closest live members (in custody for this
// node), then goodbye on the membership topic, then the daemon stops. If a
// hand-off fails the node stays.
func (c *CoreAPI) Leave(ctx context.Context) (api.LeaveResult, error) {
	n := c.n
	moved, err := n.share.Relocate(ctx)
	res := api.LeaveResult{Moved: []api.MovedFile{}}
	names := n.namesByCID()
	for _, m := range moved {
		res.Moved = append(res.Moved, api.MovedFile{Names: names[m.CID.String()], CID: m.CID.String(), Size: m.Size,
			To: m.To.String(), RTTMillis: millis(m.RTT)})
	}
	if err != nil {
		return res, api.Errorf(api.ErrUnavailable, "leave: %v; the node stays in the network", err)
	}
	if err := n.memb.Leave(ctx); err != nil {
		return res, err
	}
	return res, c.Shutdown(ctx)
}

// namesByCID maps each CID of the catalog to its names.
func (n *Node) namesByCID() map[string][]string {
	out := map[string][]string{}
	for _, e := range n.kv.Catalog("") {
		out[e.CID] = append(out[e.CID], e.Name)
	}
	return out
}

// Stats implements api.API.
func (c *CoreAPI) Stats(context.Context) (api.Stats, error) {
	n := c.n
	conv := func(s metrics.Stats) api.Traffic {
		return api.Traffic{InBytes: s.TotalIn, OutBytes: s.TotalOut, InRate: s.RateIn, OutRate: s.RateOut}
	}
	out := api.Stats{UptimeSeconds: time.Since(n.started).Seconds(), Total: conv(n.bw.GetBandwidthTotals()), Protocols: map[string]api.Traffic{}}
	out.Reachability = ReachabilityString(n.Reachability())
	hp := n.metrics.holePunch
	out.HolePunches = api.HolePunches{Tried: hp.tried.Load(), Succeeded: hp.succeeded.Load()}
	for p, s := range n.bw.GetBandwidthByProtocol() {
		out.Protocols[string(p)] = conv(s)
	}
	return out, nil
}

// Shutdown implements api.API.
func (c *CoreAPI) Shutdown(context.Context) error {
	if c.shutdown == nil {
		return api.Errorf(api.ErrNotDaemon, "shutdown: this node is not run by a daemon")
	}
	go c.shutdown()
	return nil
}

// apiError gives share's errors their API kinds.
func apiError(err error) error {
	var kind error
	switch {
	case errors.Is(err, share.ErrNoSpace):
		kind = api.ErrNoSpace
	case errors.Is(err, share.ErrBadName), errors.Is(err, share.ErrBadCID):
		kind = api.ErrBadInput
	case errors.Is(err, share.ErrNotFound), errors.Is(err, share.ErrNoProviders):
		kind = api.ErrNotFound
	case errors.Is(err, share.ErrTooLarge):
		kind = api.ErrTooLarge
	case errors.Is(err, context.Canceled):
		kind = context.Canceled
	}
	return &api.Error{Kind: kind, Message: err.Error()}
}

// catalogError is the API error of a catalog write that failed.
func catalogError(what string, err error) error {
	switch {
	case errors.Is(err, kv.ErrClockOff):
		return api.Errorf(api.ErrClockOff, "%s: %v", what, err)
	case errors.Is(err, kv.ErrWriterLimit):
		return writerLimitError(what, err)
	}
	return api.Errorf(nil, "%s: %v", what, err)
}

// unwrapPathErr drops the op and path of an *os.PathError (the caller says
// which path).
func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// FormatAddrs renders multiaddrs as strings.
func FormatAddrs(as []ma.Multiaddr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// Transfers implements api.API.
func (c *CoreAPI) Transfers(context.Context) ([]api.Transfer, error) {
	return c.n.transfers.list(), nil
}
