package web

import "flag"

// update rewrites the golden files in testdata/ instead of comparing with them.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/")
