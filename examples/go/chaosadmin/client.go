// Package chaosadmin is a thin client of the kafka-chaos-proxy admin HTTP API
// (docs/admin-api.md) for Go tests: add, remove and list fault rules, clear them, read
// coordination events with the server's filters, wait for an event, health.
//
// One file and the standard library only (net/http, encoding/json): copy it into your module,
// or import it from this example module. Rules go in as JSON text or as any value
// encoding/json marshals (a map, a struct); rules and events come back as maps.
//
//	admin := chaosadmin.New("http://localhost:9190", token)
//	since, _ := admin.LastSeq(ctx)
//	_, err := admin.AddRule(ctx, `{"id": "sync-moved",
//	    "match": {"apis": ["SyncGroup"], "group_id": "orders"},
//	    "action": {"type": "error", "error": "NOT_COORDINATOR"},
//	    "dosage": {"max_injections": 1}}`)
//	// ... a consumer of group orders joins through the proxy ...
//	event, err := admin.WaitForEvent(ctx,
//	    chaosadmin.EventFilter{API: "SyncGroup", Group: "orders", Since: since},
//	    chaosadmin.InjectedBy("sync-moved"))
package chaosadmin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Rule is a fault rule as the API returns it (with "id", "stats", "trigger", "warnings").
type Rule = map[string]any

// Event is one coordination event ("seq", "api", "group", "member_id", "error", "fault", ...).
type Event = map[string]any

// PollInterval is how often WaitForEvent asks for new events.
var PollInterval = 100 * time.Millisecond

// page is how many events one request asks for while paging (the API allows up to 10000).
const page = 500

// Client talks to one proxy's admin API.
type Client struct {
	// BaseURL of the admin API, e.g. "http://localhost:9190".
	BaseURL string
	// Token is the proxy's admin token (KCP_ADMIN_TOKEN); empty for a proxy without one.
	Token string
	// HTTP is the client used; New sets one with a 30 s timeout.
	HTTP *http.Client
}

// New returns a client of the admin API at baseURL.
func New(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token,
		HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// Error is an answer other than the one expected; Status is 0 when there was no answer.
type Error struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("%s %s: %s", e.Method, e.Path, e.Message)
	}
	return fmt.Sprintf("%s %s answered %d: %s", e.Method, e.Path, e.Status, e.Message)
}

// Healthz returns nil when GET /healthz answers 200 with status ok (it never needs the token).
func (c *Client) Healthz(ctx context.Context) error {
	var body map[string]any
	if err := c.call(ctx, http.MethodGet, "/healthz", nil, http.StatusOK, &body); err != nil {
		return err
	}
	if body["status"] != "ok" {
		return &Error{Method: http.MethodGet, Path: "/healthz", Status: http.StatusOK,
			Message: fmt.Sprintf("status %v", body["status"])}
	}
	return nil
}

// AddRule adds a rule: JSON text (string, []byte, json.RawMessage) or any value that
// encoding/json marshals. It returns the stored rule, with its id (assigned if it had none).
// A refused rule is an *Error with the API's message (422: what to fix; 409: the id exists).
func (c *Client) AddRule(ctx context.Context, rule any) (Rule, error) {
	var body []byte
	switch r := rule.(type) {
	case string:
		body = []byte(r)
	case []byte:
		body = r
	case json.RawMessage:
		body = r
	default:
		encoded, err := json.Marshal(rule)
		if err != nil {
			return nil, fmt.Errorf("chaosadmin: rule as JSON: %w", err)
		}
		body = encoded
	}
	var out Rule
	err := c.call(ctx, http.MethodPost, "/faults", body, http.StatusCreated, &out)
	return out, err
}

// Rule returns one rule with its stats ("stats": {"matched": n, "injected": n}).
func (c *Client) Rule(ctx context.Context, id string) (Rule, error) {
	var out Rule
	err := c.call(ctx, http.MethodGet, "/faults/"+url.PathEscape(id), nil, http.StatusOK, &out)
	return out, err
}

// Rules returns every rule, in rule order.
func (c *Client) Rules(ctx context.Context) ([]Rule, error) {
	var out []Rule
	err := c.call(ctx, http.MethodGet, "/faults", nil, http.StatusOK, &out)
	return out, err
}

// RemoveRule deletes one rule; an unknown id is an *Error with Status 404.
func (c *Client) RemoveRule(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/faults/"+url.PathEscape(id), nil,
		http.StatusNoContent, nil)
}

