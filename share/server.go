package share

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ipfs/go-cid"
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
	_ = st.CloseRead()
	n, headerSent, err := s.copyOut(st, f, req.CID, req.Offset, size)
	s.stats.ServedBytes.Add(n)
	switch {
	case errors.Is(err, ErrHashMismatch):
		s.stats.ServedFailed.Add(1)
		// The copy rotted: the last bytes are held back, so no getter
		// gets a whole transfer that looks right.
		if !headerSent {
			s.reply(st, ResponseHeader{Status: StatusNotFound, Message: "the held copy failed verification"})
		} else {
			_ = st.Reset()
		}
		s.bg.Go(func(context.Context) { s.quarantine(req.CID, "serving it") })
		return
	case err != nil:
		s.stats.ServedFailed.Add(1)
		s.log.Debug("serve interrupted", "peer", remote, "cid", req.CID, "sent", n, "err", err)
		_ = st.Reset()
		return
	}
	s.stats.ServedOK.Add(1)
	_ = st.Close()
	s.markVerified(req.CID)
	s.log.Debug("served", "peer", remote, "cid", req.CID, "offset", req.Offset, "bytes", n)
}

// copyOut streams f (size bytes long, held as c) to st from off, hashing the
// whole file on the way (the bytes before off too, unsent). The status
// header goes out with the first bytes, and the last chunk only once the
// hash matched c: a copy that does not hash to c returns ErrHashMismatch
// before the transfer is complete (before the header, if the file fits in
// one chunk). The write deadline is renewed on every chunk so a reader that
// stops reading cannot hold the slot for ever.
func (s *Service) copyOut(st network.Stream, f *os.File, c cid.Cid, off, size int64) (sent int64, header bool, err error) {
	bufA, bufB := getCopyBuf(), getCopyBuf()
	defer putCopyBuf(bufA)
	defer putCopyBuf(bufB)
	h := newOverlapHasher(*bufA, *bufB)
	defer h.stop()
	var read int64
	for {
		buf := h.next()
		chunk := buf[:min(int64(len(buf)), size-read)]
		if len(chunk) > 0 {
			if _, rerr := io.ReadFull(f, chunk); rerr != nil {
				if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
					return sent, header, fmt.Errorf("%w: the file is shorter than its %d bytes", ErrHashMismatch, size)
				}
				return sent, header, rerr
			}
		}
		h.add(chunk)
		start := read
		read += int64(len(chunk))
		if read == size {
			// The last chunk goes out only once the whole file hashed to c.
			if got := cidFromDigest(h.sum()); !got.Equals(c) {
				return sent, header, fmt.Errorf("%w (hashes to %s)", ErrHashMismatch, got)
			}
		}
		if !header {
			header = true
			_ = st.SetWriteDeadline(time.Now().Add(s.cfg.StallTimeout))
			if _, werr := st.Write(AppendResponseHeader(nil, ResponseHeader{Status: StatusOK, Size: size})); werr != nil {
				return sent, header, werr
			}
		}
		for out := chunk[max(min(off-start, int64(len(chunk))), 0):]; len(out) > 0; {
			p := out[:piece(s.up, len(out))]
			if err := spend(s.ctx, s.up, len(p)); err != nil {
				return sent, header, err
			}
			_ = st.SetWriteDeadline(time.Now().Add(s.cfg.StallTimeout))
			w, werr := st.Write(p)
			sent += int64(w)
			if werr != nil {
				return sent, header, werr
			}
			out = out[w:]
		}
		if read == size {
			return sent, header, nil
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
