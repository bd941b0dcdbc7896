// Package api owns the daemon's local HTTP API: the API interface that the
// daemon implements in process (node.CoreAPI) and that Client implements over
// HTTP, the JSON types that cross it, and the server that exposes an API on
// loopback behind a bearer token (and the web dashboard of package
// dashboard). Every CLI command that talks to a daemon does so through
// Client; api imports no other p2pshare package but dashboard.
package api

import (
	"context"
	"encoding/base64"
	"io"
)

// API is everything the CLI and scripts can ask a running node.
type API interface {
	// ID describes the node: its peer ID, addresses and API URL.
	ID(ctx context.Context) (IDInfo, error)
	// Share stores and publishes a file: Path names a file the daemon can
	// read, or Body streams the bytes (an upload).
	Share(ctx context.Context, req ShareRequest) (ShareResult, error)
	// Get fetches a name or CID into a file on this machine.
	Get(ctx context.Context, req GetRequest) (GetResult, error)
	// Cat fetches a name or CID and returns its verified bytes as they
	// arrive, with what is known when the first bytes do (name, CID, size,
	// the first provider); the caller closes the reader.
	Cat(ctx context.Context, ref string) (GetResult, CatBody, error)
	// Peers lists the connected peers.
	Peers(ctx context.Context) ([]PeerInfo, error)
	// Members lists the members table, this node included.
	Members(ctx context.Context) ([]MemberInfo, error)
	// Leave hands off what would fall below R copies without this node,
	// says goodbye to the network and stops the daemon.
	Leave(ctx context.Context) (LeaveResult, error)
	// Stats reports the node's network traffic, in total and by protocol.
	Stats(ctx context.Context) (Stats, error)
	// Shutdown stops the daemon.
	Shutdown(ctx context.Context) error
	// Transfers lists the shares and gets in progress.
	Transfers(ctx context.Context) ([]Transfer, error)

	// KVPut writes a key of the replicated key-value store.
	KVPut(ctx context.Context, req KVPutRequest) (KVEntry, error)
	// KVGet reads a key: the answer names its writer and time.
	KVGet(ctx context.Context, key string) (KVEntry, error)
	// KVDelete deletes a key everywhere; the answer is the tombstone.
	KVDelete(ctx context.Context, key string) (KVEntry, error)
	// KVList lists every live key, sorted.
	KVList(ctx context.Context) ([]KVEntry, error)
	// Revoke applies and spreads a revocation signed by the network
	// authority (the encoded admit.Revocation).
	Revoke(ctx context.Context, revocation []byte) (RevokeResult, error)
	// Catalog lists the network's shared names whose name holds term, in
	// any case (every name when term is empty), sorted by name.
	Catalog(ctx context.Context, term string) ([]CatalogEntry, error)
}

// KVPutRequest asks to write Key = Value, expiring after TTL (a Go
// duration such as "30s" or "2h"; empty for never).
type KVPutRequest struct {
	Key   string
	Value []byte
	TTL   string
}

// KVEntry is one key of the store. Value holds the value when it is valid
// UTF-8 text; otherwise ValueBase64 holds it.
type KVEntry struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	ValueBase64 string `json:"value_base64,omitempty"`
	Size        int    `json:"size"`
	Writer      string `json:"writer"`
	Time        string `json:"time"` // RFC 3339, the write's hybrid-logical wall time
	Logical     uint32 `json:"logical,omitempty"`
	Expires     string `json:"expires,omitempty"` // RFC 3339, absent if never
	Deleted     bool   `json:"deleted,omitempty"`
}

// Bytes returns the entry's value.
func (e KVEntry) Bytes() []byte {
	if e.ValueBase64 != "" {
		b, err := base64.StdEncoding.DecodeString(e.ValueBase64)
		if err == nil {
			return b
		}
	}
	return []byte(e.Value)
}

// CatalogEntry is one shared name of the network's catalog.
type CatalogEntry struct {
	Name      string       `json:"name"`
	CID       string       `json:"cid"`
	Size      int64        `json:"size"`
	Publisher string       `json:"publisher"`
	Time      string       `json:"time"`
	Holders   []HolderInfo `json:"holders"`
}

