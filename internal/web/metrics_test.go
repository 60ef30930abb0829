package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRequireToken(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("cccp_up 1\n")) })
	tests := []struct {
		name, token, header string
		want                int
	}{
		{"open without a token", "", "", 200},
		{"right token", "m3trics", "Bearer m3trics", 200},
		{"no header", "m3trics", "", 401},
		{"wrong token", "m3trics", "Bearer m3tricz", 401},
		{"prefix of the token", "m3trics", "Bearer m3tric", 401},
		{"basic scheme", "m3trics", "Basic m3trics", 401},
		{"bare token", "m3trics", "m3trics", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/metrics", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			rec := httptest.NewRecorder()
			RequireToken(tt.token, metrics).ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("code %d, want %d", rec.Code, tt.want)
			}
			if tt.want == 401 && (rec.Header().Get("WWW-Authenticate") == "" || rec.Body.String() == "cccp_up 1\n") {
				t.Errorf("refusal %q without WWW-Authenticate or with the metrics", rec.Body)
			}
		})
	}
}
