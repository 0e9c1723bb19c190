// Package funnel is what the dashboard and the admin API do to clients,
// funnels and stages: the rules for names, limits and orders, and the
// lifecycle of stage webhook tokens (issue, rotate with an overlap, reveal).
package funnel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // client time zones must resolve on hosts without zoneinfo

	"github.com/pruuv/pruuv/internal/auth"
	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/secret"
	"github.com/pruuv/pruuv/internal/store"
	"github.com/pruuv/pruuv/internal/token"
)

// Limits the dashboard, the admin API and the CLI share.
const (
	MaxName        = 200
	MaxStages      = 50
	MaxHourlyLimit = 1_000_000
	MaxOverlap     = 7 * 24 * time.Hour
	DefaultOverlap = 24 * time.Hour
)

// Service changes clients, funnels and stages.
type Service struct {
	st   *store.Store
	key  secret.Key
	auth *auth.Service
}

// New returns a Service; admin actions are audited through a.
func New(st *store.Store, key secret.Key, a *auth.Service) *Service {
	return &Service{st: st, key: key, auth: a}
}

func invalid(field, format string, args ...any) error {
	return &auth.InvalidError{Field: field, Message: fmt.Sprintf(format, args...)}
}

func name(field, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > MaxName {
		return "", invalid(field, "must be 1 to %d bytes", MaxName)
	}
	return v, nil
}

// NewToken returns a fresh webhook token and the row that stores it.
func NewToken(key secret.Key) (string, store.StageToken) {
	tok := token.NewWebhook()
	id := token.NewID("tok")
	return tok, store.StageToken{ID: id, Hash: key.Hash(tok), Sealed: key.Seal(tok, "stage_tokens:"+id), Hint: token.Hint(tok)}
}

// CreateClient adds a client. An empty time zone means UTC and an empty
// currency GBP (the schema's defaults).
func (s *Service) CreateClient(ctx context.Context, clientName, tz, currency string) (store.ClientDetail, error) {
	n, err := name("name", clientName)
	if err != nil {
		return store.ClientDetail{}, err
	}
	c := store.ClientDetail{ID: token.NewID("cli"), Name: n, TimeZone: strings.TrimSpace(tz), Currency: strings.ToUpper(strings.TrimSpace(currency))}
	if c.TimeZone == "" {
		c.TimeZone = "UTC"
	}
	if c.Currency == "" {
		c.Currency = "GBP"
	}
	if err := checkSettings(c.TimeZone, c.Currency); err != nil {
		return c, err
	}
	if err := s.st.CreateClient(ctx, c, time.Now()); err != nil {
		return c, err
	}
	return c, nil
}

// checkSettings applies the rules for a client's time zone (an IANA name;
// not "Local", which would follow the server's) and currency (an active ISO
// 4217 code, upper case).
func checkSettings(tz, currency string) error {
	if _, err := time.LoadLocation(tz); err != nil || tz == "Local" || tz == "" {
		return invalid("time_zone", "must be an IANA time zone such as Europe/London")
	}
	if !event.ValidCurrency(currency) || currency != strings.ToUpper(currency) {
		return invalid("currency", "must be an ISO 4217 code such as GBP")
	}
	return nil
}

// SetClientSettings changes a client's time zone, its default currency, or
// both (a nil value is left as it is), and audits it as client.update. Both
// are checked before either changes. The time zone decides where reports'
// days begin, so the change also moves past days' boundaries.
func (s *Service) SetClientSettings(ctx context.Context, id string, tz, currency *string, actor string) (store.ClientDetail, error) {
	c, err := s.st.GetClient(ctx, id)
	if err != nil {
		return c, err
	}
	if tz != nil {
		c.TimeZone = strings.TrimSpace(*tz)
	}
	if currency != nil {
		c.Currency = strings.ToUpper(strings.TrimSpace(*currency))
	}
	if err := checkSettings(c.TimeZone, c.Currency); err != nil {
		return c, err
	}
	if err := s.st.SetClientSettings(ctx, id, c.TimeZone, c.Currency); err != nil {
		return c, err
	}
	s.auth.Audit(ctx, actor, "client.update", id)
	return c, nil
}

// NewStageOut is a stage as created, with its token in clear (shown once).
type NewStageOut struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Position     int    `json:"position"`
	WebhookToken string `json:"webhook_token"`
}

// Created is a new funnel: the shape `pruuv funnel create --json` prints.
type Created struct {
	Client store.Client  `json:"client"`
	Funnel store.Funnel  `json:"funnel"`
	Stages []NewStageOut `json:"stages"`
}

// StageNames splits and checks a list of stage names: 1 to MaxStages, each
// 1 to MaxName bytes, no two equal ignoring case.
func StageNames(names []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if len(n) > MaxName {
			return nil, invalid("stages", "each stage needs a name of 1 to %d bytes", MaxName)
		}
		if seen[strings.ToLower(n)] {
			return nil, invalid("stages", "%q is given twice", n)
		}
		seen[strings.ToLower(n)] = true
		out = append(out, n)
	}
	if len(out) == 0 || len(out) > MaxStages {
		return nil, invalid("stages", "a funnel needs 1 to %d stages", MaxStages)
	}
	return out, nil
}

