package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHandlerServesIndexAndModulesWithTypes(t *testing.T) {
	h := Handler()
	cases := []struct {
		path, ctype, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script type="module" src="js/app.js">`},
		{"/index.html", "text/html; charset=utf-8", "<title>Ztream</title>"},
		{"/js/app.js", "text/javascript; charset=utf-8", "window.ztream"},
		{"/js/fmp4.js", "text/javascript; charset=utf-8", "export function fragment"},
		{"/css/app.css", "text/css; charset=utf-8", ":root"},
	}
	for _, c := range cases {
		rec := get(t, h, c.path, nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: status %d", c.path, rec.Code)
		}
		if got := rec.Header().Get("Content-Type"); got != c.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", c.path, got, c.ctype)
		}
		if !strings.Contains(rec.Body.String(), c.contains) {
			t.Errorf("GET %s: body lacks %q", c.path, c.contains)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", c.path)
		}
	}
	if csp := get(t, h, "/", nil).Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("index CSP = %q", csp)
	}
}

func TestHandlerNotFoundAndMethods(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/nope.js", "/js/", "/web.go", "/../web.go", "/test/unit/helpers.mjs"} {
		if rec := get(t, h, p, nil); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, rec.Code)
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d", rec.Code)
	}
	req = httptest.NewRequest(http.MethodHead, "/js/app.js", nil)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") == "" {
		t.Errorf("HEAD: status %d, %d body bytes, length %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Length"))
	}
}

func TestHandlerETagRevalidation(t *testing.T) {
	h := Handler()
	first := get(t, h, "/js/player.js", nil)
	etag := first.Header().Get("ETag")
	if etag == "" || first.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q", etag, first.Header().Get("Cache-Control"))
	}
	if rec := get(t, h, "/js/player.js", map[string]string{"If-None-Match": etag}); rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Errorf("matching If-None-Match: status %d, %d bytes", rec.Code, rec.Body.Len())
	}
	if rec := get(t, h, "/js/player.js", map[string]string{"If-None-Match": `"other", W/` + etag}); rec.Code != http.StatusNotModified {
		t.Errorf("list with weak match: status %d", rec.Code)
	}
	if rec := get(t, h, "/js/player.js", map[string]string{"If-None-Match": `"other"`}); rec.Code != http.StatusOK {
		t.Errorf("stale If-None-Match: status %d", rec.Code)
	}
	if other := get(t, h, "/js/ui.js", nil).Header().Get("ETag"); other == etag {
		t.Errorf("two files share ETag %s", etag)
	}
}

// importRE matches the module specifiers of static imports and re-exports
// (either quote: vendored modules use double quotes).
var importRE = regexp.MustCompile(`(?m)^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]`)

// blockCommentRE matches /* … */ comments.
var blockCommentRE = regexp.MustCompile(`(?s)/\*.*?\*/`)

// Every relative import of every embedded module must resolve to an embedded
// file, or the browser fails to load the client.
func TestEmbeddedModulesResolve(t *testing.T) {
	fsys := FS()
	n := 0
	err := fs.WalkDir(fsys, "js", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".js") {
			return err // .d.ts files are for the type check, not loaded
		}
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		code := blockCommentRE.ReplaceAllString(string(src), "") // examples in doc comments
		for _, m := range importRE.FindAllStringSubmatch(code, -1) {
			spec := m[1] + m[2]
			if !strings.HasPrefix(spec, "./") && !strings.HasPrefix(spec, "../") {
				t.Errorf("%s imports %q: only relative imports work without a build step", p, spec)
				continue
			}
			target := path.Join(path.Dir(p), spec)
			if _, err := fs.Stat(fsys, target); err != nil {
				t.Errorf("%s imports %q: %v", p, spec, err)
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Errorf("only %d imports found: is the pattern broken?", n)
	}
	for _, ref := range []string{"js/app.js", "css/app.css"} {
		if _, err := fs.Stat(fsys, ref); err != nil {
			t.Errorf("index.html references %s: %v", ref, err)
		}
	}
}
