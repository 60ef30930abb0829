package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"time"

	"github.com/wneessen/go-mail"
)

// TLS policies of SMTPConfig.TLS.
const (
	// TLSStartTLS requires STARTTLS: a server that does not offer it gets
	// no mail (the default).
	TLSStartTLS = "starttls"
	// TLSOpportunistic uses STARTTLS when the server offers it.
	TLSOpportunistic = "opportunistic"
	// TLSImplicit speaks TLS from the first byte (SMTPS, port 465).
	TLSImplicit = "tls"
	// TLSNone never encrypts (a relay on localhost).
	TLSNone = "none"
)

// SMTPConfig is where and how mail is sent.
type SMTPConfig struct {
	Host string
	// Port defaults to 587 (465 with TLSImplicit, 25 with TLSNone).
	Port int
	// From is the envelope and header sender.
	From string
	// TLS is TLSStartTLS (default), TLSOpportunistic, TLSImplicit or TLSNone.
	TLS string
	// Username and Password authenticate when Username is set; Auth names
	// the mechanism: auto (the strongest the server offers; default),
	// plain, login, cram-md5, scram-sha-256.
	Username, Password string
	Auth               string
	// Timeout bounds dialing and each command (default 30s).
	Timeout time.Duration
	// TLSConfig verifies the server (default: the system's roots and Host).
	TLSConfig *tls.Config
}

var authTypes = map[string]mail.SMTPAuthType{
	"auto":          mail.SMTPAuthAutoDiscover,
	"plain":         mail.SMTPAuthPlain,
	"login":         mail.SMTPAuthLogin,
	"cram-md5":      mail.SMTPAuthCramMD5,
	"scram-sha-256": mail.SMTPAuthSCRAMSHA256,
}

// Validate says what is wrong with c, naming the keys of the notify.smtp
// configuration block.
func (c SMTPConfig) Validate() error {
	var errs []error
	if c.Host == "" {
		errs = append(errs, errors.New("host is required"))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d is out of range", c.Port))
	}
	if c.From == "" {
		errs = append(errs, errors.New("from is required"))
	} else if err := mail.NewMsg().From(c.From); err != nil {
		errs = append(errs, fmt.Errorf("from %q: %w", c.From, err))
	}
	switch c.TLS {
	case "", TLSStartTLS, TLSOpportunistic, TLSImplicit, TLSNone:
	default:
		errs = append(errs, fmt.Errorf("tls must be %s, %s, %s or %s, not %q", TLSStartTLS, TLSOpportunistic, TLSImplicit, TLSNone, c.TLS))
	}
	if _, ok := authTypes[c.Auth]; c.Auth != "" && !ok {
		errs = append(errs, fmt.Errorf("auth must be auto, plain, login, cram-md5 or scram-sha-256, not %q", c.Auth))
	}
	if c.Username == "" && c.Password != "" {
		errs = append(errs, errors.New("a password needs a username"))
	}
	if c.Username != "" && c.TLS == TLSNone && c.Auth != "cram-md5" && c.Auth != "scram-sha-256" {
		// The password would cross the network in the clear.
		errs = append(errs, errors.New("username with tls none sends the password in the clear; use starttls or tls"))
	}
	return errors.Join(errs...)
}

// SMTP sends mail with github.com/wneessen/go-mail, one connection per
// message (mail is rare; a kept connection would need keeping alive).
type SMTP struct{ cfg SMTPConfig }

// NewSMTP checks cfg and returns a Sender.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Auth == "" {
		cfg.Auth = "auto"
	}
	return &SMTP{cfg: cfg}, nil
}

func (s *SMTP) client() (*mail.Client, error) {
	c := s.cfg
	opts := []mail.Option{mail.WithTimeout(c.Timeout)}
	port := c.Port
	switch c.TLS {
	case TLSStartTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case TLSOpportunistic:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	case TLSImplicit:
		opts = append(opts, mail.WithSSL())
		if port == 0 {
			port = 465
		}
	case TLSNone:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
		if port == 0 {
			port = 25
		}
	}
	if port == 0 {
		port = 587
	}
	opts = append(opts, mail.WithPort(port))
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSConfig != nil {
		tc = c.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = c.Host
	}
	opts = append(opts, mail.WithTLSConfig(tc))
	if c.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(authTypes[c.Auth]), mail.WithUsername(c.Username), mail.WithPassword(c.Password))
	}
	return mail.NewClient(c.Host, opts...)
}

// Send delivers m. A 5xx answer to the message (sender, a recipient or the
// data) is a *PermanentError; anything else (dialing, TLS, a 4xx answer,
// authentication) is worth a retry: a server that is down or misconfigured
// gets fixed, a refused address does not.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	if err := msg.From(s.cfg.From); err != nil {
		return &PermanentError{fmt.Errorf("from: %w", err)}
	}
	if err := msg.To(m.To...); err != nil {
		return &PermanentError{fmt.Errorf("to: %w", err)}
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(messageID(m, s.cfg.From))
	if !m.Date.IsZero() {
		msg.SetDateWithValue(m.Date)
	} else {
		msg.SetDate()
	}
	msg.SetGenHeader(mail.HeaderXMailer, "cccp")
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(mail.TypeTextPlain, m.Text)
	c, err := s.client()
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		err = fmt.Errorf("smtp %s: %w", s.cfg.Host, err)
		if permanent(err) {
			return &PermanentError{err}
		}
		return err
	}
	return nil
}

// permanent reports a 5xx answer to MAIL, RCPT or DATA.
func permanent(err error) bool {
	var se *mail.SendError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Reason {
	case mail.ErrSMTPMailFrom, mail.ErrSMTPRcptTo, mail.ErrSMTPData, mail.ErrSMTPDataClose:
	default:
		return false
	}
	if code := se.ErrorCode(); code >= 500 && code < 600 {
		return true
	}
	var te *textproto.Error
	return errors.As(err, &te) && te.Code >= 500 && te.Code < 600
}

// messageID is stable per outbox mail: a resend after a crash carries the
// same Message-ID, so mail clients show it once.
func messageID(m Message, from string) string {
	domain := "cccp.invalid"
	if _, d, ok := strings.Cut(from, "@"); ok {
		domain = strings.Trim(d, "<> ")
	}
	return fmt.Sprintf("cccp.mail.%s.%d@%s", m.ID, m.Date.Unix(), domain)
}
