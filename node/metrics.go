package node

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/p2pshare/p2pshare/gossip"
	"github.com/p2pshare/p2pshare/gossip/kv"
	"github.com/p2pshare/p2pshare/share"
)

// nodeMetrics owns the node's Prometheus registry: libp2p's own metrics (the
// host registers them here), the Go runtime's, and p2pshare's.
type nodeMetrics struct {
	reg                  *prometheus.Registry
	inOK, inErr, inBytes atomic.Int64 // gets and shares made on this node
	lookups              *prometheus.HistogramVec
	holePunch            *holePunchCounter
}

func newMetrics() *nodeMetrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &nodeMetrics{
		reg: reg,
		lookups: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "p2pshare", Name: "dht_lookup_seconds",
			Help:    "Duration of DHT lookups, by what was looked up (name, providers).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"what"}),
	}
	m.holePunch = &holePunchCounter{}
	reg.MustRegister(m.lookups)
	reg.MustRegister(m.holePunch.collectors()...)
	return m
}

// register adds the collectors that read the node's parts; called once
// they exist.
func (m *nodeMetrics) register(n *Node) {
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "p2pshare", Name: name, Help: help}, f)
	}
	st := n.share.Stats()
	m.reg.MustRegister(
		transfersCollector{m: m, st: st},
		counter("replication_repairs_total", "Copies made to restore R after a holder died.", func() float64 { return float64(st.Repairs.Load()) }),
		counter("replication_relocations_total", "Files handed off by a leave.", func() float64 { return float64(st.Relocations.Load()) }),
		counter("replication_trimmed_total", "Copies dropped because more than R live nodes held the file.", func() float64 { return float64(st.Trimmed.Load()) }),
		counter("replication_givebacks_total", "Custody copies given back to a returning node.", func() float64 { return float64(st.GiveBacks.Load()) }),
		counter("copies_quarantined_total", "Held copies found bad (by serving, the scrub, a push or a getter's report) and quarantined.", func() float64 { return float64(st.Quarantined.Load()) }),
		counter("copies_restored_total", "Quarantined copies replaced by a good copy from another holder.", func() float64 { return float64(st.Restored.Load()) }),
		counter("scrub_bytes_total", "Bytes the background scrub re-hashed.", func() float64 { return float64(st.ScrubbedBytes.Load()) }),
		counter("scrub_files_total", "Files the background scrub re-hashed.", func() float64 { return float64(st.ScrubbedFiles.Load()) }),
		counter("kv_puts_total", "KV writes made on this node.", func() float64 { return float64(n.kv.Stats().Puts) }),
		counter("kv_deletes_total", "KV deletes made on this node.", func() float64 { return float64(n.kv.Stats().Deletes) }),
		counter("kv_applied_gossip_total", "KV records applied from the KV topic.", func() float64 { return float64(n.kv.Stats().AppliedGossip) }),
		counter("kv_applied_sync_total", "KV records applied by anti-entropy.", func() float64 { return float64(n.kv.Stats().AppliedSync) }),
		counter("kv_syncs_total", "Anti-entropy exchanges started by this node that succeeded.", func() float64 { return float64(n.kv.Stats().Syncs) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "p2pshare", Name: "kv_records", Help: "Records kept by the KV store (catalog and tombstones included)."},
			func() float64 { return float64(n.kv.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "p2pshare", Name: "files_held", Help: "Files in this node's store."},
			func() float64 { return float64(n.store.Count()) }),
		membersCollector{n.memb},
		counter("membership_inbox_dropped_total", "Membership messages dropped because the membership loop was its inbox behind (a node too busy to keep up).",
			func() float64 { return float64(n.memb.Stats().InboxDropped) }),
		counter("membership_sends_dropped_total", "Membership direct messages and port checks dropped because too many were in flight.",
			func() float64 { return float64(n.memb.Stats().SendDropped) }),
		counter("membership_publishes_dropped_total", "Membership topic messages dropped because the publisher was behind.",
			func() float64 { return float64(n.memb.Stats().PublishDropped) }),
		counter("membership_published_total", "Membership topic messages this node published (heartbeats, suspicions, deaths, joins, leaves).",
			func() float64 { return float64(n.memb.Stats().Published) }),
		counter("membership_received_total", "Membership topic messages of other members this node accepted.",
			func() float64 { return float64(n.memb.Stats().Received) }),
		rejectedCollector{n.kv},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "p2pshare", Name: "clock_offset_seconds",
			Help: "How far this node's clock is ahead of the network's (the median of the measured live members'; negative: behind); 0 until measured."},
			func() float64 { d, _ := n.clockOffset(); return d.Seconds() }),
	)
}

