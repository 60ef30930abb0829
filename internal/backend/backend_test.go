package backend

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestOwnImage(t *testing.T) {
	own := []string{"reg.test:5000", "registry.centos.org"}
	for _, tc := range []struct {
		image, repo, tag string
		ok               bool
	}{
		{"demo/base:latest", "demo/base", "latest", true},
		{"demo/base", "demo/base", "latest", true},
		{"centos", "centos", "latest", true},
		{"registry.centos.org/centos/centos:7", "centos/centos", "7", true},
		{"reg.test:5000/demo/base:rc", "demo/base", "rc", true},
		{"quay.io/demo/base:latest", "", "", false},
		{"localhost:5000/demo/base", "", "", false},
		{"demo/base@sha256:" + strings.Repeat("b", 64), "", "", false},
		{"${BASE}", "", "", false},
	} {
		t.Run(tc.image, func(t *testing.T) {
			repo, tag, ok := OwnImage(tc.image, own)
			if ok != tc.ok || repo != tc.repo || tag != tc.tag {
				t.Errorf("ownImage(%q) = %q, %q, %v; want %q, %q, %v", tc.image, repo, tag, ok, tc.repo, tc.tag, tc.ok)
			}
		})
	}
}

func TestPinPrefersParentsThenAsksResolve(t *testing.T) {
	base := ParentPin{Key: "demo/base:latest", Repository: "demo/base", Tag: "latest", DigestRef: "reg.test:5000/demo/base@sha256:1"}
	var asked []string
	spec := &BuildSpec{
		Parents:       []ParentPin{base},
		OwnRegistries: []string{"reg.test:5000"},
		Resolve: func(_ context.Context, image string) (ParentPin, bool, error) {
			asked = append(asked, image)
			switch image {
			case "demo/tools:1":
				return ParentPin{Repository: "demo/tools", Tag: "1", DigestRef: "reg.test:5000/demo/tools@sha256:2"}, true, nil
			case "demo/broken":
				return ParentPin{}, false, errors.New("registry down")
			}
			return ParentPin{}, false, nil
		},
	}
	for _, tc := range []struct {
		image, want string
		ok          bool
		err         string
	}{
		{image: "demo/base", want: base.DigestRef, ok: true},
		{image: "reg.test:5000/demo/base:latest", want: base.DigestRef, ok: true},
		{image: "demo/tools:1", want: "reg.test:5000/demo/tools@sha256:2", ok: true},
		{image: "quay.io/other/image", ok: false},
		{image: "demo/broken", err: "registry down"},
	} {
		t.Run(tc.image, func(t *testing.T) {
			p, ok, err := spec.Pin(context.Background(), tc.image)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Pin(%q) error = %v, want %q", tc.image, err, tc.err)
				}
				return
			}
			if err != nil || ok != tc.ok || p.DigestRef != tc.want {
				t.Errorf("Pin(%q) = %q, %v, %v; want %q, %v", tc.image, p.DigestRef, ok, err, tc.want, tc.ok)
			}
		})
	}
	for _, a := range asked {
		if strings.Contains(a, "demo/base") {
			t.Errorf("Resolve was asked about %s, which Parents pins", a)
		}
	}
}
