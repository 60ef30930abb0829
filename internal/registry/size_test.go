package registry

import "testing"

func TestImageSize(t *testing.T) {
	e := startRegistry(t, "")
	img := randomImage(t, 3000, 3)
	d := push(t, e.Host()+"/size/app:v1", img, pushAuth(e))
	var want int64
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		n, err := l.Size()
		if err != nil {
			t.Fatal(err)
		}
		want += n
	}
	c := NewClient(ClientConfig{AuthFiles: []string{}})
	for _, ref := range []string{e.Host() + "/size/app:v1", e.Host() + "/size/app@" + d} {
		got, err := c.ImageSize(t.Context(), ref)
		if err != nil || got != want {
			t.Errorf("ImageSize(%s) = %d, %v; want %d", ref, got, err, want)
		}
	}
	if _, err := c.ImageSize(t.Context(), e.Host()+"/size/app:nope"); err == nil {
		t.Error("size of a missing tag: no error")
	}
}
