package microsoft

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
)

// tokenSlot caches one connection's access token. Its mutex is held across a
// refresh so that concurrent sends on one connection refresh once.
type tokenSlot struct {
	mu      sync.Mutex
	access  string
	expires time.Time // when to stop using access: shortly before Microsoft's expiry
	// refresh is the newest refresh token Microsoft returned. The identity
	// platform rotates it on every use; the newer one lives longer, so it is
	// used while this process runs, and saved through the connection's
	// SaveSecret so that the next process starts from it too.
	refresh string
}

// slotKey identifies a connection's cache entry: its id and a hash of what
// identifies its grant, so new credentials never reuse a stale token.
func slotKey(id string, s map[string]string, refresh string) string {
	h := sha256.Sum256([]byte(refresh + "\x00" + s[SettingClientID] + "\x00" + tenant(s)))
	return id + "/" + hex.EncodeToString(h[:8])
}

// slot returns the cache entry for a connection and the key it is under.
func (c *Client) slot(conn conversion.Connection) (*tokenSlot, string) {
	key := slotKey(conn.ID, conn.Settings, conn.Settings[SettingRefreshToken])
	c.mu.Lock()
	defer c.mu.Unlock()
	sl, ok := c.tokens[key]
	if !ok {
		// New credentials on a connection: its old token is of no more use.
		for k := range c.tokens {
			if strings.HasPrefix(k, conn.ID+"/") {
				delete(c.tokens, k)
			}
		}
		sl = &tokenSlot{}
		c.tokens[key] = sl
	}
	return sl, key
}

// saved files sl also under the key of the refresh token just saved, which
// is the one the connection is loaded with from now on, and keeps the key it
// was found under for the connection as this run still holds it. Older keys
// go, so a connection has at most two.
func (c *Client) saved(conn conversion.Connection, sl *tokenSlot, key, refresh string) {
	next := slotKey(conn.ID, conn.Settings, refresh)
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.tokens {
		if strings.HasPrefix(k, conn.ID+"/") && k != key {
			delete(c.tokens, k)
		}
	}
	c.tokens[next] = sl
}

func tenant(s map[string]string) string {
	if t := s[SettingTenant]; t != "" {
		return t
	}
	return "common"
}

// authError is a failed token refresh, already judged.
type authError struct{ res conversion.Result }

func (e *authError) Error() string { return e.res.Message }

// accessToken returns a usable access token, refreshing it when the cached one
// is missing, near expiry, or equal to stale (the token Microsoft just
// refused).
func (c *Client) accessToken(ctx context.Context, conn conversion.Connection, stale string) (string, error) {
	sl, key := c.slot(conn)
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.access != "" && sl.access != stale && c.now().Before(sl.expires) {
		return sl.access, nil
	}
	refresh := sl.refresh
	if refresh == "" {
		refresh = conn.Settings[SettingRefreshToken]
	}
	tok, err := c.refresh(ctx, conn.Settings, refresh)
	if err != nil {
		sl.access, sl.expires = "", time.Time{}
		if isInvalidGrant(err) {
			sl.refresh = "" // back to the settings' token next time
		}
		return "", err
	}
	sl.access = tok.AccessToken
	life := time.Duration(tok.expiresIn()) * time.Second
	sl.expires = c.now().Add(life - min(5*time.Minute, life/2))
	if tok.RefreshToken != "" && tok.RefreshToken != refresh {
		sl.refresh = tok.RefreshToken
		// Saved, it outlives this process; unsaved, it is still used while
		// the process runs, and the send goes on either way.
		if conn.SaveSecret != nil && conn.SaveSecret(ctx, SettingRefreshToken, tok.RefreshToken) == nil {
			c.saved(conn, sl, key, tok.RefreshToken)
		}
	}
	return sl.access, nil
}

type tokenResponse struct {
	AccessToken  string      `json:"access_token"`
	TokenType    string      `json:"token_type"`
	ExpiresIn    json.Number `json:"expires_in"`
	RefreshToken string      `json:"refresh_token"`
	Error        string      `json:"error"`
	Description  string      `json:"error_description"`
}

// expiresIn is the token's life in seconds; an hour when Microsoft gave none.
func (t *tokenResponse) expiresIn() int64 {
	n, err := t.ExpiresIn.Int64()
	if err != nil || n <= 0 {
		return 3600
	}
	return n
}

func isInvalidGrant(err error) bool {
	ae, ok := err.(*authError)
	return ok && strings.HasPrefix(ae.res.Message, msgInvalidGrant)
}

const msgInvalidGrant = "Microsoft refused the refresh token (invalid_grant)"

func (c *Client) refresh(ctx context.Context, s map[string]string, refreshToken string) (*tokenResponse, error) {
	form := url.Values{
		"client_id":     {s[SettingClientID]},
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
		"scope":         {Scope},
	}
	if secret := s[SettingClientSecret]; secret != "" {
		form.Set("client_secret", secret)
	}
	u := c.oauth + "/" + url.PathEscape(tenant(s)) + "/oauth2/v2.0/token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &authError{conversion.Result{Outcome: conversion.Permanent, Message: "microsoft: bad OAuth URL: " + err.Error()}}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, body, err := conversion.Exchange(c.hc, req, c.timeout, conversion.MaxAnswer)
	switch {
	case resp == nil:
		return nil, &authError{conversion.Result{Outcome: conversion.Transient, Message: "no answer from the Microsoft identity platform: " + conversion.NetError(err)}}
	case err != nil:
		return nil, &authError{conversion.Result{Outcome: conversion.Transient, HTTPStatus: resp.StatusCode,
			Message: "reading the Microsoft identity platform's answer: " + err.Error()}}
	}
	var tok tokenResponse
	jsonErr := json.Unmarshal(body, &tok)
	wait, _ := conversion.RetryAfter(resp.Header, c.now())
	res := conversion.Result{HTTPStatus: resp.StatusCode, RetryAfter: wait}
	switch {
	case resp.StatusCode == http.StatusOK && jsonErr == nil && tok.AccessToken != "":
		return &tok, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		res.Outcome = conversion.Transient
		res.Message = fmt.Sprintf("Microsoft identity platform answered %d%s", resp.StatusCode, oauthDetail(&tok))
	case tok.Error == "invalid_grant":
		res.Outcome = conversion.Permanent
		res.Message = msgInvalidGrant + ": reconnect the Microsoft Advertising connection to grant Pruuv access again" + oauthDetail(&tok)
	case resp.StatusCode == http.StatusOK:
		res.Outcome = conversion.Transient
		res.Message = "Microsoft identity platform answered 200 without an access token"
	default:
		res.Outcome = conversion.Permanent
		res.Message = fmt.Sprintf("Microsoft identity platform refused the token refresh (%d)%s", resp.StatusCode, oauthDetail(&tok))
	}
	return nil, &authError{res}
}

// oauthDetail quotes the error code and the first line of its description
// (an AADSTS code and text; the trace and correlation ids are dropped).
func oauthDetail(t *tokenResponse) string {
	if t.Error == "" {
		return ""
	}
	d := t.Description
	if i := strings.IndexAny(d, "\r\n"); i >= 0 {
		d = d[:i]
	}
	if d == "" {
		return ": " + t.Error
	}
	return ": " + t.Error + ": " + d
}
