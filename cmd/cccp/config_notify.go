package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cccp-project/cccp/internal/notify"
)

// notifyConfig is `notify`: email about finished builds (internal/notify).
// Mail is on when notify.smtp.host is set.
type notifyConfig struct {
	Email struct {
		// OnSuccess mails passed builds too (default true); an index
		// entry's notify-on-success overrides it. Failures are always
		// mailed.
		OnSuccess *bool `yaml:"on_success"`
		// LogLines is how many explaining log lines a mail quotes
		// (default 20).
		LogLines int `yaml:"log_lines"`
	} `yaml:"email"`
	SMTP smtpConfig `yaml:"smtp"`
}

// smtpConfig is `notify.smtp`. The password comes from password_file or
// $CCCP_SMTP_PASSWORD (which wins); it is masked in logs and never stored.
type smtpConfig struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	From string `yaml:"from"`
	// TLS: starttls (default, required), opportunistic, tls (SMTPS) or none.
	TLS      string `yaml:"tls"`
	Auth     string `yaml:"auth"`
	Username string `yaml:"username"`
	// Password is read from PasswordFile or the environment; a password
	// written in the configuration file is refused.
	Password     string `yaml:"-"`
	PasswordFile string `yaml:"password_file"`
	// CAFile, when set, is the PEM bundle that verifies the server instead
	// of the system's roots (an internal relay).
	CAFile  string        `yaml:"ca_file"`
	Timeout time.Duration `yaml:"timeout"`
}

func (n *notifyConfig) enabled() bool { return n.SMTP.Host != "" }

func (n *notifyConfig) applyEnv(getenv func(string) string) {
	if v := getenv("CCCP_SMTP_PASSWORD"); v != "" {
		n.SMTP.Password = v
	}
}

// load reads the password file (once the environment is applied), so the
// password is known before serve builds its masker.
func (n *notifyConfig) load() error {
	s := &n.SMTP
	if s.Password != "" || s.PasswordFile == "" {
		return nil
	}
	b, err := os.ReadFile(s.PasswordFile)
	if err != nil {
		return fmt.Errorf("notify.smtp.password_file: %w", err)
	}
	s.Password = strings.TrimRight(string(b), "\r\n")
	return nil
}

func (n *notifyConfig) defaults() {
	if n.Email.OnSuccess == nil {
		on := true
		n.Email.OnSuccess = &on
	}
	if n.Email.LogLines <= 0 {
		n.Email.LogLines = 20
	}
}

func (n *notifyConfig) validate() error {
	if !n.enabled() {
		if n.SMTP.From != "" || n.SMTP.Username != "" {
			return errors.New("notify.smtp: host is required when smtp is configured")
		}
		return nil
	}
	if err := n.load(); err != nil {
		return err
	}
	if err := n.smtp().Validate(); err != nil {
		return fmt.Errorf("notify.smtp: %w", err)
	}
	return nil
}

func (n *notifyConfig) smtp() notify.SMTPConfig {
	s := n.SMTP
	return notify.SMTPConfig{Host: s.Host, Port: s.Port, From: s.From, TLS: s.TLS, Auth: s.Auth,
		Username: s.Username, Password: s.Password, Timeout: s.Timeout}
}

// sender builds the SMTP sender, reading ca_file.
func (n *notifyConfig) sender() (*notify.SMTP, error) {
	c := n.smtp()
	if n.SMTP.CAFile != "" {
		pem, err := os.ReadFile(n.SMTP.CAFile)
		if err != nil {
			return nil, fmt.Errorf("notify.smtp.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("notify.smtp.ca_file %s: no PEM certificate in it", n.SMTP.CAFile)
		}
		c.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return notify.NewSMTP(c)
}
