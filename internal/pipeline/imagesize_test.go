package pipeline

import (
	"context"
	"errors"
	"testing"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// sizedImages is fakeImages that also tells image sizes.
type sizedImages struct {
	*fakeImages
	size int64
	err  error
	refs []string
}

func (s *sizedImages) ImageSize(_ context.Context, ref string) (int64, error) {
	s.refs = append(s.refs, ref)
	return s.size, s.err
}

func TestDeliveryRecordsImageSize(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int64
	}{
		{"size known", nil, 12345},
		{"size unknown fails nothing", errors.New("manifest unknown"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			imgs := &sizedImages{fakeImages: h.images, size: 12345, err: tc.err}
			h.cfg.Images = imgs
			r := h.start(t)
			run := runAndWait(t, r, Request{Project: "demo/base:latest", Kind: types.KindBranch, Cause: store.Cause{Kind: "manual"}})
			if run.State != store.Passed || run.ImageSize != tc.want {
				t.Errorf("run %s, image size %d; want passed, %d", run.State, run.ImageSize, tc.want)
			}
			if len(imgs.refs) != 1 || imgs.refs[0] != "reg.test:5000/demo/base@"+digestA {
				t.Errorf("sized %v, want the delivered digest once", imgs.refs)
			}
		})
	}
}