// CreateFunnel creates a funnel of the named stages under an existing client.
func (s *Service) CreateFunnel(ctx context.Context, clientID, funnelName string, stageNames []string, actor string) (Created, error) {
	var out Created
	fn, err := name("name", funnelName)
	if err != nil {
		return out, err
	}
	names, err := StageNames(stageNames)
	if err != nil {
		return out, err
	}
	c, err := s.st.GetClient(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return out, invalid("client_id", "names no client")
	} else if err != nil {
		return out, err
	}
	var stages []store.NewStage
	for i, n := range names {
		tok, row := NewToken(s.key)
		id := token.NewID("stg")
		stages = append(stages, store.NewStage{ID: id, Name: n, Token: row})
		out.Stages = append(out.Stages, NewStageOut{ID: id, Name: n, Position: i + 1, WebhookToken: tok})
	}
	out.Client, out.Funnel, err = s.st.CreateFunnel(ctx, c.ID, c.Name, token.NewID("fun"), fn, stages, time.Now())
	if err != nil {
		return out, err
	}
	s.auth.Audit(ctx, actor, "funnel.create", out.Funnel.ID)
	return out, nil
}

// RenameFunnel renames a funnel.
func (s *Service) RenameFunnel(ctx context.Context, id, newName string) error {
	n, err := name("name", newName)
	if err != nil {
		return err
	}
	return s.st.RenameFunnel(ctx, id, n)
}

// sameNameInFunnel refuses a stage name another stage of the funnel has.
func (s *Service) sameNameInFunnel(ctx context.Context, funnelID, stageID, n string) error {
	stages, err := s.st.FunnelStages(ctx, funnelID)
	if err != nil {
		return err
	}
	for _, st := range stages {
		if st.ID != stageID && strings.EqualFold(st.Name, n) {
			return invalid("name", "another stage of this funnel is called %q", st.Name)
		}
	}
	return nil
}

// RenameStage renames a stage; names stay distinct within a funnel.
func (s *Service) RenameStage(ctx context.Context, id, newName string) error {
	n, err := name("name", newName)
	if err != nil {
		return err
	}
	st, err := s.st.GetStage(ctx, id)
	if err != nil {
		return err
	}
	if err := s.sameNameInFunnel(ctx, st.FunnelID, id, n); err != nil {
		return err
	}
	return s.st.RenameStage(ctx, id, n)
}

// AddStage appends a stage to a funnel.
func (s *Service) AddStage(ctx context.Context, funnelID, stageName, actor string) (NewStageOut, error) {
	n, err := name("name", stageName)
	if err != nil {
		return NewStageOut{}, err
	}
	f, err := s.st.GetFunnel(ctx, funnelID)
	if err != nil {
		return NewStageOut{}, err
	}
	if f.Stages >= MaxStages {
		return NewStageOut{}, invalid("name", "a funnel has at most %d stages", MaxStages)
	}
	if err := s.sameNameInFunnel(ctx, funnelID, "", n); err != nil {
		return NewStageOut{}, err
	}
	tok, row := NewToken(s.key)
	out := NewStageOut{ID: token.NewID("stg"), Name: n, WebhookToken: tok}
	out.Position, err = s.st.AddStage(ctx, funnelID, store.NewStage{ID: out.ID, Name: n, Token: row}, time.Now())
	if err != nil {
		return NewStageOut{}, err
	}
	s.auth.Audit(ctx, actor, "stage.create", out.ID)
	return out, nil
}

// MoveStage puts a stage at a position (1 is first); others shift.
func (s *Service) MoveStage(ctx context.Context, id string, pos int) error {
	if pos < 1 || pos > MaxStages {
		return invalid("position", "must be between 1 and %d", MaxStages)
	}
	return s.st.MoveStage(ctx, id, pos)
}

// SetLimit sets a stage's accepted events per UTC hour.
func (s *Service) SetLimit(ctx context.Context, id string, n int) error {
	if n < 1 || n > MaxHourlyLimit {
		return invalid("hourly_limit", "must be between 1 and %d", MaxHourlyLimit)
	}
	return s.st.SetHourlyLimit(ctx, id, n)
}

// RotateToken gives a stage a new token; the one it replaces keeps working
// for overlap (0 revokes it at once). It returns the new token in clear and
// when the old one stops.
func (s *Service) RotateToken(ctx context.Context, id string, overlap time.Duration, actor string) (string, time.Time, error) {
	if overlap < 0 || overlap > MaxOverlap {
		return "", time.Time{}, invalid("overlap", "must be between 0 and 168h")
	}
	tok, row := NewToken(s.key)
	now := time.Now()
	if err := s.st.RotateToken(ctx, id, row, now, now.Add(overlap)); err != nil {
		return "", time.Time{}, err
	}
	s.auth.Audit(ctx, actor, "stage.rotate_token", id)
	return tok, now.Add(overlap).UTC(), nil
}

// RevealToken returns a stage's current token in clear, and audits it.
func (s *Service) RevealToken(ctx context.Context, id, actor string) (string, error) {
	t, err := s.st.CurrentToken(ctx, id)
	if err != nil {
		return "", err
	}
	tok, err := s.key.Open(t.Sealed, "stage_tokens:"+t.ID)
	if err != nil {
		return "", fmt.Errorf("reveal token of stage %s: %w", id, err)
	}
	s.auth.Audit(ctx, actor, "stage.reveal_token", id)
	return tok, nil
}
