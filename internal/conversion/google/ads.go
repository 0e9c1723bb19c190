package google

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/pruuv/pruuv/internal/conversion"
)

// adsTimeLayout is Google Ads' conversion_date_time: "yyyy-mm-dd hh:mm:ss+|-hh:mm".
// Pruuv always writes UTC, "+00:00".
const adsTimeLayout = "2006-01-02 15:04:05-07:00"

// The Google Ads API's request, as far as Pruuv fills it.
type adsRequest struct {
	Conversions    []adsConversion `json:"conversions"`
	PartialFailure bool            `json:"partialFailure"`
}

type adsConversion struct {
	GCLID              string              `json:"gclid,omitempty"`
	GBRAID             string              `json:"gbraid,omitempty"`
	WBRAID             string              `json:"wbraid,omitempty"`
	ConversionAction   string              `json:"conversionAction"`
	ConversionDateTime string              `json:"conversionDateTime"`
	ConversionValue    *float64            `json:"conversionValue,omitempty"`
	CurrencyCode       string              `json:"currencyCode,omitempty"`
	OrderID            string              `json:"orderId"`
	UserIdentifiers    []adsUserIdentifier `json:"userIdentifiers,omitempty"`
	Consent            *adsConsent         `json:"consent,omitempty"`
}

type adsUserIdentifier struct {
	HashedEmail       string `json:"hashedEmail,omitempty"`
	HashedPhoneNumber string `json:"hashedPhoneNumber,omitempty"`
}

type adsConsent struct {
	AdUserData string `json:"adUserData"`
}

// adsResponse is uploadClickConversions' answer: failed rows are {} in
// results, and partialFailureError says why.
type adsResponse struct {
	Results             []json.RawMessage `json:"results"`
	PartialFailureError *struct {
		Message string        `json:"message"`
		Details []errorDetail `json:"details"`
	} `json:"partialFailureError"`
	JobID string `json:"jobId"`
}

// Row error codes that do not mean the conversion is refused for good.
var (
	// alreadyThere means an earlier attempt (one whose answer was lost) got
	// the conversion in: the order id is Pruuv's event id, unique per event.
	alreadyThere = []string{"ORDER_ID_ALREADY_IN_USE", "CLICK_CONVERSION_ALREADY_EXISTS"}
	// laterMaybe are refusals Google documents as going away with time.
	laterMaybe = []string{"TOO_RECENT_EVENT", "TOO_RECENT_CONVERSION_ACTION", "TOO_RECENT_CLICK"}
	// laterFamilies are error families that are never about the row's content.
	laterFamilies = []string{"internalError", "quotaError"}
)

// notAllowlisted is Google's code for a developer token that may not upload
// click conversions (closed to new adopters since 2026-06-15).
const notAllowlisted = "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE"

// sendAds sends batch through uploadClickConversions in one request.
func (c *Client) sendAds(ctx context.Context, connID string, s settings, batch []conversion.Conversion, res []conversion.Result) {
	idx := indexes(len(batch))
	body, err := json.Marshal(adsBuild(s, batch))
	if err != nil {
		fill(res, idx, conversion.Result{Outcome: conversion.Permanent, Message: "encoding the request: " + err.Error()})
		return
	}
	url := fmt.Sprintf("%s/%s/customers/%s:uploadClickConversions",
		strings.TrimRight(c.endpoints.GoogleAds, "/"), s.version, s.customerID)
	h := http.Header{}
	h.Set("developer-token", s.developerToken)
	if s.loginCustomerID != "" {
		h.Set("login-customer-id", s.loginCustomerID)
	}
	rep, fail := c.call(ctx, connID, s, url, body, h)
	if fail != nil {
		fill(res, idx, *fail)
		return
	}
	c.adsJudge(rep, res)
}

func adsBuild(s settings, batch []conversion.Conversion) adsRequest {
	req := adsRequest{PartialFailure: true, Conversions: make([]adsConversion, 0, len(batch))}
	for i := range batch {
		cv := &batch[i]
		f := &cv.Fields
		row := adsConversion{
			ConversionAction:   "customers/" + s.customerID + "/conversionActions/" + cv.EventName,
			ConversionDateTime: cv.Time.UTC().Format(adsTimeLayout),
			CurrencyCode:       f.Currency,
			OrderID:            cv.EventID,
		}
		switch kind, id := clickID(f); kind {
		case "gclid":
			row.GCLID = id
		case "gbraid":
			row.GBRAID = id
		case "wbraid":
			row.WBRAID = id
		}
		if f.HasRevenue {
			v := micros(f.RevenueMicros)
			row.ConversionValue = &v
		}
		// One identifier per object; two at most, well inside Google's five.
		if f.EmailGoogleSHA256 != "" {
			row.UserIdentifiers = append(row.UserIdentifiers, adsUserIdentifier{HashedEmail: f.EmailGoogleSHA256})
		}
		if f.PhoneSHA256 != "" {
			row.UserIdentifiers = append(row.UserIdentifiers, adsUserIdentifier{HashedPhoneNumber: f.PhoneSHA256})
		}
		if s.consent != "" {
			row.Consent = &adsConsent{AdUserData: s.consent}
		}
		req.Conversions = append(req.Conversions, row)
	}
	return req
}

