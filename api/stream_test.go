package api_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// TestStream: GET /api/tracks/{id}/stream is the track's bytes (its chunks
// in order) as one response, with Range requests across chunk boundaries,
// HEAD, and every byte sent counted as a server byte.
func TestStream(t *testing.T) {
	t.Parallel()
	srv, st, served := newServer(t)
	m, chunks := putSyntheticTrack(t, st, 6)
	whole := bytes.Join(chunks, nil)
	url := fmt.Sprintf("%s/api/tracks/%s/stream", srv.URL, m.ID)

	code, ctype, body := get(t, url)
	if code != http.StatusOK || ctype != "audio/mpeg" || !bytes.Equal(body, whole) {
		t.Fatalf("whole stream: %d %s, %d bytes, want 200 audio/mpeg %d bytes equal to the chunks", code, ctype, len(body), len(whole))
	}
	if *served != len(whole) {
		t.Errorf("counted %d server bytes, want %d", *served, len(whole))
	}

	c0 := len(chunks[0])
	for _, r := range [][2]int{{0, 9}, {c0 - 5, c0 + 5}, {c0, 2*c0 + 3}, {len(whole) - 7, len(whole) - 1}} {
		*served = 0
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", r[0], r[1]))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := whole[r[0] : r[1]+1]
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, want) ||
			resp.Header.Get("Content-Range") != fmt.Sprintf("bytes %d-%d/%d", r[0], r[1], len(whole)) {
			t.Errorf("range %v: %d %q, %d bytes; want 206 and %d bytes", r, resp.StatusCode, resp.Header.Get("Content-Range"), len(got), len(want))
		}
		if *served != len(want) {
			t.Errorf("range %v: counted %d server bytes, want %d", r, *served, len(want))
		}
	}

	resp, err := http.Head(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(whole)) || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("HEAD: %d, length %d, Accept-Ranges %q", resp.StatusCode, resp.ContentLength, resp.Header.Get("Accept-Ranges"))
	}
	if code, _, _ := get(t, srv.URL+"/api/tracks/0123456789abcdef0123456789abcdef/stream"); code != http.StatusNotFound {
		t.Errorf("unknown track: %d, want 404", code)
	}
	if code, _, _ := get(t, srv.URL+"/api/tracks/nope/stream"); code != http.StatusBadRequest {
		t.Errorf("malformed id: %d, want 400", code)
	}
}
