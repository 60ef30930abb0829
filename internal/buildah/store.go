package buildah

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// What is in the builder's storage, and its removal, for a storage that is
// cccp's own (Builder.Root): internal/backend/local prunes it.

// StoreImage is an image in the builder's storage: a named one, a base a
// build pulled, or an intermediate image of the layer cache (no names).
type StoreImage struct {
	ID    string // 64 hex digits, without "sha256:"
	Names []string
}

// StoreContainer is a container in the builder's storage: a working
// container of a build (buildah's own), or one of another tool.
type StoreContainer struct {
	ID      string
	Name    string
	ImageID string
	// Builder is true for a buildah working container.
	Builder bool
}

// StoreImages lists every image in the storage, intermediate ones too.
func (b *Builder) StoreImages(ctx context.Context) ([]StoreImage, error) {
	out, err := b.output(ctx, "images", "--all", "--no-trunc", "--json")
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var raw []struct {
		ID    string   `json:"id"`
		Names []string `json:"names"`
	}
	if err := json.Unmarshal(nullToEmpty(out), &raw); err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	imgs := make([]StoreImage, 0, len(raw))
	for _, r := range raw {
		imgs = append(imgs, StoreImage{ID: strings.TrimPrefix(r.ID, "sha256:"), Names: r.Names})
	}
	return imgs, nil
}

// DiffIDs returns the digests of an image's uncompressed layers, base
// first: an image whose DiffIDs are a prefix of another's is one it was
// built on (its base, or a step of its build the layer cache keeps).
func (b *Builder) DiffIDs(ctx context.Context, image string) ([]string, error) {
	out, err := b.output(ctx, "inspect", "--type", "image", image)
	if err != nil {
		return nil, fmt.Errorf("inspect image %s: %w", image, err)
	}
	var raw struct {
		OCIv1 struct {
			RootFS struct {
				DiffIDs []string `json:"diff_ids"`
			} `json:"rootfs"`
		}
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("inspect image %s: %w", image, err)
	}
	return raw.OCIv1.RootFS.DiffIDs, nil
}

// StoreContainers lists every container in the storage, buildah's working
// containers and others'.
func (b *Builder) StoreContainers(ctx context.Context) ([]StoreContainer, error) {
	out, err := b.output(ctx, "containers", "--all", "--json")
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var raw []struct {
		ID      string `json:"id"`
		Name    string `json:"containername"`
		ImageID string `json:"imageid"`
		Builder bool   `json:"builder"`
	}
	if err := json.Unmarshal(nullToEmpty(out), &raw); err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	ctrs := make([]StoreContainer, 0, len(raw))
	for _, r := range raw {
		ctrs = append(ctrs, StoreContainer(r))
	}
	return ctrs, nil
}

// RemoveContainer removes a container and unmounts its file system; one
// that is not there is not an error.
func (b *Builder) RemoveContainer(ctx context.Context, id string) error {
	out, err := exec.CommandContext(ctx, b.binary(), append(b.globalArgs(), "rm", id)...).CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("container not known")) || bytes.Contains(out, []byte("no container with")) {
			return nil
		}
		return fmt.Errorf("remove container %s: %w: %s", id, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// RemoveStoreImage removes img by its names (buildah refuses to remove an
// image of several names by its ID without force, and force would remove
// the containers using it too), or by its ID when it has none. An image a
// container uses stays (an error); one not there is not an error.
func (b *Builder) RemoveStoreImage(ctx context.Context, img StoreImage) error {
	refs := img.Names
	if len(refs) == 0 {
		refs = []string{img.ID}
	}
	if out, err := b.rmi(ctx, refs...); err != nil {
		return fmt.Errorf("remove image %.12s: %w: %s", img.ID, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (b *Builder) output(ctx context.Context, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, b.binary(), append(b.globalArgs(), args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// nullToEmpty: buildah prints "null" for an empty list.
func nullToEmpty(b []byte) []byte {
	if t := bytes.TrimSpace(b); len(t) == 0 || string(t) == "null" {
		return []byte("[]")
	}
	return b
}