// HolderInfo is a peer holding a file, in custody for another peer when
// CustodyFor is set.
type HolderInfo struct {
	Peer       string `json:"peer"`
	CustodyFor string `json:"custody_for,omitempty"`
	State      string `json:"state"` // the holder's membership state as this node sees it
}

// IDInfo is the answer of ID.
type IDInfo struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"` // each with /p2p/ID
	API   string   `json:"api"`
	// OffsetMillis is how far this node's clock is ahead of the network's
	// (negative: behind), the median over OffsetPeers measured peers; 0
	// when none is measured yet.
	OffsetMillis float64 `json:"offset_ms"`
	OffsetPeers  int     `json:"offset_peers"`
	// Clock, when set, warns that this node's clock is off by more than
	// the records allow: its writes are refused until it is fixed.
	Clock string `json:"clock,omitempty"`
	// Reachability is public (peers on the internet can dial this node),
	// private (behind a NAT: reached through relays) or unknown (AutoNAT
	// cannot tell, as on a LAN).
	Reachability string `json:"reachability"`
	// PublicAddrs are the addresses others can dial this node at: its
	// public addresses (observed by peers, mapped, announced) and its
	// relay addresses; each with /p2p/ID.
	PublicAddrs []string `json:"public_addrs"`
	// UID is the user the daemon runs as (-1 where there are no uids);
	// Machine names the running system (host name and boot ID): a command
	// whose own uid and machine match may let the daemon write its output.
	UID     int    `json:"uid"`
	Machine string `json:"machine,omitempty"`
}

// ShareRequest asks to share a file. Exactly one of Path and Body is set.
type ShareRequest struct {
	Name string    `json:"name"`
	ID   string    `json:"id,omitempty"`   // names the transfer in Transfers
	Path string    `json:"path,omitempty"` // absolute path of a file the daemon reads
	Body io.Reader `json:"-"`              // the bytes, uploaded
}

// ShareResult is the answer of Share.
type ShareResult struct {
	Name      string `json:"name"`
	CID       string `json:"cid"`
	Size      int64  `json:"size"`
	Published bool   `json:"published"` // false: no peer yet, announced when one connects
	// Replicas are the other live peers that hold a copy (replication
	// factor R): those this share copied to, and any the repair loop had
	// already copied to.
	Replicas []string `json:"replicas"`
	// ReplicaError says why fewer than R copies were made, if so.
	ReplicaError string `json:"replica_error,omitempty"`
}

// LeaveResult is the answer of Leave: what moved where.
type LeaveResult struct {
	Moved []MovedFile `json:"moved"`
}

// MovedFile is one file handed off by a leaving node, kept in custody by To.
type MovedFile struct {
	Names     []string `json:"names,omitempty"`
	CID       string   `json:"cid"`
	Size      int64    `json:"size"`
	To        string   `json:"to"`
	RTTMillis float64  `json:"rtt_ms"`
}

// GetRequest asks to fetch Ref (a name or a CID) into Path, an absolute
// path: the file itself, or, with Dir, the directory to put it in under its
// name. An existing file there is replaced only with Force (else the answer
// is 409 Conflict).
type GetRequest struct {
	Ref   string `json:"ref"`
	Path  string `json:"path"`
	Dir   bool   `json:"dir,omitempty"`
	Force bool   `json:"force,omitempty"`
	// ID names the transfer in Transfers while it runs (for a progress
	// display); the daemon picks one when empty.
	ID string `json:"id,omitempty"`
}

// Transfer is a share or get in progress.
type Transfer struct {
	ID      string  `json:"id"`
	Kind    string  `json:"kind"` // "get" or "share"
	Ref     string  `json:"ref"`
	Done    int64   `json:"done"`
	Total   int64   `json:"total"` // -1 when not yet known
	Peer    string  `json:"peer,omitempty"`
	Seconds float64 `json:"seconds"` // since it started
}

