package conversion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pruuv/pruuv/internal/auth"
	"github.com/pruuv/pruuv/internal/secret"
	"github.com/pruuv/pruuv/internal/store"
	"github.com/pruuv/pruuv/internal/token"
)

// aad binds a connection's sealed settings to its row: a sealed value copied
// to another connection does not open.
func aad(id string) string { return "connections:" + id }

// Hint is what may be shown of a secret setting: its last four characters
// when it is long enough for that to give nothing away, else nothing.
func Hint(v string) string {
	if len(v) < 16 {
		return "…"
	}
	return "…" + v[len(v)-4:]
}

// SealSettings stores settings in c: plain keys in clear, the keys keys marks
// Secret sealed (bound to c.ID) and hinted. Unknown keys are an error.
func SealSettings(k secret.Key, keys []Key, c *store.Connection, settings map[string]string) error {
	byName := map[string]Key{}
	for _, key := range keys {
		byName[key.Name] = key
	}
	plain, secrets, hints := map[string]string{}, map[string]string{}, map[string]string{}
	for name, v := range settings {
		key, ok := byName[name]
		switch {
		case !ok:
			return fmt.Errorf("unknown setting %q (settings: %s)", name, KeyNames(keys))
		case key.Secret:
			secrets[name], hints[name] = v, Hint(v)
		default:
			plain[name] = v
		}
	}
	c.Settings, c.Hints, c.Sealed = plain, hints, ""
	if len(secrets) > 0 {
		js, err := json.Marshal(secrets)
		if err != nil {
			return err
		}
		c.Sealed = k.Seal(string(js), aad(c.ID))
	}
	return nil
}

// OpenSettings returns every stored setting of c in clear.
func OpenSettings(k secret.Key, c store.Connection) (map[string]string, error) {
	out := maps.Clone(c.Settings)
	if out == nil {
		out = map[string]string{}
	}
	if c.Sealed == "" {
		return out, nil
	}
	plain, err := k.Open(c.Sealed, aad(c.ID))
	if err != nil {
		return nil, fmt.Errorf("connection %s: %w", c.ID, err)
	}
	var secrets map[string]string
	if err := json.Unmarshal([]byte(plain), &secrets); err != nil {
		return nil, fmt.Errorf("connection %s: %w", c.ID, err)
	}
	maps.Copy(out, secrets)
	return out, nil
}

// OpenConnection is the connection as a client sends with it: every setting
// in clear, defaults filled in for absent ones.
func OpenConnection(k secret.Key, c store.Connection, keys []Key) (Connection, error) {
	settings, err := OpenSettings(k, c)
	if err != nil {
		return Connection{}, err
	}
	for _, key := range keys {
		if _, ok := settings[key.Name]; !ok && key.Default != "" {
			settings[key.Name] = key.Default
		}
	}
	return Connection{ID: c.ID, ClientID: c.ClientID, Platform: Platform(c.Platform), Settings: settings}, nil
}

// secretSaver saves rotated secrets of one loaded connection. It remembers
// the sealed value it last loaded or wrote, and writes only over that one.
type secretSaver struct {
	id    string
	store *store.Store
	key   secret.Key
	keys  []Key
	now   func() time.Time
	log   *slog.Logger

	mu  sync.Mutex
	row store.Connection // as loaded, then as last saved
}

// save is the connection's SaveSecret: replace, logged by connection id
// (never the value).
func (s *secretSaver) save(ctx context.Context, key, value string) error {
	err := s.replace(ctx, key, value)
	switch {
	case err == nil:
		s.log.Info("refresh token rotated", "connection_id", s.id)
	case errors.Is(err, store.ErrConflict):
		s.log.Info("rotated secret not saved: the connection changed meanwhile", "connection_id", s.id)
	default:
		s.log.Warn("rotated secret not saved", "connection_id", s.id, "err", err)
	}
	return err
}

