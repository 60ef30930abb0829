package retention

import (
	"context"
	"fmt"
	"time"

	"github.com/cccp-project/cccp/internal/store"
)

// MailStore keeps the email outbox (internal/notify). A sent mail leaves
// the outbox at once; a mail given up for good stays, with the server's
// answer, until the policy lets it go.
type MailStore interface {
	PruneMail(ctx context.Context, p store.MailPrune) ([]string, error)
}

// mailPrune is the policy for given-up mail at now, the same as for a
// project's runs: a given-up mail goes when it is neither among the
// newest KeepLast given-up mails nor given up less than KeepFor ago.
// Mail that still waits for a retry always stays.
func (p Policy) mailPrune(now time.Time, dryRun bool) store.MailPrune {
	mp := store.MailPrune{KeepLast: p.KeepLast, DryRun: dryRun}
	if p.KeepFor > 0 {
		mp.Before = now.Add(-p.KeepFor)
	}
	return mp
}

// pruneMail removes (dry: lists) the given-up mail the policy lets go.
func (p *Pruner) pruneMail(ctx context.Context, dryRun bool) ([]string, error) {
	if p.cfg.Mail == nil || !p.cfg.Policy.Enabled() {
		return nil, nil
	}
	ids, err := p.cfg.Mail.PruneMail(ctx, p.cfg.Policy.mailPrune(p.cfg.Now(), dryRun))
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	return ids, nil
}
