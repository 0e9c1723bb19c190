package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Site is where the Pixel runs: one client's web pages, named by a public key
// and allowed to post from its origins only.
type Site struct {
	ID        string    `json:"site_id"`
	Key       string    `json:"site_key"`
	Name      string    `json:"name"`
	Client    Client    `json:"client"`
	Origins   []string  `json:"origins"` // sorted
	CreatedAt time.Time `json:"created_at"`
}

// NewSite is a site to create for the client named ClientName.
type NewSite struct {
	ID, Key, Name string
	ClientName    string
	Origins       []string // normalised
}

// CreateSite creates a site with its origins under an existing client; an
// unknown client is ErrNotFound.
func (s *Store) CreateSite(ctx context.Context, ns NewSite, now time.Time) (Site, error) {
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var clientID string
		if err := tx.QueryRowContext(ctx, "SELECT id FROM clients WHERE name = $1", ns.ClientName).Scan(&clientID); err != nil {
			return s.wrap(err, fmt.Sprintf("client %q", ns.ClientName))
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO sites (id, client_id, site_key, name, created_at) VALUES ($1, $2, $3, $4, $5)",
			ns.ID, clientID, ns.Key, ns.Name, now.UnixMilli()); err != nil {
			return s.wrap(err, "create site")
		}
		return s.addOrigins(ctx, tx, ns.ID, ns.Origins, now)
	})
	if err != nil {
		return Site{}, err
	}
	return s.GetSite(ctx, ns.Key)
}

func (s *Store) addOrigins(ctx context.Context, tx *sql.Tx, siteID string, origins []string, now time.Time) error {
	for _, o := range origins {
		if _, err := tx.ExecContext(ctx, "INSERT INTO site_origins (site_id, origin, created_at) VALUES ($1, $2, $3) ON CONFLICT (site_id, origin) DO NOTHING",
			siteID, o, now.UnixMilli()); err != nil {
			return s.wrap(err, "add origin")
		}
	}
	return nil
}

// AddSiteOrigins allows more origins for the site with this key or id; origins
// it already has are left as they are.
func (s *Store) AddSiteOrigins(ctx context.Context, keyOrID string, origins []string, now time.Time) (Site, error) {
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		id, err := s.siteID(ctx, tx, keyOrID)
		if err != nil {
			return err
		}
		return s.addOrigins(ctx, tx, id, origins, now)
	})
	if err != nil {
		return Site{}, err
	}
	return s.GetSite(ctx, keyOrID)
}

// RemoveSiteOrigins stops the site with this key or id taking events from the
// origins; origins it does not have are ignored.
func (s *Store) RemoveSiteOrigins(ctx context.Context, keyOrID string, origins []string) (Site, error) {
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		id, err := s.siteID(ctx, tx, keyOrID)
		if err != nil {
			return err
		}
		for _, o := range origins {
			if _, err := tx.ExecContext(ctx, "DELETE FROM site_origins WHERE site_id = $1 AND origin = $2", id, o); err != nil {
				return s.wrap(err, "remove origin")
			}
		}
		return nil
	})
	if err != nil {
		return Site{}, err
	}
	return s.GetSite(ctx, keyOrID)
}

func (s *Store) siteID(ctx context.Context, tx *sql.Tx, keyOrID string) (string, error) {
	var id string
	err := tx.QueryRowContext(ctx, "SELECT id FROM sites WHERE site_key = $1 OR id = $1", keyOrID).Scan(&id)
	return id, s.wrap(err, "site "+keyOrID)
}

const siteSelect = `SELECT s.id, s.site_key, s.name, s.created_at, c.id, c.name, COALESCE(o.origin, '')
	FROM sites s JOIN clients c ON c.id = s.client_id LEFT JOIN site_origins o ON o.site_id = s.id`

// listSites runs siteSelect with a condition and folds the origin rows into
// sites, in the order of the rows. Origins are sorted here, byte by byte, so
// both databases list them alike whatever PostgreSQL's collation.
func (s *Store) listSites(ctx context.Context, where string, args ...any) ([]Site, error) {
	rows, err := s.r.QueryContext(ctx, siteSelect+where+" ORDER BY c.name, s.created_at, s.id", args...)
	if err != nil {
		return nil, s.wrap(err, "list sites")
	}
	defer rows.Close()
	var out []Site
	for rows.Next() {
		var st Site
		var ms int64
		var origin string
		if err := rows.Scan(&st.ID, &st.Key, &st.Name, &ms, &st.Client.ID, &st.Client.Name, &origin); err != nil {
			return nil, s.wrap(err, "list sites")
		}
		if len(out) == 0 || out[len(out)-1].ID != st.ID {
			st.CreatedAt, st.Origins = time.UnixMilli(ms).UTC(), []string{}
			out = append(out, st)
		}
		if origin != "" {
			last := &out[len(out)-1]
			last.Origins = append(last.Origins, origin)
		}
	}
	for i := range out {
		slices.Sort(out[i].Origins)
	}
	return out, s.wrap(rows.Err(), "list sites")
}

// ListSites returns every site with its origins, grouped by client.
func (s *Store) ListSites(ctx context.Context) ([]Site, error) {
	return s.listSites(ctx, "")
}

// GetSite returns the site with this key or id, or ErrNotFound.
func (s *Store) GetSite(ctx context.Context, keyOrID string) (Site, error) {
	sites, err := s.listSites(ctx, " WHERE s.site_key = $1 OR s.id = $1", keyOrID)
	if err != nil {
		return Site{}, err
	}
	if len(sites) == 0 {
		return Site{}, fmt.Errorf("site %s: %w", keyOrID, ErrNotFound)
	}
	return sites[0], nil
}

// SiteAuth is what the Pixel's endpoint needs to know about a site key: the
// site's client and the origins allowed to post with it.
type SiteAuth struct {
	SiteID   string
	ClientID string
	Origins  []string
}

// Allows reports whether origin is one of the site's.
func (a SiteAuth) Allows(origin string) bool {
	return slices.Contains(a.Origins, origin)
}

// LookupSite loads the site with this public key, or returns ErrNotFound.
func (s *Store) LookupSite(ctx context.Context, key string) (SiteAuth, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT s.id, s.client_id, COALESCE(o.origin, '')
		FROM sites s LEFT JOIN site_origins o ON o.site_id = s.id WHERE s.site_key = $1`, key)
	if err != nil {
		return SiteAuth{}, s.wrap(err, "look up site")
	}
	defer rows.Close()
	var a SiteAuth
	found := false
	for rows.Next() {
		var origin string
		if err := rows.Scan(&a.SiteID, &a.ClientID, &origin); err != nil {
			return SiteAuth{}, s.wrap(err, "look up site")
		}
		found = true
		if origin != "" {
			a.Origins = append(a.Origins, origin)
		}
	}
	if err := rows.Err(); err != nil {
		return SiteAuth{}, s.wrap(err, "look up site")
	}
	if !found {
		return SiteAuth{}, fmt.Errorf("site key %s: %w", key, ErrNotFound)
	}
	return a, nil
}

// OriginListed reports whether any site allows origin. CORS preflights carry
// no site key, so this is all they can be checked against.
func (s *Store) OriginListed(ctx context.Context, origin string) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, "SELECT 1 FROM site_origins WHERE origin = $1 LIMIT 1", origin).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, s.wrap(err, "look up origin")
}
