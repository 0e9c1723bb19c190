package google

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
)

// maxDestinations is the Data Manager API's limit on destinations per
// request; a batch spanning more conversion actions goes in several requests.
const maxDestinations = 10

// The Data Manager API's request, as far as Pruuv fills it.
type dmRequest struct {
	Destinations []dmDestination `json:"destinations"`
	Encoding     string          `json:"encoding,omitempty"`
	Events       []dmEvent       `json:"events"`
}

type dmAccount struct {
	AccountType string `json:"accountType"`
	AccountID   string `json:"accountId"`
}

type dmDestination struct {
	Reference            string     `json:"reference"`
	OperatingAccount     dmAccount  `json:"operatingAccount"`
	LoginAccount         *dmAccount `json:"loginAccount,omitempty"`
	ProductDestinationID string     `json:"productDestinationId"`
}

type dmEvent struct {
	DestinationReferences []string         `json:"destinationReferences"`
	TransactionID         string           `json:"transactionId"`
	EventTimestamp        string           `json:"eventTimestamp"`
	AdIdentifiers         *dmAdIdentifiers `json:"adIdentifiers,omitempty"`
	UserData              *dmUserData      `json:"userData,omitempty"`
	ConversionValue       *float64         `json:"conversionValue,omitempty"`
	Currency              string           `json:"currency,omitempty"`
	EventSource           string           `json:"eventSource"`
	Consent               *dmConsent       `json:"consent,omitempty"`
}

type dmAdIdentifiers struct {
	GCLID  string `json:"gclid,omitempty"`
	GBRAID string `json:"gbraid,omitempty"`
	WBRAID string `json:"wbraid,omitempty"`
}

type dmUserData struct {
	UserIdentifiers []dmUserIdentifier `json:"userIdentifiers"`
}

type dmUserIdentifier struct {
	EmailAddress string `json:"emailAddress,omitempty"`
	PhoneNumber  string `json:"phoneNumber,omitempty"`
}

type dmConsent struct {
	AdUserData string `json:"adUserData"`
}

// sendDataManager sends batch through events:ingest, in as few requests as
// the 10-destination limit allows.
func (c *Client) sendDataManager(ctx context.Context, connID string, s settings, batch []conversion.Conversion, res []conversion.Result) {
	for _, g := range groupByAction(batch) {
		req := dmBuild(s, batch, g)
		body, err := json.Marshal(req)
		if err != nil {
			fill(res, g, conversion.Result{Outcome: conversion.Permanent, Message: "encoding the request: " + err.Error()})
			continue
		}
		url := strings.TrimRight(c.endpoints.GoogleDataManager, "/") + "/v1/events:ingest"
		rep, fail := c.call(ctx, connID, s, url, body, nil)
		if fail != nil {
			fill(res, g, *fail)
			continue
		}
		c.dmJudge(rep, g, res)
	}
}

// groupByAction splits the batch's indexes into groups naming at most
// maxDestinations conversion actions, keeping the batch's order within each.
func groupByAction(batch []conversion.Conversion) [][]int {
	var groups [][]int
	var actions []map[string]bool
	for i, cv := range batch {
		g := -1
		for j, a := range actions {
			if a[cv.EventName] || len(a) < maxDestinations {
				g = j
				break
			}
		}
		if g < 0 {
			groups, actions = append(groups, nil), append(actions, map[string]bool{})
			g = len(groups) - 1
		}
		groups[g] = append(groups[g], i)
		actions[g][cv.EventName] = true
	}
	return groups
}

