package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cccp-project/cccp/bot/dispatch"
	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/store"
)

// errBadEvent marks an event that routing can never act on.
var errBadEvent = errors.New("bad event")

// permanent reports whether a routing error will not go away by trying
// again (besides the forge's 4xx, which bot/dispatch knows): the event
// cannot be acted on, or it names a project the index lacks.
func permanent(err error) bool {
	return errors.Is(err, errBadEvent) || errors.Is(err, pipeline.ErrUnknownProject)
}

// needsForge reports whether routing ev calls the forge's API (a push to
// an application repository does not).
func (b *Bot) needsForge(ev *event.Event) bool {
	return ev.Kind != event.KindPush || b.isIndexRepo(ev)
}

// process parses and routes one stored delivery (bot/dispatch's Process).
// A delivery that needs a forge which asked to wait is put off until then,
// so pushes are not held behind it.
func (b *Bot) process(ctx context.Context, d store.Delivery) (string, error) {
	f, ok := b.cfg.Forges[d.Forge]
	if !ok {
		return "", dispatch.Errorf("forge %s is not configured", d.Forge)
	}
	hdr := make(http.Header, len(d.Headers))
	for k, v := range d.Headers {
		hdr[http.CanonicalHeaderKey(k)] = []string{v}
	}
	ev, err := f.Webhook.Parse(hdr, d.Body)
	switch {
	case errors.Is(err, event.ErrIgnored):
		b.log.Debug("delivery ignored", "forge", d.Forge, "delivery", d.ID, "event", d.Event, "reason", err)
		return "ignored", nil
	case err != nil:
		return "", dispatch.Permanent(fmt.Errorf("parse: %w", err))
	}
	ev.Forge, ev.DeliveryID = d.Forge, d.ID
	if until := b.disp.Held(d.Forge); !until.IsZero() && b.needsForge(ev) {
		return "", &dispatch.WaitError{Until: until,
			Err: fmt.Errorf("%s asked to wait until %s", d.Forge, until.UTC().Format(time.RFC3339))}
	}
	if err := b.route(ctx, ev); err != nil {
		return "", err
	}
	return "routed", nil
}

// ReplayDelivery makes a delivery cccp gave up pending again and wakes the
// dispatcher (the web UI's, the API's and the command line's replay).
func (b *Bot) ReplayDelivery(ctx context.Context, forge, id string) error {
	return b.disp.Replay(ctx, forge, id)
}
