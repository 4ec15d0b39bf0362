package cuda

import "embed"

// ptxFS holds the committed PTX of every kernel module, ptx/<module>.ptx, generated from
// src/<module>.cu by gen.sh.
//
//go:embed ptx/*.ptx
var ptxFS embed.FS