// replace re-seals the connection's secrets with key set to value and swaps
// them in with store.ReplaceSealed. The write runs without ctx's
// cancellation: the platform has already issued the value, and it may be the
// only one left that works.
func (s *secretSaver) replace(ctx context.Context, key, value string) error {
	if !slices.ContainsFunc(s.keys, func(k Key) bool { return k.Name == key && k.Secret }) {
		return fmt.Errorf("connection %s: %q is not a secret setting", s.id, key)
	}
	if value == "" {
		return fmt.Errorf("connection %s: empty value for %s", s.id, key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	settings, err := OpenSettings(s.key, s.row)
	if err != nil {
		return err
	}
	settings[key] = value
	next := s.row
	if err := SealSettings(s.key, s.keys, &next, settings); err != nil {
		return err
	}
	if err := s.store.ReplaceSealed(context.WithoutCancel(ctx), next.ID, s.row.Sealed, next.Sealed, next.Hints, s.now()); err != nil {
		return err
	}
	s.row = next
	return nil
}

// KeyNames lists the setting names, sorted, for messages.
func KeyNames(keys []Key) string {
	var names []string
	for _, k := range keys {
		names = append(names, k.Name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// MaxEventName is the longest mapping (event name, conversion action, goal)
// a stage may send.
const MaxEventName = 200

// Audit records an admin action (auth.Service.Audit); nil records nothing.
type Audit func(ctx context.Context, actor, action, target string)

// Admin changes connections and stage mappings: the rules the CLI, the
// dashboard and the admin API share. Refusals are *auth.InvalidError, so
// every surface reports them as the user's mistake.
type Admin struct {
	Store   *store.Store
	Key     secret.Key
	Clients Registry
	Audit   Audit
	Now     func() time.Time // nil: time.Now
}

func (a *Admin) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Admin) audit(ctx context.Context, actor, action, target string) {
	if a.Audit != nil {
		a.Audit(ctx, actor, action, target)
	}
}

func invalid(field, format string, args ...any) error {
	return &auth.InvalidError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// ParsePlatform reads a platform name, ignoring case and spaces.
func ParsePlatform(s string) (Platform, error) {
	p := Platform(strings.ToLower(strings.TrimSpace(s)))
	if !slices.Contains(Platforms, p) {
		return "", invalid("platform", "must be meta, google, tiktok or microsoft")
	}
	return p, nil
}

// Client returns the platform's client, or an error when this build has none.
func (a *Admin) Client(p Platform) (Client, error) {
	c, ok := a.Clients[p]
	if !ok || c == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoClients, p)
	}
	return c, nil
}

// SaveConnection creates the client's connection on p or, when it has one,
// changes the settings in changes and keeps the others (an empty value
// removes a setting). Unknown keys and settings the platform's Validate
// refuses are *auth.InvalidError and nothing is stored. The answer is the
// stored row (secrets sealed, hinted). Audited as connection.save, with the
// names of the keys changed, never their values.
func (a *Admin) SaveConnection(ctx context.Context, clientID string, p Platform, changes map[string]string, actor string) (store.Connection, error) {
	cl, err := a.Client(p)
	if err != nil {
		return store.Connection{}, err
	}
	known := map[string]bool{}
	for _, k := range cl.Keys() {
		known[k.Name] = true
	}
	for k := range changes {
		if !known[k] {
			return store.Connection{}, invalid("settings", "%s has no setting %q (settings: %s)", p, k, KeyNames(cl.Keys()))
		}
	}
	conn, err := a.Store.GetConnection(ctx, clientID, string(p))
	settings := map[string]string{}
	switch {
	case errors.Is(err, store.ErrNotFound):
		if _, err := a.Store.GetClient(ctx, clientID); err != nil {
			return store.Connection{}, err
		}
		conn = store.Connection{ID: token.NewID("con"), ClientID: clientID, Platform: string(p)}
	case err != nil:
		return store.Connection{}, err
	default:
		if settings, err = OpenSettings(a.Key, conn); err != nil {
			return store.Connection{}, fmt.Errorf("the stored %s connection cannot be read with this secret key: %w", p, err)
		}
	}
	for k, v := range changes {
		if v == "" {
			delete(settings, k)
		} else {
			settings[k] = v
		}
	}
	if err := cl.Validate(settings); err != nil {
		return store.Connection{}, invalid("settings", "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	if err := SealSettings(a.Key, cl.Keys(), &conn, settings); err != nil {
		return store.Connection{}, err
	}
	if err := a.Store.PutConnection(ctx, conn, a.now()); err != nil {
		return store.Connection{}, err
	}
	a.audit(ctx, actor, "connection.save", conn.ID)
	return a.Store.GetConnection(ctx, clientID, string(p))
}

// Map makes the stage send eventName to p; an empty name removes the
// mapping. The stage must be one of the client's (else store.ErrNotFound);
// a connection need not exist yet. Audited as stage.map or stage.unmap.
func (a *Admin) Map(ctx context.Context, clientID, stageID string, p Platform, eventName, actor string) error {
	eventName = strings.TrimSpace(eventName)
	if len(eventName) > MaxEventName {
		return invalid("event", "must be at most %d bytes", MaxEventName)
	}
	if err := a.Store.SetMapping(ctx, clientID, stageID, string(p), eventName, a.now()); err != nil {
		return err
	}
	if eventName == "" {
		a.audit(ctx, actor, "stage.unmap", stageID+":"+string(p))
	} else {
		a.audit(ctx, actor, "stage.map", stageID+":"+string(p))
	}
	return nil
}

// ConnectionView is a connection as the CLI and the admin API show it:
// secret settings only as hints.
type ConnectionView struct {
	ID         string            `json:"id"`
	Client     string            `json:"client"`
	ClientID   string            `json:"client_id"`
	Platform   string            `json:"platform"`
	Settings   map[string]string `json:"settings"`
	SecretKeys []string          `json:"secret_keys"`
	Mappings   []MappingView     `json:"mappings"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
}

// MappingView is one stage mapping as the CLI and the admin API show it.
type MappingView struct {
	StageID string `json:"stage_id"`
	Stage   string `json:"stage"`
	Funnel  string `json:"funnel"`
	Event   string `json:"event"`
}

// ViewOf is c as shown, with its mappings among maps.
func ViewOf(c store.Connection, maps []store.Mapping) ConnectionView {
	v := ConnectionView{ID: c.ID, Client: c.ClientName, ClientID: c.ClientID, Platform: c.Platform, Settings: map[string]string{},
		SecretKeys: []string{}, Mappings: []MappingView{}, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	for k, s := range c.Settings {
		v.Settings[k] = s
	}
	for k, h := range c.Hints {
		v.Settings[k] = h
		v.SecretKeys = append(v.SecretKeys, k)
	}
	sort.Strings(v.SecretKeys)
	v.Mappings = MappingsOf(c.ClientID, Platform(c.Platform), maps)
	return v
}

// MappingsOf picks the client's mappings on p out of maps.
func MappingsOf(clientID string, p Platform, maps []store.Mapping) []MappingView {
	out := []MappingView{}
	for _, m := range maps {
		if m.ClientID == clientID && m.Platform == string(p) {
			out = append(out, MappingView{StageID: m.StageID, Stage: m.StageName, Funnel: m.FunnelName, Event: m.EventName})
		}
	}
	return out
}

// Retry re-queues an event's failed or skipped sends (only the one on p
// when it is set) through store.RetrySend, the same as `pruuv conversions
// retry`, and returns the platforms re-queued. Audited as conversion.retry,
// one entry per platform.
func (a *Admin) Retry(ctx context.Context, eventID string, p Platform, actor string) ([]string, error) {
	ps, err := a.Store.RetrySend(ctx, eventID, string(p), a.now())
	if err != nil {
		return nil, err
	}
	sort.Strings(ps)
	for _, pl := range ps {
		a.audit(ctx, actor, "conversion.retry", eventID+":"+pl)
	}
	return ps, nil
}
