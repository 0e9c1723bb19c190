package conversion

import (
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/pruuv/pruuv/internal/secret"
	"github.com/pruuv/pruuv/internal/store"
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

// KeyNames lists the setting names, sorted, for messages.
func KeyNames(keys []Key) string {
	var names []string
	for _, k := range keys {
		names = append(names, k.Name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
