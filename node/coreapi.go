package node

import "github.com/p2pshare/p2pshare/node/api"

// CoreAPI is the API of a running node (api.API) over the node's parts:
// what a daemon serves over HTTP (api.Server), and what the CLI reaches
// through api.Client. Node builds, wires and closes the parts; CoreAPI
// only uses them, and its errors are of the kinds of package api, which
// the HTTP server maps to statuses. Its methods are in api.go, kvapi.go
// and revoke.go.
type CoreAPI struct {
	n        *Node
	url      string // where the daemon serves the API, for ID
	shutdown func() // the daemon's stop; nil when no daemon runs the node
}

var _ api.API = (*CoreAPI)(nil)

// CoreOptions tell a CoreAPI about the daemon that serves it; both are
// empty for a node run in process only.
type CoreOptions struct {
	// URL is where the daemon serves the API, which ID reports.
	URL string
	// Shutdown stops the daemon; without it Shutdown answers
	// api.ErrNotDaemon.
	Shutdown func()
}

// NewCoreAPI returns the API of n.
func NewCoreAPI(n *Node, o CoreOptions) *CoreAPI {
	return &CoreAPI{n: n, url: o.URL, shutdown: o.Shutdown}
}

// API returns n's API, as run in process (no daemon).
func (n *Node) API() *CoreAPI { return NewCoreAPI(n, CoreOptions{}) }