// dmBuild is the request for the conversions of batch at idx. Each conversion
// action is one destination whose reference is the action id itself.
func dmBuild(s settings, batch []conversion.Conversion, idx []int) dmRequest {
	var req dmRequest
	seen := map[string]bool{}
	for _, i := range idx {
		cv := &batch[i]
		f := &cv.Fields
		if !seen[cv.EventName] {
			seen[cv.EventName] = true
			d := dmDestination{
				Reference:            cv.EventName,
				OperatingAccount:     dmAccount{AccountType: "GOOGLE_ADS", AccountID: s.customerID},
				ProductDestinationID: cv.EventName,
			}
			if s.loginCustomerID != "" {
				d.LoginAccount = &dmAccount{AccountType: "GOOGLE_ADS", AccountID: s.loginCustomerID}
			}
			req.Destinations = append(req.Destinations, d)
		}
		ev := dmEvent{
			DestinationReferences: []string{cv.EventName},
			TransactionID:         cv.EventID,
			EventTimestamp:        cv.Time.UTC().Format(time.RFC3339Nano),
			EventSource:           "WEB",
			Currency:              f.Currency,
		}
		switch kind, id := clickID(f); kind {
		case "gclid":
			ev.AdIdentifiers = &dmAdIdentifiers{GCLID: id}
		case "gbraid":
			ev.AdIdentifiers = &dmAdIdentifiers{GBRAID: id}
		case "wbraid":
			ev.AdIdentifiers = &dmAdIdentifiers{WBRAID: id}
		}
		var ids []dmUserIdentifier
		if f.EmailGoogleSHA256 != "" {
			ids = append(ids, dmUserIdentifier{EmailAddress: f.EmailGoogleSHA256})
		}
		if f.PhoneSHA256 != "" {
			ids = append(ids, dmUserIdentifier{PhoneNumber: f.PhoneSHA256})
		}
		if len(ids) > 0 {
			ev.UserData = &dmUserData{UserIdentifiers: ids}
			req.Encoding = "HEX"
		}
		if f.HasRevenue {
			v := micros(f.RevenueMicros)
			ev.ConversionValue = &v
		}
		if s.consent != "" {
			ev.Consent = &dmConsent{AdUserData: "CONSENT_" + s.consent}
		}
		req.Events = append(req.Events, ev)
	}
	return req
}

// eventPath finds the event index in a BadRequest field path, written
// "events[3]…" or "events.events[3]…".
var eventPath = regexp.MustCompile(`(?:^|\.)events\[(\d+)\]`)

// dmJudge turns the answer to one events:ingest request into results for the
// conversions at idx. The API validates the whole request: a 400 whose field
// violations all name events marks those events Permanent and the others
// Transient, so they go again without them; any other refusal is for all.
func (c *Client) dmJudge(rep *reply, idx []int, res []conversion.Result) {
	if rep.status >= 200 && rep.status < 300 {
		var ok struct {
			RequestID string `json:"requestId"`
		}
		_ = json.Unmarshal(rep.body, &ok) // the request id is only informative
		msg := "accepted"
		if ok.RequestID != "" {
			msg = "accepted, request_id " + ok.RequestID
		}
		fill(res, idx, conversion.Result{Outcome: conversion.Sent, HTTPStatus: rep.status, Message: msg})
		return
	}
	e := parseAPIError(rep.body)
	if rep.status == http.StatusBadRequest {
		refused := map[int][]string{}
		blamesEvents := true
		for _, d := range e.Error.Details {
			for _, fv := range d.FieldViolations {
				m := eventPath.FindStringSubmatch(fv.Field)
				n := -1
				if m != nil {
					n, _ = strconv.Atoi(m[1])
				}
				if n < 0 || n >= len(idx) {
					blamesEvents = false
					continue
				}
				refused[n] = append(refused[n], violationText(fv))
			}
		}
		if blamesEvents && len(refused) > 0 {
			for n, i := range idx {
				if why, ok := refused[n]; ok {
					res[i] = conversion.Result{Outcome: conversion.Permanent, HTTPStatus: rep.status,
						Message: "HTTP 400 " + strings.Join(why, "; ")}
				} else {
					res[i] = conversion.Result{Outcome: conversion.Transient, HTTPStatus: rep.status,
						Message: "not accepted: Google refused the request for other events in it; sent again without them"}
				}
			}
			return
		}
	}
	fill(res, idx, c.wholeRequest(rep, e))
}

func violationText(fv fieldViolation) string {
	out := fv.Reason
	if out == "" {
		out = "INVALID_ARGUMENT"
	}
	if fv.Field != "" {
		out += " at " + fv.Field
	}
	if fv.Description != "" {
		out += ": " + fv.Description
	}
	return out
}
