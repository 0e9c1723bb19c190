package api

import (
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/report"
)

var pathParam = regexp.MustCompile(`\{([a-zA-Z_]+)\}`)

// openAPI builds the OpenAPI 3.1 document of routes. Schemas come from the
// Go types of the bodies, so a field added to a body is documented at once.
func openAPI(routes []Route) map[string]any {
	errSchema := map[string]any{
		"type":     "object",
		"required": []string{"error"},
		"properties": map[string]any{
			"error":   map[string]any{"type": "string"},
			"details": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "array", "items": map[string]any{"type": "string"}}},
		},
	}
	errResp := func(desc string) map[string]any {
		return map[string]any{"description": desc, "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Error"}}}}
	}
	paths := map[string]any{}
	for _, rt := range routes {
		op := map[string]any{"operationId": rt.ID, "summary": rt.Summary}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range rt.Query {
			s := map[string]any{"type": q.Type}
			switch q.Type {
			case "date-time", "date":
				s = map[string]any{"type": "string", "format": q.Type}
			}
			params = append(params, map[string]any{"name": q.Name, "in": "query", "description": q.Description, "schema": s})
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.Body != nil {
			op["requestBody"] = map[string]any{"required": !rt.BodyOptional,
				"content": map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(rt.Body))}}}
		}
		status := rt.Status
		if status == 0 {
			status = http.StatusOK
		}
		content := map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(rt.Result))}}
		if reflect.TypeOf(rt.Result) == csvType {
			content = map[string]any{"text/csv": map[string]any{"schema": map[string]any{"type": "string"}}}
		}
		responses := map[string]any{
			strconv.Itoa(status): map[string]any{"description": http.StatusText(status), "content": content},
			"500":                errResp("Internal error"),
		}
		if rt.Public {
			op["security"] = []any{}
		} else {
			responses["401"] = errResp("Missing, malformed, unknown or revoked API key")
			responses["400"] = errResp("Validation failed; details are keyed by field")
			if strings.Contains(rt.Path, "{") {
				responses["404"] = errResp("Not found")
			}
			if rt.Method == "POST" || rt.Method == "PATCH" || rt.Method == "PUT" {
				responses["409"] = errResp("A name already taken, a concurrent change, or a send that cannot be retried")
				responses["413"] = errResp("Body over 64 KiB")
			}
		}
		op["responses"] = responses
		item, _ := paths[rt.Path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[rt.Path] = item
		}
		item[strings.ToLower(rt.Method)] = op
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "Pruuv admin API",
			"version":     "1",
			"description": "Clients, funnels, stages, webhook tokens, events, funnel reports, ad platform connections, Pixel sites and the conversion log of a Pruuv instance. Authenticate with an admin API key: Authorization: Bearer pruuv_key_…",
		},
		"security": []any{map[string]any{"apiKey": []any{}}},
		"components": map[string]any{
			"securitySchemes": map[string]any{"apiKey": map[string]any{"type": "http", "scheme": "bearer", "description": "An admin API key (pruuv apikey create, or the dashboard's API keys page)"}},
			"schemas":         map[string]any{"Error": errSchema, "Event": eventSchema()},
		},
		"paths": paths,
	}
}

var (
	timeType  = reflect.TypeOf(time.Time{})
	eventType = reflect.TypeOf(event.Event{})
	rawType   = reflect.TypeOf(rawJSON(nil))
	csvType   = reflect.TypeOf(csvFile{})
	rowType   = reflect.TypeOf(report.JSONRow{})
	dateType  = reflect.TypeOf(report.Date{})
)

// reportRowSchema follows report.JSONRow's MarshalJSON: the breakdown
// field, when there is one, is the one property not listed.
func reportRowSchema() map[string]any {
	return map[string]any{
		"type":     "object",
		"required": []string{"stage_id", "stage_name", "position", "contacts", "revenue", "conversion_from_previous"},
		"properties": map[string]any{
			"stage_id":                 map[string]any{"type": "string"},
			"stage_name":               map[string]any{"type": "string"},
			"position":                 map[string]any{"type": "integer"},
			"contacts":                 map[string]any{"type": "integer"},
			"revenue":                  map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "number"}},
			"conversion_from_previous": map[string]any{"type": []string{"number", "null"}},
		},
		"additionalProperties": map[string]any{"type": []string{"string", "null"}},
	}
}

// eventSchema follows event.Event's MarshalJSON: every payload field, null
// when absent.
func eventSchema() map[string]any {
	props := map[string]any{
		"event_id":    map[string]any{"type": "string", "format": "uuid"},
		"stage_id":    map[string]any{"type": "string"},
		"source":      map[string]any{"type": "string", "enum": []string{"webhook", "pixel", "import"}},
		"received_at": map[string]any{"type": "string", "format": "date-time"},
	}
	req := []string{"event_id", "stage_id", "source", "received_at"}
	for _, fd := range event.Schema {
		t := "string"
		if fd.Numeric() {
			t = "number"
		}
		props[fd.Name] = map[string]any{"type": []string{t, "null"}}
		req = append(req, fd.Name)
	}
	return map[string]any{"type": "object", "required": req, "properties": props}
}

// schemaOf is the JSON Schema of what encoding/json makes of t.
func schemaOf(t reflect.Type) map[string]any {
	switch {
	case t == eventType:
		return map[string]any{"$ref": "#/components/schemas/Event"}
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{"type": "object"}
	case t == rowType:
		return reportRowSchema()
	case t == dateType:
		return map[string]any{"type": "string", "format": "date"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return map[string]any{"anyOf": []any{schemaOf(t.Elem()), map[string]any{"type": "null"}}}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object"}
	case reflect.Struct:
		props := map[string]any{}
		var req []string
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if !f.IsExported() || tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if name == "" {
				name = f.Name
			}
			props[name] = schemaOf(f.Type)
			if !strings.Contains(opts, "omitempty") {
				req = append(req, name)
			}
		}
		s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if req != nil {
			s["required"] = req
		}
		return s
	}
	return map[string]any{}
}
