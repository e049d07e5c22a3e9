// Package web embeds Ztream's browser client — index.html, the stylesheet and
// the plain ES modules under js/ (no build step) — and serves it over HTTP.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// all:js: vendored modules have names starting with _ (embed skips those otherwise).
//
//go:embed index.html css all:js
var static embed.FS

// FS returns the client's static files: index.html, css/ and js/.
func FS() fs.FS { return static }

// contentTypes maps the extensions shipped in the client to their MIME type.
// They are explicit so that the system's mime.types cannot change what a
// browser receives (ES modules are refused unless served as JavaScript).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".json": "application/json",
	".ico":  "image/x-icon",
	".png":  "image/png",
}

// contentSecurityPolicy allows only same-origin scripts and styles, the
// WebSocket signaling connection and blob: media (MediaSource object URLs).
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"connect-src 'self' ws: wss:; media-src 'self' blob:; img-src 'self' data:; " +
	"object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

type file struct {
	body        []byte
	contentType string
	etag        string
}

// Handler returns an http.Handler serving the client: "/" is index.html,
// every other path a file of FS. Unknown paths get 404. Responses carry an
// ETag derived from the content and "Cache-Control: no-cache", so browsers
// revalidate and always run the client embedded in the running binary.
func Handler() http.Handler {
	files, err := load(static)
	if err != nil {
		// The embedded files are fixed at build time; failing to read them is a build defect.
		panic(fmt.Sprintf("web: reading embedded client: %v", err))
	}
	return handler{files: files}
}

// load reads every file of fsys into memory with its type and ETag.
func load(fsys fs.FS) (map[string]file, error) {
	files := make(map[string]file)
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("reading %s: %w", p, err)
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(body)
		files["/"+p] = file{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walking embedded files: %w", err)
	}
	return files, nil
}

type handler struct {
	files map[string]file
}

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := path.Clean("/" + r.URL.Path)
	if p == "/" {
		p = "/index.html"
	}
	f, ok := h.files[p]
	if !ok || strings.HasPrefix(path.Base(p), ".") {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", f.contentType)
	hdr.Set("ETag", f.etag)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if f.contentType == contentTypes[".html"] {
		hdr.Set("Content-Security-Policy", contentSecurityPolicy)
		hdr.Set("Referrer-Policy", "no-referrer")
	}
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, f.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Length", fmt.Sprint(len(f.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(f.body)
	}
}

// etagMatches reports whether an If-None-Match header value names etag.
func etagMatches(header, etag string) bool {
	for _, part := range strings.Split(header, ",") {
		part = strings.TrimSpace(part)
		if part == "*" || strings.TrimPrefix(part, "W/") == etag {
			return true
		}
	}
	return false
}
