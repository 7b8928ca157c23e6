package server

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/web"
)

// uiFile is one embedded UI file, with its gzip form and ETag computed
// once at start-up.
type uiFile struct {
	body, gz    []byte
	etag, ctype string
}

// mountUI serves the embedded console: index.html at / and the bundle
// under /assets/. The UI routes with the URL's fragment (#/meters), so
// these are its only paths and every API route keeps winning.
func (s *Server) mountUI(e *echo.Echo) error {
	files := map[string]*uiFile{}
	err := fs.WalkDir(web.Dist, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(web.Dist, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		f := &uiFile{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: mime.TypeByExtension(path.Ext(p))}
		if strings.HasSuffix(p, ".js") || strings.HasSuffix(p, ".css") || strings.HasSuffix(p, ".html") {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			_, _ = zw.Write(b)
			_ = zw.Close()
			f.gz = buf.Bytes()
		}
		files[p] = f
		return nil
	})
	if err != nil {
		return fmt.Errorf("server: the embedded console: %w", err)
	}
	serve := func(name string) echo.HandlerFunc {
		return func(c echo.Context) error {
			name := name
			if name == "" {
				name = strings.TrimPrefix(c.Request().URL.Path, "/")
			}
			f := files[name]
			if f == nil {
				return fault.New(http.StatusNotFound, "not_found", "no such file: /"+name)
			}
			h := c.Response().Header()
			h.Set("ETag", f.etag)
			h.Set("Vary", "Accept-Encoding")
			h.Set("X-Content-Type-Options", "nosniff")
			// index.html names the bundle with a content hash, so only it
			// must be revalidated on every load.
			if name == "index.html" {
				h.Set("Cache-Control", "no-cache")
				h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'")
			} else {
				h.Set("Cache-Control", "public, max-age=31536000, immutable")
			}
			if f.ctype != "" {
				h.Set("Content-Type", f.ctype)
			}
			body := f.body
			if f.gz != nil && strings.Contains(c.Request().Header.Get("Accept-Encoding"), "gzip") {
				h.Set("Content-Encoding", "gzip")
				body = f.gz
			}
			http.ServeContent(c.Response(), c.Request(), "", time.Time{}, bytes.NewReader(body))
			return nil
		}
	}
	e.GET("/", serve("index.html"))
	e.GET("/index.html", serve("index.html"))
	e.GET("/assets/*", serve(""))
	return nil
}