// CatBody is the reader of a Cat. Once it has returned io.EOF (every byte,
// verified), Result is the answer of the get behind it as Get gives it
// (the provider that served the bytes, its RTT, the connection, the
// providers tried, the offset it resumed from), without Path; ok is false
// before then, or when the daemon did not say.
type CatBody interface {
	io.ReadCloser
	Result() (res GetResult, ok bool)
}

// GetResult is the answer of Get.
type GetResult struct {
	Name      string    `json:"name"`
	CID       string    `json:"cid"`
	Size      int64     `json:"size"`
	Provider  string    `json:"provider"`
	RTTMillis float64   `json:"rtt_ms"`
	Path      string    `json:"path"`
	Millis    float64   `json:"elapsed_ms"`
	Attempts  []Attempt `json:"attempts,omitempty"` // providers tried, when more than one
	// Via is how the connection that served the bytes ran: direct or
	// relayed; empty when this node held the file.
	Via string `json:"via,omitempty"`
	// ResumedFrom is the offset this get continued from, kept by an
	// interrupted earlier get of the same file; absent when it started at 0.
	ResumedFrom int64 `json:"resumed_from,omitempty"`
}

// Attempt is one provider tried by a get.
type Attempt struct {
	Peer      string  `json:"peer"`
	RTTMillis float64 `json:"rtt_ms"`
	Offset    int64   `json:"offset"`
	Bytes     int64   `json:"bytes"`
	Error     string  `json:"error,omitempty"`
}

// PeerInfo is one connected peer.
type PeerInfo struct {
	ID        string   `json:"id"`
	Addrs     []string `json:"addrs"`
	RTTMillis float64  `json:"rtt_ms"` // 0 when not yet measured
	// Via is direct if one of the connections to the peer is, else
	// relayed; Relay then names the relay of the first relayed one.
	Via   string `json:"via"`
	Relay string `json:"relay,omitempty"`
}

// MemberInfo is one member as this node sees it.
type MemberInfo struct {
	ID          string  `json:"id"`
	State       string  `json:"state"` // alive, suspect, dead or left
	LastSeen    string  `json:"last_seen"`
	Since       string  `json:"since"` // when it entered State
	Incarnation uint64  `json:"incarnation"`
	RTTMillis   float64 `json:"rtt_ms"` // measured; 0 if never
	// RTTEstMillis is the RTT estimated from the network coordinates of
	// this node and the member's last heartbeat; absent when the member
	// sent none or either coordinate has not settled yet.
	RTTEstMillis *float64 `json:"rtt_est_ms,omitempty"`
	Files        int      `json:"files"`
	FreeBytes    int64    `json:"free_bytes"`
	Addrs        []string `json:"addrs,omitempty"`
	Self         bool     `json:"self,omitempty"`
	// OffsetMillis is how far the member's clock is ahead of this node's
	// (negative: behind); absent when not measured yet, 0 for this node.
	OffsetMillis *float64 `json:"offset_ms,omitempty"`
}

// Traffic is bytes moved since start and the recent rate (bytes/s).
type Traffic struct {
	InBytes  int64   `json:"in_bytes"`
	OutBytes int64   `json:"out_bytes"`
	InRate   float64 `json:"in_rate"`
	OutRate  float64 `json:"out_rate"`
}

// Stats is the answer of Stats.
type Stats struct {
	UptimeSeconds float64            `json:"uptime_s"`
	Total         Traffic            `json:"total"`
	Protocols     map[string]Traffic `json:"protocols"`
	Reachability  string             `json:"reachability"`
	HolePunches   HolePunches        `json:"hole_punches"`
}

// HolePunches counts the hole punches (DCUtR) this node took part in
// since start, and those that ended on a direct connection.
type HolePunches struct {
	Tried     int64 `json:"tried"`
	Succeeded int64 `json:"succeeded"`
}

// RevokeResult is the answer of Revoke.
type RevokeResult struct {
	Peer string `json:"peer"`
	Self bool   `json:"self,omitempty"` // the revoked peer is the node asked
}
