// Package api owns the daemon's local HTTP API: the API interface that the
// daemon implements in process (node.Node) and that Client implements over
// HTTP, the JSON types that cross it, and the server that exposes an API on
// loopback behind a bearer token. The CLI is a client of this package only.
package api

import (
	"context"
	"fmt"
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
	// Cat fetches a name or CID and returns its verified bytes; the caller
	// closes the reader.
	Cat(ctx context.Context, ref string) (GetResult, io.ReadCloser, error)
	// Peers lists the connected peers.
	Peers(ctx context.Context) ([]PeerInfo, error)
	// Members lists the members table, this node included.
	Members(ctx context.Context) ([]MemberInfo, error)
	// Leave says goodbye to the network and stops the daemon.
	Leave(ctx context.Context) error
	// Stats reports the node's network traffic, in total and by protocol.
	Stats(ctx context.Context) (Stats, error)
	// Shutdown stops the daemon.
	Shutdown(ctx context.Context) error
}

// IDInfo is the answer of ID.
type IDInfo struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"` // each with /p2p/ID
	API   string   `json:"api"`
}

// ShareRequest asks to share a file. Exactly one of Path and Body is set.
type ShareRequest struct {
	Name string    `json:"name"`
	Path string    `json:"path,omitempty"` // absolute path of a file the daemon reads
	Body io.Reader `json:"-"`              // the bytes, uploaded
}

// ShareResult is the answer of Share.
type ShareResult struct {
	Name      string `json:"name"`
	CID       string `json:"cid"`
	Size      int64  `json:"size"`
	Published bool   `json:"published"` // false: no peer yet, announced when one connects
}

// GetRequest asks to fetch Ref (a name or a CID) into Path, an absolute
// path: the file itself, or, with Dir, the directory to put it in under its
// name.
type GetRequest struct {
	Ref  string `json:"ref"`
	Path string `json:"path"`
	Dir  bool   `json:"dir,omitempty"`
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
}

// MemberInfo is one member as this node sees it.
type MemberInfo struct {
	ID          string   `json:"id"`
	State       string   `json:"state"` // alive, suspect, dead or left
	LastSeen    string   `json:"last_seen"`
	Since       string   `json:"since"` // when it entered State
	Incarnation uint64   `json:"incarnation"`
	RTTMillis   float64  `json:"rtt_ms"`
	Files       int      `json:"files"`
	FreeBytes   int64    `json:"free_bytes"`
	Addrs       []string `json:"addrs,omitempty"`
	Self        bool     `json:"self,omitempty"`
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
}

// Error is an API error: an HTTP status and a one-line message.
type Error struct {
	Status  int    `json:"-"`
	Message string `json:"error"`
}

func (e *Error) Error() string { return e.Message }

// Errorf makes an *Error.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}
