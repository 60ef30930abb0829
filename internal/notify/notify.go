// Package notify emails people about finished runs: one mail per finished
// build of a tracked branch to the entry's notify-email, with the status,
// the cause, the failed stage and the lines that explain the failure, and a
// link to the run.
//
// Mail goes through a durable outbox (internal/store): the store marks a
// run finished in the transaction that finishes it, the Notifier renders
// the mail and queues it while removing the mark (one transaction), and a
// sender loop delivers queued mail over SMTP, retrying transient failures
// with back-off and stopping on a permanent refusal with the reason kept.
// Nothing here runs inside a pipeline run: a slow or absent mail server
// never holds a build.
package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// Store is what the Notifier needs of internal/store.
type Store interface {
	FinishedRuns(ctx context.Context, limit int) ([]*store.Run, error)
	QueueMail(ctx context.Context, mails []store.Mail, ack []string) error
	DueMail(ctx context.Context, now time.Time, limit int) ([]store.Mail, error)
	MailSent(ctx context.Context, id string) error
	RetryMail(ctx context.Context, id string, next time.Time, errMsg string) error
	FailMail(ctx context.Context, id, reason string) error
}

// Message is one email to deliver.
type Message struct {
	// ID identifies the outbox record; the Message-ID header is made from
	// it, so a mail sent twice after a crash reads as one in a mail client.
	ID      string
	To      []string
	Subject string
	Text    string
	Date    time.Time
}

// Sender delivers one message. An error wrapping a *PermanentError is not
// retried; any other error is.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// PermanentError is a refusal that a retry cannot change (an SMTP 5xx
// answer to MAIL, RCPT or DATA).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Audience is who hears about a project's runs.
type Audience struct {
	To []string
	// OnSuccess, when set, overrides Config.OnSuccess for this project
	// (the index entry's notify-on-success).
	OnSuccess *bool
}

// Config configures a Notifier. Store, Sender and Audience are required.
type Config struct {
	Store  Store
	Sender Sender
	// Audience returns who hears about project's runs; an empty To
	// (an entry removed from the index) sends nothing.
	Audience func(project string) Audience
	// BaseURL is where people reach cccp; the mail links BaseURL/runs/ID.
	BaseURL string
	// OnSuccess mails passed runs too (failures are always mailed).
	OnSuccess bool
	// LogTail returns the last n lines of a stage's log (runlog.Logs.Tail);
	// nil: the mail quotes the checks and the stage's error only.
	LogTail func(runID, stage string, n int) ([]string, error)
	// LogLines is how many explaining log lines a mail quotes (default 20).
	LogLines int
	// Masker masks secrets in quoted lines (default: masks userinfo only).
	Masker *redact.Masker
	// Poll is how often the outbox is looked at without a Wake (default 5s).
	Poll time.Duration
	// MinBackoff and MaxBackoff bound the wait before retrying a mail
	// after a transient failure: it doubles from MinBackoff (default 30s)
	// up to MaxBackoff (default 1h).
	MinBackoff, MaxBackoff time.Duration
	// MaxAttempts is how many transient failures a mail survives before it
	// is given up (default 30, about a day with the default back-off).
	MaxAttempts int
	Logger      *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Notifier turns finished runs into queued mail and delivers the outbox.
type Notifier struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{}
}

// New checks cfg and fills its defaults.
func New(cfg Config) (*Notifier, error) {
	if cfg.Store == nil || cfg.Sender == nil || cfg.Audience == nil {
		return nil, errors.New("notify: Store, Sender and Audience are required")
	}
	if cfg.LogLines <= 0 {
		cfg.LogLines = 20
	}
	if cfg.Masker == nil {
		cfg.Masker = redact.NewMasker()
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 5 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 30 * time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(time.Hour, cfg.MinBackoff)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 30
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	return &Notifier{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1)}, nil
}

// Wake makes Run look at the outbox now (a run finished, a mail was
// queued). It never blocks.
func (n *Notifier) Wake() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run queues the mail of finished runs and delivers the outbox until ctx
// ends.
func (n *Notifier) Run(ctx context.Context) error {
	t := time.NewTicker(n.cfg.Poll)
	defer t.Stop()
	for {
		n.Step(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-n.wake:
		}
	}
}

// Step does one round: queue, then send what is due. Errors are logged;
// the next round tries again.
func (n *Notifier) Step(ctx context.Context) {
	if err := n.queueFinished(ctx); err != nil && ctx.Err() == nil {
		n.log.Error("queue mail of finished runs", "err", err)
	}
	if err := n.sendDue(ctx); err != nil && ctx.Err() == nil {
		n.log.Error("send mail", "err", err)
	}
}

// batch bounds one round's reads.
const batch = 100

