package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Roles of a signed-in user.
const (
	roleReader = "reader"
	roleAdmin  = "admin"
)

const sessionCookie = "cccp_session"

// identity is who made a request.
type identity struct {
	Role   string // "", roleReader or roleAdmin
	Bearer bool   // authenticated by an Authorization header: no CSRF check needed
	CSRF   string // the session's CSRF token (cookie sessions only)
}

func (id identity) Admin() bool    { return id.Role == roleAdmin }
func (id identity) SignedIn() bool { return id.Role != "" }

// Actor is the name recorded as the cause's actor.
func (id identity) Actor() string {
	if id.Bearer {
		return "admin (API token)"
	}
	return "admin"
}

type identityKey struct{}

func identityOf(ctx context.Context) identity {
	id, _ := ctx.Value(identityKey{}).(identity)
	return id
}

// auth checks tokens and signs sessions. Tokens are kept only as SHA-256
// sums, compared in constant time.
type auth struct {
	key      []byte
	admin    [][32]byte
	read     [][32]byte
	ttl      time.Duration
	insecure bool
	now      func() time.Time
	// epoch is the current session generation; a session signed under
	// another is refused (sessions.go).
	epoch atomic.Uint64
}

func newAuth(cfg Config) *auth {
	a := &auth{key: cfg.SessionKey, ttl: cfg.SessionTTL, insecure: cfg.InsecureCookie, now: cfg.Now}
	for _, t := range cfg.AdminTokens {
		if t != "" {
			a.admin = append(a.admin, sha256.Sum256([]byte(t)))
		}
	}
	for _, t := range cfg.ReadTokens {
		if t != "" {
			a.read = append(a.read, sha256.Sum256([]byte(t)))
		}
	}
	return a
}

func (a *auth) readProtected() bool { return len(a.read) > 0 }

// roleOf returns the role a token grants, or "".
func (a *auth) roleOf(token string) string {
	if token == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(token))
	role := ""
	// Compare against every token so the time does not tell which matched.
	for _, t := range a.read {
		if subtle.ConstantTimeCompare(sum[:], t[:]) == 1 && role == "" {
			role = roleReader
		}
	}
	for _, t := range a.admin {
		if subtle.ConstantTimeCompare(sum[:], t[:]) == 1 {
			role = roleAdmin
		}
	}
	return role
}

func (a *auth) sign(s string) string {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(s))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// newSession returns a cookie value: "role.epoch.expiry.nonce.signature".
func (a *auth) newSession(role string) (string, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	payload := role + "." + strconv.FormatUint(a.epoch.Load(), 10) + "." +
		strconv.FormatInt(a.now().Add(a.ttl).Unix(), 10) + "." + hex.EncodeToString(nonce)
	return payload + "." + a.sign(payload), nil
}

// session verifies a cookie value and returns its role.
func (a *auth) session(v string) (string, bool) {
	i := strings.LastIndexByte(v, '.')
	if i < 0 {
		return "", false
	}
	payload, sig := v[:i], v[i+1:]
	if !hmac.Equal([]byte(sig), []byte(a.sign(payload))) {
		return "", false
	}
	parts := strings.Split(payload, ".")
	if len(parts) != 4 || (parts[0] != roleAdmin && parts[0] != roleReader) {
		return "", false
	}
	if epoch, err := strconv.ParseUint(parts[1], 10, 64); err != nil || epoch != a.epoch.Load() {
		return "", false // signed before "sign out everywhere"
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || a.now().Unix() >= exp {
		return "", false
	}
	return parts[0], true
}

func (a *auth) csrfFor(session string) string { return a.sign("csrf." + session) }

// identify finds who made r: a bearer token first, then the session cookie.
func (a *auth) identify(r *http.Request) identity {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return identity{}
		}
		return identity{Role: a.roleOf(strings.TrimSpace(tok)), Bearer: true}
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return identity{}
	}
	role, ok := a.session(c.Value)
	if !ok {
		return identity{}
	}
	return identity{Role: role, CSRF: a.csrfFor(c.Value)}
}

func (a *auth) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     sessionCookie,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   !a.insecure,
		SameSite: http.SameSiteStrictMode,
	}
}

func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

// requireRead lets a request through when reading is open or the requester
// signed in; it records the identity for the handler either way.
func (s *Server) requireRead(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := s.auth.identify(r)
		if s.auth.readProtected() && !id.SignedIn() {
			if isAPI(r) {
				s.apiError(w, http.StatusUnauthorized, "sign in: send Authorization: Bearer <token>")
				return
			}
			http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

// requireAdmin lets a request through only for an admin; a request
// authenticated by its session cookie must also carry the session's CSRF
// token (form field "csrf" or header X-CSRF-Token).
func (s *Server) requireAdmin(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := s.auth.identify(r)
		if !id.Admin() {
			status, msg := http.StatusUnauthorized, "sign in with an admin token to do this"
			if id.SignedIn() {
				status, msg = http.StatusForbidden, "this needs an admin token"
			}
			if isAPI(r) {
				s.apiError(w, status, msg)
				return
			}
			s.errorPage(w, r, status, msg)
			return
		}
		if !id.Bearer {
			got := r.Header.Get("X-CSRF-Token")
			if got == "" && !isAPI(r) {
				got = r.PostFormValue("csrf")
			}
			if got == "" || !hmac.Equal([]byte(got), []byte(id.CSRF)) {
				if isAPI(r) {
					s.apiError(w, http.StatusForbidden, "missing or wrong CSRF token")
					return
				}
				s.errorPage(w, r, http.StatusForbidden, "The form expired or came from elsewhere (CSRF check failed). Reload the page and try again.")
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

func (s *Server) signInForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "signin", signInView{Next: safeNext(r.URL.Query().Get("next"))})
}

type signInView struct {
	Next  string
	Error string
}

func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	role := s.auth.roleOf(r.PostFormValue("token"))
	if role == "" {
		s.log.Info("sign-in refused", "remote", r.RemoteAddr)
		s.render(w, r, http.StatusUnauthorized, "signin", signInView{Next: next, Error: "That token is not valid."})
		return
	}
	v, err := s.auth.newSession(role)
	if err != nil {
		s.errorPage(w, r, http.StatusInternalServerError, "could not start a session")
		return
	}
	http.SetCookie(w, s.auth.cookie(v, int(s.auth.ttl/time.Second)))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) signOut(w http.ResponseWriter, r *http.Request) {
	id := s.auth.identify(r)
	if id.SignedIn() && !id.Bearer && !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(id.CSRF)) {
		s.errorPage(w, r, http.StatusForbidden, "CSRF check failed")
		return
	}
	http.SetCookie(w, s.auth.cookie("", -1))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// safeNext keeps a redirect target on this site: an absolute path whose
// second byte starts no host ("//", "/\\"), with no backslash (browsers read
// it as "/") and no control character anywhere (browsers drop tabs and
// newlines, so "/\t/evil.example" is "//evil.example" to them). Anything
// else is "/".
func safeNext(next string) string {
	if len(next) == 0 || next[0] != '/' || len(next) > 1 && (next[1] == '/' || next[1] == '\\') {
		return "/"
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}
