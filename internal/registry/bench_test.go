package registry

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// bigImage makes an image of size bytes of random (incompressible) data
// in the given number of uncompressed layers; uncompressed, so making a
// 500 MB image does not spend a minute in gzip.
func bigImage(b *testing.B, size int64, layers int) v1.Image {
	b.Helper()
	rng := rand.NewChaCha8([32]byte{byte(size), byte(size >> 8), byte(size >> 16), byte(size >> 24)})
	img := empty.Image
	for range layers {
		data := make([]byte, size/int64(layers))
		_, _ = rng.Read(data)
		var err error
		img, err = mutate.AppendLayers(img, static.NewLayer(data, types.OCIUncompressedLayer))
		if err != nil {
			b.Fatal(err)
		}
	}
	return img
}

// BenchmarkTag measures a retag (digest to new tag) in the embedded
// registry for a 10 MB and a 500 MB image of the same shape (5 layers).
// A retag copies the manifest only, so the two must cost the same.
func BenchmarkTag(b *testing.B) {
	sizes := []struct {
		name  string
		bytes int64
	}{
		{"10MB", 10 << 20},
		{"500MB", 500 << 20},
	}
	// Set-up happens once here: the sub-benchmark bodies run several
	// times while the framework picks b.N.
	e := startRegistry(b, "")
	c := clientFor(&recorder{}, e)
	srcs := map[string]string{}
	for _, s := range sizes {
		digest := push(b, e.Host()+"/bench/"+strings.ToLower(s.name)+":test", bigImage(b, s.bytes, 5), pushAuth(e))
		srcs[s.name] = e.Host() + "/bench/" + strings.ToLower(s.name) + "@" + digest
	}
	// The registry fsyncs each tag it writes; let the kernel finish
	// writing the pushed layers first, or the first sub-benchmark pays
	// for the set-up's disk writes.
	syscall.Sync()
	for _, s := range sizes {
		b.Run(s.name, func(b *testing.B) {
			dst := e.Host() + "/bench/" + strings.ToLower(s.name)
			b.ResetTimer()
			for i := range b.N {
				if err := c.Tag(b.Context(), srcs[s.name], fmt.Sprintf("%s:t%d", dst, i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
