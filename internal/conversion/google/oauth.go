package google

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

// tokenMargin is how long before Google's expiry a cached access token is
// dropped, so a token never expires between the check and the request.
const tokenMargin = time.Minute

// tokens caches access tokens per connection and refresh token. Each entry has
// its own lock so one connection's refresh never waits on another's.
type tokens struct {
	mu      sync.Mutex
	entries map[string]*tokenEntry
}

type tokenEntry struct {
	mu      sync.Mutex
	access  string
	expires time.Time
	// refresh is a new refresh token Google returned (it rarely does); used
	// instead of the settings' one while this process runs.
	refresh string
}

// tokenKey identifies a cached token: the connection, and a hash of the OAuth
// client and refresh token so a reconnected account never reuses the old
// account's token. The secrets themselves are never kept as keys.
func tokenKey(connID string, s settings) string {
	sum := sha256.Sum256([]byte(s.clientID + "\x00" + s.refreshToken))
	return connID + "\x00" + hex.EncodeToString(sum[:8])
}

// saved files e also under the key of the refresh token just saved, the one
// the connection is loaded with from now on, keeping key (the connection as
// this run holds it) and dropping the connection's older keys.
func (t *tokens) saved(connID string, s settings, key, refresh string, e *tokenEntry) {
	s.refreshToken = refresh
	next := tokenKey(connID, s)
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.entries {
		if strings.HasPrefix(k, connID+"\x00") && k != key {
			delete(t.entries, k)
		}
	}
	t.entries[next] = e
}

func (t *tokens) entry(key string) *tokenEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.entries == nil {
		t.entries = make(map[string]*tokenEntry)
	}
	e := t.entries[key]
	if e == nil {
		e = &tokenEntry{}
		t.entries[key] = e
	}
	return e
}

// accessToken returns a cached, unexpired access token, or refreshes one. When
// stale is the token a request was just refused with, it is dropped first
// (unless another request has already replaced it).
func (c *Client) accessToken(ctx context.Context, connID string, s settings, stale string) (string, *conversion.Result) {
	key := tokenKey(connID, s)
	e := c.tokens.entry(key)
	e.mu.Lock()
	defer e.mu.Unlock()
	if stale != "" && e.access == stale {
		e.access = ""
	}
	if e.access != "" && c.now().Before(e.expires) {
		return e.access, nil
	}
	used := s.refreshToken
	if e.refresh != "" {
		used = e.refresh
	}
	access, ttl, rotated, fail := c.refresh(ctx, s, used)
	if fail != nil {
		if fail.Outcome == conversion.Permanent {
			e.refresh = "" // back to the settings' token next time
		}
		return "", fail
	}
	e.access = access
	if rotated != "" && rotated != used {
		e.refresh = rotated
		// Saved, it outlives this process; unsaved, it is still used while
		// the process runs, and the send goes on either way.
		if s.saveSecret != nil && s.saveSecret(ctx, "refresh_token", rotated) == nil {
			c.tokens.saved(connID, s, key, rotated, e)
		}
	}
	margin := tokenMargin
	if ttl <= 2*margin {
		margin = ttl / 2
	}
	e.expires = c.now().Add(ttl - margin)
	return access, nil
}

// refresh trades refreshToken for an access token at Google's token
// endpoint. rotated is the new refresh token when Google sent one.
func (c *Client) refresh(ctx context.Context, s settings, refreshToken string) (access string, ttl time.Duration, rotated string, fail *conversion.Result) {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {s.clientID},
		"client_secret": {s.clientSecret},
		"refresh_token": {refreshToken},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.endpoints.GoogleOAuth, "/")+"/token",
		strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, "", &conversion.Result{Outcome: conversion.Permanent, Message: "OAuth token request: " + err.Error()}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	rep, fail := c.do(req)
	if fail != nil {
		fail.Message = "OAuth token refresh: " + fail.Message
		return "", 0, "", fail
	}

	var body struct {
		AccessToken      string `json:"access_token"`
		ExpiresIn        int64  `json:"expires_in"`
		TokenType        string `json:"token_type"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
		RefreshToken     string `json:"refresh_token"`
	}
	_ = json.Unmarshal(rep.body, &body) // an unreadable body is judged by its status below
	switch {
	case rep.status == http.StatusOK && body.AccessToken != "" && body.ExpiresIn > 0:
		return body.AccessToken, time.Duration(body.ExpiresIn) * time.Second, body.RefreshToken, nil
	case rep.status == http.StatusOK:
		return "", 0, "", &conversion.Result{Outcome: conversion.Transient, HTTPStatus: rep.status,
			Message: "OAuth token refresh: the answer held no access token"}
	case rep.status == http.StatusTooManyRequests || rep.status >= 500:
		return "", 0, "", &conversion.Result{Outcome: conversion.Transient, HTTPStatus: rep.status,
			Message:    "OAuth token refresh: " + oauthMessage(rep.status, body.Error, body.ErrorDescription),
			RetryAfter: c.retryAfter(rep.header, nil)}
	}
	msg := "OAuth token refresh: " + oauthMessage(rep.status, body.Error, body.ErrorDescription)
	switch body.Error {
	case "invalid_grant":
		msg += "; the refresh token has expired or was revoked: reconnect the Google account to get a new one"
	case "invalid_client", "unauthorized_client":
		msg += "; check the connection's client_id and client_secret"
	}
	return "", 0, "", &conversion.Result{Outcome: conversion.Permanent, HTTPStatus: rep.status, Message: msg}
}

func oauthMessage(status int, code, desc string) string {
	switch {
	case code != "" && desc != "":
		return fmt.Sprintf("HTTP %d %s: %s", status, code, desc)
	case code != "":
		return fmt.Sprintf("HTTP %d %s", status, code)
	}
	return fmt.Sprintf("HTTP %d", status)
}
