package server

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/ingest"
	"github.com/pruuv/pruuv/internal/store"
	"github.com/pruuv/pruuv/internal/token"
)

// MaxWebhookBody is the largest body the Webhook API reads; larger gets 413.
const MaxWebhookBody = 64 << 10

// handleWebhook is POST /api/webhooks/funnel/{stageId}. The order of checks is
// the contract's: stage, token, body, duplicate, limit, store.
func (s *Server) handleWebhook(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	outcome := s.webhook(w, r)
	s.metrics.events.WithLabelValues(outcome).Inc()
	s.metrics.latency.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
}

func (s *Server) webhook(w http.ResponseWriter, r *http.Request) string {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.logFailure(r, http.StatusMethodNotAllowed, outcomeBadMethod, nil)
		writeJSON(w, http.StatusMethodNotAllowed, bodyMethodNotAllow)
		return outcomeBadMethod
	}
	stageID := r.PathValue("stageId")
	auth, err := s.ingest.Authorize(r.Context(), stageID, token.Bearer(r.Header))
	switch {
	case errors.Is(err, ingest.ErrStageNotFound):
		s.logFailure(r, http.StatusNotFound, outcomeNotFound, nil)
		writeJSON(w, http.StatusNotFound, bodyStageNotFound)
		return outcomeNotFound
	case errors.Is(err, ingest.ErrUnauthorized):
		w.Header().Set("WWW-Authenticate", `Bearer realm="pruuv"`)
		s.logFailure(r, http.StatusUnauthorized, outcomeUnauthorized, nil)
		writeJSON(w, http.StatusUnauthorized, bodyUnauthorized)
		return outcomeUnauthorized
	case err != nil:
		return s.internalError(w, r, err)
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		s.logFailure(r, http.StatusRequestEntityTooLarge, outcomeTooLarge, nil)
		writeJSON(w, http.StatusRequestEntityTooLarge, bodyTooLarge)
		return outcomeTooLarge
	case err != nil:
		// The client stopped sending mid-body; nothing was stored.
		s.logFailure(r, http.StatusBadRequest, outcomeInvalid, err)
		writeJSON(w, http.StatusBadRequest, validationBody(map[string][]string{"body": {"could not be read in full"}}))
		return outcomeInvalid
	}
	now := s.ingest.Now()
	fields, err := event.Decode(body, now)
	var verr *event.ValidationError
	if errors.As(err, &verr) {
		// The error path may afford a read for exact headers.
		if used, reset, err := s.ingest.HourlyUse(r.Context(), stageID); err == nil {
			setRateHeaders(w, auth.HourlyLimit, used, reset, now)
		}
		s.logFailure(r, http.StatusBadRequest, outcomeInvalid, nil)
		writeJSON(w, http.StatusBadRequest, validationBody(verr.Details))
		return outcomeInvalid
	}

	res, err := s.ingest.Ingest(r.Context(), stageID, auth.HourlyLimit, event.SourceWebhook, fields)
	if err != nil {
		return s.internalError(w, r, err)
	}
	setRateHeaders(w, auth.HourlyLimit, res.Used, res.Reset, now)
	switch res.Outcome {
	case store.Duplicate:
		w.Header().Set("Pruuv-Event-Id", res.EventID)
		writeJSON(w, http.StatusOK, bodyDuplicate)
		return outcomeDuplicate
	case store.Limited:
		return s.tooMany(w, r, secondsUntil(res.Reset, now), outcomeRateLimited)
	}
	w.Header().Set("Pruuv-Event-Id", res.EventID)
	writeJSON(w, http.StatusOK, []byte(`{"received":true,"event_id":"`+res.EventID+`"}`))
	return outcomeAccepted
}

func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) string {
	s.logFailure(r, http.StatusInternalServerError, outcomeError, err)
	w.Header().Set("Retry-After", "1")
	writeJSON(w, http.StatusInternalServerError, bodyInternal)
	return outcomeError
}

// tooMany answers 429 with bodyRateLimited, asking the client to wait
// retryAfter seconds.
func (s *Server) tooMany(w http.ResponseWriter, r *http.Request, retryAfter int, outcome string) string {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	s.logFailure(r, http.StatusTooManyRequests, outcome, nil)
	writeJSON(w, http.StatusTooManyRequests, bodyRateLimited)
	return outcome
}

func secondsUntil(t, now time.Time) int { return ceilSeconds(t.Sub(now)) }

// ceilSeconds is d in whole seconds, rounded up, and at least 1.
func ceilSeconds(d time.Duration) int {
	return max(int((d+time.Second-1)/time.Second), 1)
}

// setRateHeaders describes the stage's hourly window in the IETF RateLimit
// fields and GitHub's X-RateLimit-* ones; the bodies stay as documented.
func setRateHeaders(w http.ResponseWriter, limit, used int, reset, now time.Time) {
	remaining := max(limit-used, 0)
	secs := secondsUntil(reset, now)
	h := w.Header()
	l, rem, t := strconv.Itoa(limit), strconv.Itoa(remaining), strconv.Itoa(secs)
	h.Set("RateLimit-Policy", `"stage";q=`+l+`;w=3600`)
	h.Set("RateLimit", `"stage";r=`+rem+`;t=`+t)
	h.Set("X-RateLimit-Limit", l)
	h.Set("X-RateLimit-Remaining", rem)
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
}
