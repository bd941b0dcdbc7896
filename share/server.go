package share

import (
	"bufio"
	"errors"
	"io"
	"os"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// handleGet serves one request of ProtocolID: it checks the request before
// touching the store, answers with a status, and streams the bytes. It
// resets the stream on any error and closes it on success.
func (s *Service) handleGet(st network.Stream) {
	remote := st.Conn().RemotePeer()
	_ = st.SetReadDeadline(time.Now().Add(s.cfg.RequestTimeout))
	req, err := ReadRequest(bufio.NewReaderSize(st, 256))
	if err != nil {
		s.log.Debug("bad get request", "peer", remote, "err", err)
		s.reply(st, ResponseHeader{Status: StatusBadRequest, Message: err.Error()})
		return
	}
	if !s.acquire(remote) {
		s.reply(st, ResponseHeader{Status: StatusBusy, Message: "too many transfers, try another provider"})
		return
	}
	defer s.release(remote)

	f, size, err := s.store.Open(req.CID)
	if err != nil {
		status := StatusNotFound
		if !errors.Is(err, ErrNotFound) {
			s.log.Warn("open held file", "cid", req.CID, "err", err)
		}
		s.reply(st, ResponseHeader{Status: status, Message: "not held here"})
		return
	}
	defer f.Close()
	if req.Offset > size {
		s.reply(st, ResponseHeader{Status: StatusBadRequest, Size: size, Message: "offset past the end"})
		return
	}
	if size > s.cfg.MaxFileSize {
		s.reply(st, ResponseHeader{Status: StatusTooLarge, Size: size, Message: "over this node's file size limit"})
		return
	}
	if _, err := f.Seek(req.Offset, io.SeekStart); err != nil {
		s.reply(st, ResponseHeader{Status: StatusNotFound, Message: "seek failed"})
		return
	}
	_ = st.CloseRead()
	if _, err := st.Write(AppendResponseHeader(nil, ResponseHeader{Status: StatusOK, Size: size})); err != nil {
		_ = st.Reset()
		return
	}
	n, err := s.copyOut(st, f)
	s.stats.ServedBytes.Add(n)
	if err != nil {
		s.stats.ServedFailed.Add(1)
		s.log.Debug("serve interrupted", "peer", remote, "cid", req.CID, "sent", n, "err", err)
		_ = st.Reset()
		return
	}
	s.stats.ServedOK.Add(1)
	_ = st.Close()
	s.log.Debug("served", "peer", remote, "cid", req.CID, "offset", req.Offset, "bytes", n)
}

// copyOut streams f to st, renewing the write deadline on every chunk so a
// reader that stops reading cannot hold the slot for ever.
func (s *Service) copyOut(st network.Stream, f *os.File) (int64, error) {
	bufp := getCopyBuf()
	defer putCopyBuf(bufp)
	buf := *bufp
	var total int64
	for {
		n, rerr := f.Read(buf)
		if n > 0 {
			_ = st.SetWriteDeadline(time.Now().Add(s.cfg.StallTimeout))
			w, werr := st.Write(buf[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

func (s *Service) reply(st network.Stream, h ResponseHeader) {
	_ = st.SetWriteDeadline(time.Now().Add(s.cfg.RequestTimeout))
	if _, err := st.Write(AppendResponseHeader(nil, h)); err != nil {
		_ = st.Reset()
		return
	}
	_ = st.Close()
}

// acquire takes a serving slot for p, if the global and per-peer caps allow.
func (s *Service) acquire(p peer.ID) bool {
	s.servesMu.Lock()
	defer s.servesMu.Unlock()
	if s.servesTotal >= s.cfg.MaxServes || s.servesPer[p] >= s.cfg.MaxServesPerPeer {
		return false
	}
	s.servesTotal++
	s.servesPer[p]++
	return true
}

func (s *Service) release(p peer.ID) {
	s.servesMu.Lock()
	defer s.servesMu.Unlock()
	s.servesTotal--
	if s.servesPer[p]--; s.servesPer[p] <= 0 {
		delete(s.servesPer, p)
	}
}
