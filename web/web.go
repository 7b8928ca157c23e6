// Package web is meterd's browser UI: the bundle built from web/src by
// web/build.sh (esbuild) is committed under web/dist and embedded here, so
// the Go binary serves the UI without Node. server/web.go mounts it at /.
package web

import (
	"embed"
	"io/fs"
)

//go:embed dist
var dist embed.FS

// Dist is the built UI: index.html and assets/.
var Dist = func() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err)
	}
	return sub
}()