// ClearRules deletes every rule and returns how many there were.
func (c *Client) ClearRules(ctx context.Context) (int, error) {
	var out struct {
		Removed int `json:"removed"`
	}
	err := c.call(ctx, http.MethodDelete, "/faults", nil, http.StatusOK, &out)
	return out.Removed, err
}

// EventFilter holds the server-side filters of GET /events; empty fields do not filter.
type EventFilter struct {
	Group  string // only events of this group id
	Member string // only events of this member id
	API    string // only this API, by name (any case, e.g. SyncGroup) or key
	Since  int64  // only events with a larger seq (0: every buffered event)
}

func (f EventFilter) path(after int64, limit int) string {
	q := url.Values{}
	q.Set("since", strconv.FormatInt(after, 10))
	q.Set("limit", strconv.Itoa(limit))
	if f.Group != "" {
		q.Set("group", f.Group)
	}
	if f.Member != "" {
		q.Set("member", f.Member)
	}
	if f.API != "" {
		q.Set("api", f.API)
	}
	return "/events?" + q.Encode()
}

// Events returns the buffered events that match f, oldest first (every page of them).
func (c *Client) Events(ctx context.Context, f EventFilter) ([]Event, error) {
	var out []Event
	after := f.Since
	for {
		var got []Event
		if err := c.call(ctx, http.MethodGet, f.path(after, page), nil, http.StatusOK, &got); err != nil {
			return out, err
		}
		out = append(out, got...)
		if len(got) < page {
			return out, nil
		}
		after = Seq(got[len(got)-1])
	}
}

// LastSeq returns the seq of the newest event (0 when there is none): pass it as
// EventFilter.Since to look only at what happens from now on.
func (c *Client) LastSeq(ctx context.Context) (int64, error) {
	var newest []Event
	if err := c.call(ctx, http.MethodGet, "/events?limit=1", nil, http.StatusOK, &newest); err != nil {
		return 0, err
	}
	if len(newest) == 0 {
		return 0, nil
	}
	return Seq(newest[0]), nil
}

// WaitForEvent polls GET /events?since= until an event that matches f and match (nil: any)
// arrives, and returns it; bound it with the context's deadline.
func (c *Client) WaitForEvent(ctx context.Context, f EventFilter, match func(Event) bool) (Event, error) {
	after := f.Since
	ticker := time.NewTicker(PollInterval)
	defer ticker.Stop()
	for {
		var got []Event
		if err := c.call(ctx, http.MethodGet, f.path(after, page), nil, http.StatusOK, &got); err != nil {
			return nil, err
		}
		for _, event := range got {
			if seq := Seq(event); seq > after {
				after = seq
			}
			if match == nil || match(event) {
				return event, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("chaosadmin: no matching event (last seq seen %d): %w", after, ctx.Err())
		case <-ticker.C:
		}
	}
}

// InjectedBy matches an event that rule ruleID injected a fault into (its "fault.rule").
func InjectedBy(ruleID string) func(Event) bool {
	return func(event Event) bool {
		var faults []any
		switch f := event["fault"].(type) {
		case map[string]any:
			faults = []any{f}
		case []any: // rules with "chain": one fault per rule that acted
			faults = f
		}
		for _, one := range faults {
			if m, ok := one.(map[string]any); ok && m["rule"] == ruleID {
				return true
			}
		}
		return false
	}
}

// Seq is an event's sequence number.
func Seq(event Event) int64 {
	switch v := event["seq"].(type) {
	case float64:
		return int64(v)
	case json.Number:
		n, _ := v.Int64()
		return n
	}
	return 0
}

func (c *Client) call(ctx context.Context, method, path string, body []byte, want int, out any) error {
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, reader)
	if err != nil {
		return &Error{Method: method, Path: path, Message: err.Error()}
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json") // else the proxy answers 415
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	httpClient := c.HTTP
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return &Error{Method: method, Path: path, Message: err.Error()}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &Error{Method: method, Path: path, Status: resp.StatusCode, Message: err.Error()}
	}
	if resp.StatusCode != want {
		return &Error{Method: method, Path: path, Status: resp.StatusCode, Message: message(data)}
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &Error{Method: method, Path: path, Status: resp.StatusCode,
			Message: "answer is not the JSON expected: " + err.Error()}
	}
	return nil
}

// message is the API's own words: "message" (422), else "detail", else the body.
func message(data []byte) string {
	var body map[string]any
	if json.Unmarshal(data, &body) == nil {
		for _, key := range []string{"message", "detail"} {
			switch v := body[key].(type) {
			case nil:
			case string:
				return v
			default:
				encoded, _ := json.Marshal(v)
				return string(encoded)
			}
		}
	}
	return strings.TrimSpace(string(data))
}