// observeLookup records how long a DHT lookup took (what is "name" or
// "providers").
func (m *nodeMetrics) observeLookup(what string, d time.Duration) {
	m.lookups.WithLabelValues(what).Observe(d.Seconds())
}

// transfersCollector reports transfers and their bytes by direction (in:
// gets and shares made on this node; out: files served to peers) and
// result.
type transfersCollector struct {
	m  *nodeMetrics
	st *share.Stats
}

var (
	transfersDesc = prometheus.NewDesc("p2pshare_transfers_total",
		"Transfers by direction (in: gets and shares on this node; out: files served to peers) and result (ok, error).",
		[]string{"direction", "result"}, nil)
	bytesDesc = prometheus.NewDesc("p2pshare_transfer_bytes_total", "Bytes of files moved, by direction.", []string{"direction"}, nil)
)

func (c transfersCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- transfersDesc
	ch <- bytesDesc
}

func (c transfersCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(transfersDesc, c.m.inOK.Load(), "in", "ok")
	counter(transfersDesc, c.m.inErr.Load(), "in", "error")
	counter(transfersDesc, c.st.ServedOK.Load(), "out", "ok")
	counter(transfersDesc, c.st.ServedFailed.Load(), "out", "error")
	counter(bytesDesc, c.m.inBytes.Load(), "in")
	counter(bytesDesc, c.st.ServedBytes.Load(), "out")
}

// membersCollector reports the members table by state.
type membersCollector struct{ m *gossip.Membership }

var membersDesc = prometheus.NewDesc("p2pshare_members", "Members by state, this node included.", []string{"state"}, nil)

func (c membersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- membersDesc }

func (c membersCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{"alive": 0, "suspect": 0, "dead": 0, "left": 0}
	for _, m := range c.m.Members() {
		counts[m.State.String()]++
	}
	for s, k := range counts {
		ch <- prometheus.MustNewConstMetric(membersDesc, prometheus.GaugeValue, float64(k), s)
	}
}

// rejectedCollector reports the records received and rejected, by reason.
type rejectedCollector struct{ s *kv.Store }

var rejectedDesc = prometheus.NewDesc("p2pshare_kv_rejected_total",
	"KV and catalog records received and rejected, by reason (future: written too far ahead; writer_cap: its writer holds the per-writer limit here; invalid, too_large, denied).",
	[]string{"reason"}, nil)

func (c rejectedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- rejectedDesc }

func (c rejectedCollector) Collect(ch chan<- prometheus.Metric) {
	got := c.s.Stats().Rejected
	for _, r := range []string{kv.RejectFuture, kv.RejectWriterCap, kv.RejectInvalid, kv.RejectTooLarge, kv.RejectDenied} {
		ch <- prometheus.MustNewConstMetric(rejectedDesc, prometheus.CounterValue, float64(got[r]), r)
	}
}

// MetricsHandler serves the node's metrics in the Prometheus text format.
func (n *Node) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{})
}

// countTransfer records a get or share made on this node.
func (n *Node) countTransfer(err error, bytes int64) {
	if err != nil {
		n.metrics.inErr.Add(1)
		return
	}
	n.metrics.inOK.Add(1)
	n.metrics.inBytes.Add(bytes)
}
