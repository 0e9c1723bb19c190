package pruuvtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

var httpClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0},
}

// Client is the HTTP client tests share: keep-alive, many connections per host.
func Client() *http.Client { return httpClient }

// Response is a webhook answer.
type Response struct {
	Status int
	Header http.Header
	Body   string
	JSON   map[string]any
}

// Post sends body to the stage's webhook with the token and returns the answer.
func Post(t testing.TB, baseURL, stageID, tok, body string) Response {
	t.Helper()
	r, err := PostErr(baseURL, stageID, tok, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// PostErr is Post without the test: network errors are returned.
func PostErr(baseURL, stageID, tok, body string) (Response, error) {
	req, err := http.NewRequest(http.MethodPost, baseURL+"/api/webhooks/funnel/"+stageID, bytes.NewBufferString(body))
	if err != nil {
		return Response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, err
	}
	out := Response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
	json.Unmarshal(b, &out.JSON)
	return out, nil
}
