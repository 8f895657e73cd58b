package api

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// Browsers cannot send a bearer header when they load a page: the status
// page's login form (POST /ui/login) checks the token and keeps it in a
// cookie that the TCP listeners accept like the header. A request
// authorised by the cookie that changes anything must also carry
// uiHeader, which a cross-site form cannot send.
const (
	tokenCookie = "baton_token"
	uiHeader    = "X-Baton-UI"
)

// authorized reports whether r carries the API token.
func (s *Server) authorized(r *http.Request) bool {
	want := []byte("Bearer " + s.token)
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) == 1 {
		return true
	}
	c, err := r.Cookie(tokenCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(s.token)) != 1 {
		return false
	}
	return r.Method == http.MethodGet || r.Method == http.MethodHead || r.Header.Get(uiHeader) != ""
}

// open reports whether path is served without the token: the health
// check, the login form and the page's static files.
func open(path string) bool {
	return path == "/healthz" || path == "/ui/login" || strings.HasPrefix(path, "/ui/static/")
}

// login serves POST /ui/login: a right token sets the cookie.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	tok := strings.TrimSpace(r.PostFormValue("token"))
	if s.token == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.token)) != 1 {
		s.log.Warn("status page login refused", "remote", r.RemoteAddr)
		http.Redirect(w, r, "/ui/login?failed=1", http.StatusSeeOther)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: tok, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

// refuseUnauthorized answers a request without the token: a browser
// asking for a page goes to the login form, anything else gets 401.
func refuseUnauthorized(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && (r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/ui/")) &&
		strings.Contains(r.Header.Get("Accept"), "text/html") {
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="baton"`)
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or invalid bearer token"})
}

// readOnlyGuard refuses every request that would change something when
// the API is read-only (api.read_only).
func readOnlyGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.URL.Path != "/ui/login" {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "the API is read-only (api.read_only)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}
