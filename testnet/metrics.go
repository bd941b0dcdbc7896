package testnet

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Scrape fetches d's /metrics, with its API token or (withToken false)
// without, and returns the HTTP status and, on 200, the samples by
// metric line key (`name{labels}`).
func (d *Daemon) Scrape(withToken bool) (int, map[string]float64, error) {
	base, err := os.ReadFile(filepath.Join(d.Repo, "api"))
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequest(http.MethodGet, strings.TrimSpace(string(base))+"/metrics", nil)
	if err != nil {
		return 0, nil, err
	}
	if withToken {
		tok, err := os.ReadFile(filepath.Join(d.Repo, "api.token"))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, out, nil
	}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return resp.StatusCode, out, sc.Err()
}
