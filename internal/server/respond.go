package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
)

// The Webhook API's fixed bodies, exactly as documented.
var (
	bodyUnauthorized   = []byte(`{"error":"Unauthorized"}`)
	bodyStageNotFound  = []byte(`{"error":"Stage not found"}`)
	bodyRateLimited    = []byte(`{"error":"Rate limit exceeded"}`)
	bodyInternal       = []byte(`{"error":"Internal error"}`)
	bodyDuplicate      = []byte(`{"received":true,"duplicate":true}`)
	bodyTooLarge       = []byte(`{"error":"Payload too large"}`)
	bodyMethodNotAllow = []byte(`{"error":"Method not allowed"}`)
)

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
}

func validationBody(details map[string][]string) []byte {
	b, err := json.Marshal(struct {
		Error   string              `json:"error"`
		Details map[string][]string `json:"details"`
	}{"Validation failed", details})
	if err != nil { // a map of strings always marshals
		return bodyInternal
	}
	return b
}

// logFailure records a 4xx or 5xx the same way everywhere. It never logs
// bodies or the Authorization header.
func (s *Server) logFailure(r *http.Request, status int, outcome string, err error) {
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", status, "outcome", outcome}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	s.log.Log(r.Context(), level, "request failed", attrs...)
}