// adsJudge turns the answer into results. With partialFailure, a 200 holds
// the rows' fates: a row named by an error at conversions[i] failed, the
// others were accepted. A non-2xx answer is about the whole request.
func (c *Client) adsJudge(rep *reply, res []conversion.Result) {
	idx := indexes(len(res))
	if rep.status < 200 || rep.status > 299 {
		e := parseAPIError(rep.body)
		if rep.status == http.StatusBadRequest {
			if rows, ok := adsRowErrors(e.Error.Details, len(res)); ok {
				for i := range res {
					if errs, bad := rows[i]; bad {
						res[i] = conversion.Result{Outcome: conversion.Permanent, HTTPStatus: rep.status,
							Message: "HTTP 400 " + strings.Join(errs, "; ")}
					} else {
						res[i] = conversion.Result{Outcome: conversion.Transient, HTTPStatus: rep.status,
							Message: "not accepted: Google refused the request for other conversions in it; sent again without them"}
					}
				}
				return
			}
		}
		r := c.wholeRequest(rep, e)
		for _, d := range e.Error.Details {
			if slices.Contains(d.codes(), notAllowlisted) {
				r.Outcome = conversion.Permanent
				r.Message += "; this developer token may not upload click conversions through the Google Ads API: set api=datamanager on the connection to use the Data Manager API"
				break
			}
		}
		fill(res, idx, r)
		return
	}

	var body adsResponse
	if err := json.Unmarshal(rep.body, &body); err != nil {
		fill(res, idx, conversion.Result{Outcome: conversion.Transient, HTTPStatus: rep.status,
			Message: "unreadable answer from Google: " + err.Error()})
		return
	}
	sent := "accepted"
	if body.JobID != "" {
		sent = "accepted, job_id " + body.JobID
	}
	fill(res, idx, conversion.Result{Outcome: conversion.Sent, HTTPStatus: rep.status, Message: sent})
	pf := body.PartialFailureError
	if pf == nil {
		return
	}

	rows := map[int][]conversion.Result{}
	for _, d := range pf.Details {
		for _, e := range d.Errors {
			if i, path, ok := e.row(); ok && i >= 0 && i < len(res) {
				rows[i] = append(rows[i], rowResult(rep.status, e, path))
			}
		}
	}
	for i, rs := range rows {
		res[i] = gravest(rs)
	}
	// A row left {} that no error names failed for a reason Google did not
	// locate: the overall message is all there is.
	if len(body.Results) == len(res) {
		for i, raw := range body.Results {
			if _, named := rows[i]; !named && isEmptyObject(raw) {
				res[i] = conversion.Result{Outcome: conversion.Permanent, HTTPStatus: rep.status,
					Message: "refused: " + pf.Message}
			}
		}
	}
}

// adsRowErrors collects request-level errors located at conversions[i]. ok is
// false when some error names no row: then the request is refused as a whole.
func adsRowErrors(details []errorDetail, n int) (map[int][]string, bool) {
	rows := map[int][]string{}
	for _, d := range details {
		for _, e := range d.Errors {
			i, path, ok := e.row()
			if !ok || i < 0 || i >= n {
				return nil, false
			}
			rows[i] = append(rows[i], rowText(e, path))
		}
	}
	return rows, len(rows) > 0
}

// rowResult judges one row error.
func rowResult(status int, e adsError, path string) conversion.Result {
	family, code := e.code()
	r := conversion.Result{HTTPStatus: status, Message: rowText(e, path)}
	switch {
	case slices.Contains(alreadyThere, code):
		r.Outcome = conversion.Sent
		r.Message = "already recorded by Google: " + r.Message
	case slices.Contains(laterMaybe, code), slices.Contains(laterFamilies, family):
		r.Outcome = conversion.Transient
	default:
		r.Outcome = conversion.Permanent
	}
	return r
}

func rowText(e adsError, path string) string {
	family, code := e.code()
	out := family + ": " + code
	if family == "" {
		out = "error"
	}
	if path != "" {
		out += " at " + path
	}
	if e.Message != "" {
		out += ": " + e.Message
	}
	return out
}

// gravest is the verdict on a row from all its errors: Permanent over
// Transient over Sent, with every error's text.
func gravest(rs []conversion.Result) conversion.Result {
	out := rs[0]
	msgs := []string{rs[0].Message}
	for _, r := range rs[1:] {
		msgs = append(msgs, r.Message)
		if r.Outcome == conversion.Permanent || (r.Outcome == conversion.Transient && out.Outcome == conversion.Sent) {
			out.Outcome = r.Outcome
		}
	}
	out.Message = strings.Join(msgs, "; ")
	return out
}

func isEmptyObject(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(raw, &m) == nil && len(m) == 0
}
