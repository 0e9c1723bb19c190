package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/store"
	"github.com/pruuv/pruuv/internal/token"
)

// ErrForbidden means a Pixel request came from an origin its site does not
// allow.
var ErrForbidden = errors.New("origin not allowed")

// bucket is the hourly counter an event from source counts against: the
// Pixel has a quota of its own per stage; everything else uses the stage's.
func bucket(stageID string, source event.Source) string {
	if source == event.SourcePixel {
		return store.PixelBucket(stageID)
	}
	return ""
}

// maxIDLen is longer than any id Pruuv makes; a longer one is not looked up.
const maxIDLen = 64

// AuthorizePixel checks a request from the Pixel, in this order: siteKey names
// a site (else ErrUnauthorized), origin is one of the site's (else
// ErrForbidden), and the stage exists and belongs to the site's client (else
// ErrStageNotFound). It returns the stage's Pixel hourly limit.
func (s *Service) AuthorizePixel(ctx context.Context, siteKey, origin, stageID string) (limit int, err error) {
	now := s.now()
	if !token.IsSiteKey(siteKey) {
		return 0, ErrUnauthorized
	}
	site, err := s.site(ctx, siteKey, now)
	if err != nil {
		return 0, err
	}
	if origin == "" || !site.Allows(origin) {
		return 0, ErrForbidden
	}
	if stageID == "" || len(stageID) > maxIDLen {
		return 0, ErrStageNotFound
	}
	stage, hit := s.stages.get(stageID, now)
	if !hit {
		if stage, err = s.lookup(ctx, stageID, now); err != nil {
			return 0, err
		}
	}
	if stage.ClientID != site.ClientID {
		return 0, ErrStageNotFound // another client's stage: as good as none
	}
	return stage.PixelHourlyLimit, nil
}

// site finds the site a key names, kept for CacheFor as stages are: a new
// site or origin is seen at once (misses always ask the database), a removed
// origin stops working within CacheFor.
func (s *Service) site(ctx context.Context, key string, now time.Time) (store.SiteAuth, error) {
	if auth, hit := s.sites.get(key, now); hit {
		return auth, nil
	}
	auth, err := s.store.LookupSite(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return auth, ErrUnauthorized
	}
	if err != nil {
		return auth, err
	}
	s.sites.put(key, auth, now)
	return auth, nil
}

// OriginListed reports whether any site allows origin. It answers CORS
// preflights, which carry no site key; a request's own site is checked by
// AuthorizePixel.
func (s *Service) OriginListed(ctx context.Context, origin string) (bool, error) {
	if origin == "" || len(origin) > 2048 {
		return false, nil
	}
	now := s.now()
	if listed, hit := s.origins.get(origin, now); hit {
		return listed, nil
	}
	listed, err := s.store.OriginListed(ctx, origin)
	if err != nil {
		return false, err
	}
	s.origins.put(origin, listed, now)
	return listed, nil
}
