package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/ingest"
	"github.com/pruuv/pruuv/internal/ratelimit"
	"github.com/pruuv/pruuv/internal/store"
)

// TrackPath is the Pixel's browser endpoint: it takes a public site key in
// the body, never a webhook token.
const TrackPath = "/api/pixel/v1/track"

// PreflightMaxAge is how long browsers may reuse a preflight answer; Chromium
// caps it at two hours anyway.
const PreflightMaxAge = 2 * time.Hour

// MaxIPKeys bounds how many client addresses the per-IP cap tracks at once.
const MaxIPKeys = 100_000

var bodyForbidden = []byte(`{"error":"Forbidden"}`)

// Outcomes of the Pixel's endpoint beyond the webhook's.
const (
	outcomeForbidden          = "forbidden"
	outcomeIPLimited          = "ip_limited"
	outcomePreflight          = "preflight"
	outcomePreflightForbidden = "preflight_forbidden"
)

// BrowserOptions configures the Pixel's browser endpoint.
type BrowserOptions struct {
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// IPRate is how many events a minute one client address may send, and
	// IPBurst how many at once; IPRate 0 turns the cap off. The cap is kept in
	// memory, so each process allows it on its own.
	IPRate, IPBurst int
}

// Option changes how New builds a Server.
type Option func(*Server)

// WithBrowser sets the Pixel endpoint's options; without it New uses the
// defaults of config.Default.
func WithBrowser(o BrowserOptions) Option {
	return func(s *Server) { s.setBrowser(o) }
}

type browser struct {
	trusted []netip.Prefix
	perIP   *ratelimit.Keyed[netip.Addr] // nil: no cap
	events  *prometheus.CounterVec
}

func (s *Server) setBrowser(o BrowserOptions) {
	s.browser.trusted = o.TrustedProxies
	s.browser.perIP = nil
	if o.IPRate > 0 {
		s.browser.perIP = ratelimit.New[netip.Addr](o.IPRate, max(o.IPBurst, 1), MaxIPKeys)
	}
}

func (s *Server) initBrowser(reg prometheus.Registerer) {
	d := config.Default()
	s.setBrowser(BrowserOptions{IPRate: d.PixelIPRate, IPBurst: d.PixelIPBurst})
	s.browser.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pruuv_pixel_events_total",
		Help: "Requests to the Pixel's browser endpoint by outcome.",
	}, []string{"outcome"})
	for _, o := range []string{outcomeAccepted, outcomeDuplicate, outcomeInvalid, outcomeUnauthorized, outcomeForbidden,
		outcomeNotFound, outcomeRateLimited, outcomeIPLimited, outcomeTooLarge, outcomeBadMethod, outcomeError,
		outcomePreflight, outcomePreflightForbidden} {
		s.browser.events.WithLabelValues(o)
	}
	reg.MustRegister(s.browser.events)
}

// handleTrack is TrackPath: CORS preflights and events from the Pixel.
func (s *Server) handleTrack(w http.ResponseWriter, r *http.Request) {
	s.browser.events.WithLabelValues(s.track(w, r)).Inc()
}

// track answers in the contract's order: size, site key, origin, stage,
// validation (the webhook's, but for a click_timestamp out of range), the
// per-IP cap, duplicate, the stage's Pixel quota, store.
func (s *Server) track(w http.ResponseWriter, r *http.Request) string {
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	switch r.Method {
	case http.MethodOptions:
		return s.preflight(w, r, origin)
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "POST, OPTIONS")
		s.corsIfListed(w, r, origin)
		s.logFailure(r, http.StatusMethodNotAllowed, outcomeBadMethod, nil)
		writeJSON(w, http.StatusMethodNotAllowed, bodyMethodNotAllow)
		return outcomeBadMethod
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		s.corsIfListed(w, r, origin)
		s.logFailure(r, http.StatusRequestEntityTooLarge, outcomeTooLarge, nil)
		writeJSON(w, http.StatusRequestEntityTooLarge, bodyTooLarge)
		return outcomeTooLarge
	case err != nil:
		s.logFailure(r, http.StatusBadRequest, outcomeInvalid, err)
		writeJSON(w, http.StatusBadRequest, validationBody(map[string][]string{"body": {"could not be read in full"}}))
		return outcomeInvalid
	}

	siteKey, stageID := envelope(body)
	limit, err := s.ingest.AuthorizePixel(r.Context(), siteKey, origin, stageID)
	switch {
	case errors.Is(err, ingest.ErrUnauthorized):
		s.corsIfListed(w, r, origin)
		s.logFailure(r, http.StatusUnauthorized, outcomeUnauthorized, nil)
		writeJSON(w, http.StatusUnauthorized, bodyUnauthorized)
		return outcomeUnauthorized
	case errors.Is(err, ingest.ErrForbidden):
		s.logFailure(r, http.StatusForbidden, outcomeForbidden, nil)
		writeJSON(w, http.StatusForbidden, bodyForbidden)
		return outcomeForbidden
	case errors.Is(err, ingest.ErrStageNotFound):
		allowOrigin(w, origin)
		s.logFailure(r, http.StatusNotFound, outcomeNotFound, nil)
		writeJSON(w, http.StatusNotFound, bodyStageNotFound)
		return outcomeNotFound
	case err != nil:
		return s.internalError(w, r, err)
	}
	// From here on the origin is one of the site's: the page may read answers.
	allowOrigin(w, origin)

	now := s.ingest.Now()
	// The browser's decoder drops a click_timestamp that the visitor's clock
	// put out of range, rather than refusing the event for it.
	fields, dropped, err := event.DecodeBrowser(body, now)
	var verr *event.ValidationError
	if errors.As(err, &verr) {
		s.logFailure(r, http.StatusBadRequest, outcomeInvalid, nil)
		writeJSON(w, http.StatusBadRequest, validationBody(verr.Details))
		return outcomeInvalid
	}
	if dropped {
		s.log.DebugContext(r.Context(), "click_timestamp dropped: out of range", "stage_id", stageID)
	}

	ip := clientIP(r, s.browser.trusted)
	if s.browser.perIP != nil {
		if ok, wait := s.browser.perIP.Allow(ipKey(ip), time.Now()); !ok {
			w.Header().Set("Access-Control-Expose-Headers", "Retry-After")
			return s.tooMany(w, r, ceilSeconds(wait), outcomeIPLimited)
		}
	}
	observe(&fields, r, ip)

	res, err := s.ingest.Ingest(r.Context(), stageID, limit, event.SourcePixel, fields)
	if err != nil {
		return s.internalError(w, r, err)
	}
	switch res.Outcome {
	case store.Duplicate:
		writeJSON(w, http.StatusOK, bodyDuplicate)
		return outcomeDuplicate
	case store.Limited:
		w.Header().Set("Access-Control-Expose-Headers", "Retry-After")
		return s.tooMany(w, r, secondsUntil(res.Reset, now), outcomeRateLimited)
	}
	writeJSON(w, http.StatusOK, []byte(`{"received":true,"event_id":"`+res.EventID+`"}`))
	return outcomeAccepted
}

