// Package conversion sends funnel events back to the ad platforms as
// conversions. This file is the contract between the queue that decides what
// to send and when (this package) and the platform clients that know each
// wire format (conversion/meta, conversion/google, conversion/tiktok,
// conversion/microsoft).
package conversion

import (
	"context"
	"net/http"
	"time"

	"github.com/pruuv/pruuv/internal/event"
)

// Platform names an ad platform.
type Platform string

// The platforms Pruuv sends to.
const (
	Meta      Platform = "meta"
	Google    Platform = "google"
	TikTok    Platform = "tiktok"
	Microsoft Platform = "microsoft"
)

// Platforms lists every platform in a fixed order.
var Platforms = []Platform{Meta, Google, TikTok, Microsoft}

// Status is where one event's send to one platform stands, as the audit log
// shows it.
type Status string

// The statuses of a send.
const (
	StatusPending  Status = "pending"  // queued, not tried yet
	StatusRetrying Status = "retrying" // tried, failed transiently, will be tried again
	StatusSent     Status = "sent"     // the platform accepted it
	StatusFailed   Status = "failed"   // the platform refused it, or retries ran out
	StatusSkipped  Status = "skipped"  // never sent; Reason says why
)

// Skip reasons shared by every platform. A client may return its own, in the
// same snake_case style, with a Detail saying more.
const (
	SkipNoClickID        = "no_click_id"             // no signal this platform can match on
	SkipNoConnection     = "no_connection"           // the client has no connection on the platform
	SkipNoMapping        = "no_mapping"              // the stage sends nothing to the platform
	SkipOutsideWindow    = "outside_window"          // too old (or too far ahead) for the platform to accept
	SkipNoClickTimestamp = "missing_click_timestamp" // the platform needs the click time and the event has none
	SkipMissingValue     = "missing_value"           // e.g. a Meta Purchase without value and currency
)

// ClickClockSkew is how far a conversion may seem to come before its click
// before a client calls the pair impossible. click_timestamp can come from a
// visitor's clock (the Pixel), which may run fast — by hours, when its time
// zone is set wrong — while the conversion's time is the server's; the
// platforms judge by their own record of the click, not ours.
const ClickClockSkew = 24 * time.Hour

// Conversion is one event as a platform client sends it.
type Conversion struct {
	// EventID is Pruuv's event id. Every attempt for the event carries it (or
	// a value derived from it alone) as the platform's dedup key.
	EventID string
	StageID string
	// EventName is the stage's mapping on this platform: a Meta or TikTok
	// event name (Lead, Purchase, SubmitForm…), a Google conversion action id,
	// a Microsoft conversion goal name.
	EventName string
	// Time is when the conversion happened: data_timestamp when the sender
	// gave one, else when Pruuv received the event.
	Time       time.Time
	ReceivedAt time.Time
	// Fields holds every stored field: click ids, fbc/fbp, click_timestamp,
	// revenue and currency, the email and phone hashes, client IP, user agent
	// and source URL.
	Fields event.Fields
}

// Connection is a client's account on one platform, its settings decrypted
// (secrets included, in memory only).
type Connection struct {
	ID       string
	ClientID string
	Platform Platform
	Settings map[string]string
	// SaveSecret stores a new value of one of the connection's secret
	// settings, e.g. a refresh token the platform rotated, so that it
	// outlives the process. Settings keeps the value the connection was
	// loaded with; the next load has the new one. It fails when key is not a
	// Secret key, when value is empty, and with store.ErrConflict when the
	// connection was changed since it was loaded (the change wins). nil means
	// the connection cannot be saved (tests): a client then keeps the value
	// in memory only. A client never fails a send because saving failed.
	SaveSecret func(ctx context.Context, key, value string) error
}

// Outcome is what became of one conversion in one attempt.
type Outcome int

// The outcomes of an attempt.
const (
	Sent      Outcome = iota + 1 // accepted by the platform
	Transient                    // no definite answer, a 5xx, a 429, a timeout: try again later
	Permanent                    // refused (auth, validation, unknown click…): never retried
)

// Result is the answer for one conversion of a batch.
type Result struct {
	Outcome    Outcome
	HTTPStatus int           // 0 when no HTTP answer came (timeout, refused connection)
	Message    string        // the platform's own message, for the audit log; never a secret
	RetryAfter time.Duration // the platform's Retry-After, when it gave one
}

// Verdict is a client's judgement of a conversion before sending.
type Verdict struct {
	Skip   string // a skip reason, or "" when the conversion can be sent
	Detail string // human words for Skip
	// NotBefore delays a sendable conversion the platform would refuse as
	// too recent (e.g. a click less than 6 hours old for Google Ads).
	NotBefore time.Time
}

// Key documents one connection setting.
type Key struct {
	Name     string
	Required bool
	Secret   bool   // sealed at rest; shown back only as a hint
	Default  string // used when the setting is absent
	Doc      string
}

// Endpoints are the platforms' base URLs; tests and sandboxes point them at
// local servers (PRUUV_META_API_URL and the like).
type Endpoints struct {
	Meta              string // https://graph.facebook.com
	GoogleDataManager string // https://datamanager.googleapis.com
	GoogleAds         string // https://googleads.googleapis.com
	GoogleOAuth       string // https://oauth2.googleapis.com
	TikTok            string // https://business-api.tiktok.com
	Microsoft         string // https://campaign.api.bingads.microsoft.com
	MicrosoftOAuth    string // https://login.microsoftonline.com
}

// DefaultEndpoints are the real platforms.
var DefaultEndpoints = Endpoints{
	Meta:              "https://graph.facebook.com",
	GoogleDataManager: "https://datamanager.googleapis.com",
	GoogleAds:         "https://googleads.googleapis.com",
	GoogleOAuth:       "https://oauth2.googleapis.com",
	TikTok:            "https://business-api.tiktok.com",
	Microsoft:         "https://campaign.api.bingads.microsoft.com",
	MicrosoftOAuth:    "https://login.microsoftonline.com",
}

// Client knows one platform's wire format and rules. Clients are safe for
// concurrent use and hold no state but caches (e.g. OAuth access tokens).
type Client interface {
	Platform() Platform
	// Keys lists the connection settings, for the CLI, the docs and Validate.
	Keys() []Key
	// Validate checks a connection's settings offline when it is added.
	Validate(settings map[string]string) error
	// HasSignal reports whether the event carries something this platform
	// can match on (its click ids, fbc/fbp, email or phone hashes…). An event
	// without one is skipped with SkipNoClickID.
	HasSignal(f *event.Fields) bool
	// Check applies the platform's rules before sending: time windows,
	// required fields. now is the time of the send run.
	Check(c *Conversion, now time.Time) Verdict
	// MaxBatch is the platform's per-request limit on conversions.
	MaxBatch() int
	// MinInterval is the pause between two requests on one connection that
	// keeps a run inside the platform's quota.
	MinInterval() time.Duration
	// Send delivers one batch (at most MaxBatch conversions, all on conn) and
	// returns one Result per conversion, in order. It never returns fewer:
	// a failure of the whole request is a Result for each conversion. A
	// request refused because of one conversion marks that one Permanent and
	// the others Transient, so they go again without it.
	Send(ctx context.Context, conn Connection, batch []Conversion) []Result
	// Summary is a redacted one-line description of what is sent for c, for
	// the audit log: field names, click ids shortened, hashes cut to 8
	// characters, never a credential.
	Summary(c *Conversion) string
}

// HTTPDoer is what clients send requests with; *http.Client satisfies it.
type HTTPDoer interface {
	Do(*http.Request) (*http.Response, error)
}