// queueFinished renders the mail of every finished run and queues it,
// acknowledging the runs in the same transaction.
func (n *Notifier) queueFinished(ctx context.Context) error {
	for {
		runs, err := n.cfg.Store.FinishedRuns(ctx, batch)
		if err != nil && len(runs) == 0 {
			return fmt.Errorf("finished runs: %w", err)
		}
		if err != nil {
			n.log.Warn("finished runs: some records unreadable", "err", err)
		}
		if len(runs) == 0 {
			return nil
		}
		var mails []store.Mail
		ack := make([]string, 0, len(runs))
		for _, r := range runs {
			ack = append(ack, r.ID)
			aud := n.cfg.Audience(r.Project)
			if !n.wants(r, aud) {
				continue
			}
			m, err := n.render(ctx, r)
			if err != nil {
				// A template that fails is cccp's bug; the run is
				// acknowledged so one bad run does not stop every mail.
				n.log.Error("render run mail", "run", r.ID, "err", err)
				continue
			}
			m.To = aud.To
			mails = append(mails, m)
		}
		if err := n.cfg.Store.QueueMail(ctx, mails, ack); err != nil {
			return fmt.Errorf("queue mail: %w", err)
		}
		for _, m := range mails {
			n.log.Info("mail queued", "run", m.RunID, "subject", m.Subject, "recipients", len(m.To))
		}
		if len(runs) < batch {
			return nil
		}
	}
}

// wants says whether run r gets a mail: builds of tracked branches that
// passed (unless successes are switched off) or failed. Pull-request and
// trial runs are reported on their pull request; cancelled runs were
// superseded or stopped by a person.
func (n *Notifier) wants(r *store.Run, aud Audience) bool {
	if len(aud.To) == 0 || r.Kind != types.KindBranch {
		return false
	}
	switch r.State {
	case store.Failed:
		return true
	case store.Passed:
		if aud.OnSuccess != nil {
			return *aud.OnSuccess
		}
		return n.cfg.OnSuccess
	}
	return false
}

// Notify queues a mail that is not about one run (a rescan that found
// changes) into the same outbox; Run delivers it. It returns once the mail
// is stored. Subject and text are masked like a run's quoted lines: they
// carry findings, which come from the image and its repositories.
func (n *Notifier) Notify(ctx context.Context, to []string, subject, text string) error {
	if len(to) == 0 {
		return errors.New("notify: no recipient")
	}
	m := store.Mail{To: to, Subject: headerText(n.cfg.Masker.String(subject)), Text: bodyText(n.cfg.Masker.String(text))}
	if err := n.cfg.Store.QueueMail(ctx, []store.Mail{m}, nil); err != nil {
		return fmt.Errorf("notify %q: %w", m.Subject, err)
	}
	n.Wake()
	return nil
}

// sendDue delivers every due mail once.
func (n *Notifier) sendDue(ctx context.Context) error {
	due, err := n.cfg.Store.DueMail(ctx, n.cfg.Now(), batch)
	if err != nil && len(due) == 0 {
		return err
	}
	for _, m := range due {
		if ctx.Err() != nil {
			return nil
		}
		n.send(ctx, m)
	}
	return nil
}

func (n *Notifier) send(ctx context.Context, m store.Mail) {
	err := n.cfg.Sender.Send(ctx, Message{ID: m.ID, To: m.To, Subject: m.Subject, Text: m.Text, Date: m.Created})
	if ctx.Err() != nil {
		return // stopping: the mail stays due
	}
	var perm *PermanentError
	switch {
	case err == nil:
		if err := n.cfg.Store.MailSent(ctx, m.ID); err != nil {
			n.log.Error("mail sent but not removed from the outbox", "mail", m.ID, "err", err)
			return
		}
		n.log.Info("mail sent", "mail", m.ID, "run", m.RunID, "recipients", len(m.To))
	case errors.As(err, &perm):
		n.giveUp(ctx, m, "refused: "+err.Error())
	case m.Attempts+1 >= n.cfg.MaxAttempts:
		n.giveUp(ctx, m, fmt.Sprintf("gave up after %d attempts: %v", m.Attempts+1, err))
	default:
		next := n.cfg.Now().Add(n.backoff(m.Attempts))
		if err := n.cfg.Store.RetryMail(ctx, m.ID, next, err.Error()); err != nil {
			n.log.Error("record mail retry", "mail", m.ID, "err", err)
			return
		}
		n.log.Warn("mail not sent, will retry", "mail", m.ID, "attempt", m.Attempts+1, "next", next, "err", err)
	}
}

func (n *Notifier) giveUp(ctx context.Context, m store.Mail, reason string) {
	if err := n.cfg.Store.FailMail(ctx, m.ID, reason); err != nil {
		n.log.Error("record mail given up", "mail", m.ID, "err", err)
		return
	}
	n.log.Error("mail given up", "mail", m.ID, "run", m.RunID, "reason", reason)
}

// backoff is the wait after the attempts-th failure (0-based).
func (n *Notifier) backoff(attempts int) time.Duration {
	d := n.cfg.MinBackoff
	for i := 0; i < attempts && d < n.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, n.cfg.MaxBackoff)
}