// preflight answers a CORS preflight. It carries no body, hence no site key,
// so an origin is allowed when any site lists it; the request that follows is
// checked against its own site.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request, origin string) string {
	listed, err := s.ingest.OriginListed(r.Context(), origin)
	if err != nil {
		return s.internalError(w, r, err)
	}
	if !listed {
		s.logFailure(r, http.StatusForbidden, outcomePreflightForbidden, nil)
		writeJSON(w, http.StatusForbidden, bodyForbidden)
		return outcomePreflightForbidden
	}
	h := w.Header()
	allowOrigin(w, origin)
	h.Set("Access-Control-Allow-Methods", http.MethodPost)
	h.Set("Access-Control-Allow-Headers", "Content-Type")
	h.Set("Access-Control-Max-Age", strconv.Itoa(int(PreflightMaxAge/time.Second)))
	w.WriteHeader(http.StatusNoContent)
	return outcomePreflight
}

func allowOrigin(w http.ResponseWriter, origin string) {
	w.Header().Set("Access-Control-Allow-Origin", origin)
}

// corsIfListed lets the page read an answer given before its site is known
// when some site lists its origin.
func (s *Server) corsIfListed(w http.ResponseWriter, r *http.Request, origin string) {
	if listed, err := s.ingest.OriginListed(r.Context(), origin); err == nil && listed {
		allowOrigin(w, origin)
	}
}

// envelope returns the body's site_key and stage_id: string members of the
// top-level object, names matched exactly. One given twice or as anything
// but a string counts as absent. The rest of the body is left to
// event.Decode, to which both names are unknown fields it ignores; a body
// broken after them still reaches it and gets its 400.
func envelope(body []byte) (siteKey, stageID string) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", ""
	}
	var seenKey, seenStage bool
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			break
		}
		name, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			break
		}
		var dst *string
		var seen *bool
		switch name {
		case "site_key":
			dst, seen = &siteKey, &seenKey
		case "stage_id":
			dst, seen = &stageID, &seenStage
		default:
			continue
		}
		if *seen || json.Unmarshal(raw, dst) != nil {
			*dst = ""
		}
		*seen = true
	}
	return siteKey, stageID
}

// observe records what the server sees of the browser. The address is always
// the observed one, never the body's: a page cannot know its visitor's
// address and could forge one. The user agent and the page's URL come from
// the body when it gives them, else from the User-Agent and Referer headers.
func observe(f *event.Fields, r *http.Request, ip netip.Addr) {
	f.ClientIPAddress = ""
	if ip.IsValid() {
		f.ClientIPAddress = ip.String()
	}
	if f.ClientUserAgent == "" {
		f.ClientUserAgent = event.UserAgent(r.Header.Get("User-Agent"))
	}
	if f.EventSourceURL == "" {
		f.EventSourceURL = event.SourceURL(r.Header.Get("Referer"))
	}
}

// clientIP is the address of the browser behind r: the TCP peer, unless the
// peer is a trusted proxy; then X-Forwarded-For is read from the right,
// skipping trusted proxies, and the first address that is not one is the
// client. Anything left of it was written by the client and is not believed.
// A malformed entry ends the walk at the last trusted hop.
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	ip := peer.Addr().Unmap()
	if !isTrusted(ip, trusted) {
		return ip
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		if h == "" {
			continue
		}
		a, ok := parseHop(h)
		if !ok {
			return ip
		}
		ip = a
		if !isTrusted(ip, trusted) {
			return ip
		}
	}
	return ip
}

// parseHop reads one X-Forwarded-For entry: an address, perhaps with a port.
func parseHop(h string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(h); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(h); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ipKey is what the per-IP cap counts: an IPv4 address, or an IPv6 address's
// /64, since one host commonly holds a whole /64.
func ipKey(ip netip.Addr) netip.Addr {
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}
