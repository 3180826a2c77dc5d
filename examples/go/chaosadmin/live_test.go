package chaosadmin_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-chaos-proxy/examples/go/chaosadmin"
)

// TestAgainstARunningProxy drives the client against a proxy that is already running (no
// Docker): tests/integration/clients/test_thin_admin_clients.py starts one in front of a real
// broker, produces the records and sets:
//
//	CHAOSADMIN_ADMIN_URL  the admin API, e.g. http://127.0.0.1:9190
//	CHAOSADMIN_TOKEN      its token (may be empty)
//	CHAOSADMIN_BOOTSTRAP  the proxy's bootstrap address
//	CHAOSADMIN_TOPIC      a topic holding CHAOSADMIN_RECORDS records
//	CHAOSADMIN_GROUP      a consumer group id no one else uses
//
// A franz-go consumer of that group joins through the proxy while a rule answers its first
// SyncGroup with NOT_COORDINATOR; the test waits for that event through the client.
func TestAgainstARunningProxy(t *testing.T) {
	adminURL := os.Getenv("CHAOSADMIN_ADMIN_URL")
	if adminURL == "" {
		t.Skip("CHAOSADMIN_ADMIN_URL is not set: this test needs a running proxy (see its comment)")
	}
	bootstrap, topic, group := os.Getenv("CHAOSADMIN_BOOTSTRAP"), os.Getenv("CHAOSADMIN_TOPIC"),
		os.Getenv("CHAOSADMIN_GROUP")
	records, err := strconv.Atoi(os.Getenv("CHAOSADMIN_RECORDS"))
	if err != nil {
		t.Fatalf("CHAOSADMIN_RECORDS: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := chaosadmin.New(adminURL, os.Getenv("CHAOSADMIN_TOKEN"))

	if err := admin.Healthz(ctx); err != nil {
		t.Fatalf("healthz: %v", err)
	}
	var refused *chaosadmin.Error
	if _, err := chaosadmin.New(adminURL, "not-the-token").Rules(ctx); !errors.As(err, &refused) || refused.Status != 401 {
		t.Fatalf("a wrong token: want a 401 *Error, got %v", err)
	}
	if _, err := admin.ClearRules(ctx); err != nil {
		t.Fatalf("clear: %v", err)
	}
	const ruleID = "go-sync-moved"
	added, err := admin.AddRule(ctx, fmt.Sprintf(`{"id": %q,
		"match": {"apis": ["SyncGroup"], "group_id": %q},
		"action": {"type": "error", "error": "NOT_COORDINATOR"},
		"dosage": {"max_injections": 1}}`, ruleID, group))
	if err != nil || added["id"] != ruleID {
		t.Fatalf("add: %v %v", added, err)
	}
	// A second rule as a map, listed and removed again.
	if _, err := admin.AddRule(ctx, map[string]any{"id": "go-unused",
		"match":  map[string]any{"apis": []string{"Heartbeat"}, "group_id": group + "-nobody"},
		"action": map[string]any{"type": "delay", "fixed_ms": 10}}); err != nil {
		t.Fatalf("add as a map: %v", err)
	}
	rules, err := admin.Rules(ctx)
	if err != nil || len(rules) != 2 || rules[0]["id"] != ruleID || rules[1]["id"] != "go-unused" {
		t.Fatalf("list: %v %v", rules, err)
	}
	if err := admin.RemoveRule(ctx, "go-unused"); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := admin.AddRule(ctx, `{"match": {"apis": ["SyncGrup"]}, "action": {"type": "error"}}`); !errors.As(err, &refused) || refused.Status != 422 {
		t.Fatalf("a rule with a typo: want a 422 *Error, got %v", err)
	}
	t.Logf("refused as it should be: %v", refused)

	since, err := admin.LastSeq(ctx)
	if err != nil {
		t.Fatalf("last seq: %v", err)
	}
	if got := consume(ctx, t, bootstrap, topic, group, records); got < records {
		t.Fatalf("consumed %d of %d records", got, records)
	}

	waitCtx, waitCancel := context.WithTimeout(ctx, 60*time.Second)
	defer waitCancel()
	filter := chaosadmin.EventFilter{API: "SyncGroup", Group: group, Since: since}
	event, err := admin.WaitForEvent(waitCtx, filter, chaosadmin.InjectedBy(ruleID))
	if err != nil {
		t.Fatalf("wait for the injected SyncGroup: %v", err)
	}
	if event["error"] != "NOT_COORDINATOR" || event["group"] != group {
		t.Fatalf("the injected event: %v", event)
	}
	t.Logf("injected event seq=%d api=%v error=%v fault=%v", chaosadmin.Seq(event), event["api"],
		event["error"], event["fault"])
	events, err := admin.Events(ctx, filter)
	if err != nil || len(events) < 2 {
		t.Fatalf("events: want the failed SyncGroup and the one after it, got %v %v", events, err)
	}
	rule, err := admin.Rule(ctx, ruleID)
	if err != nil {
		t.Fatalf("rule: %v", err)
	}
	if stats, _ := rule["stats"].(map[string]any); stats["injected"] != float64(1) {
		t.Fatalf("stats: want injected 1, got %v", rule["stats"])
	}
	if err := admin.RemoveRule(ctx, ruleID); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if rules, err := admin.Rules(ctx); err != nil || len(rules) != 0 {
		t.Fatalf("after remove: %v %v", rules, err)
	}
	var missing *chaosadmin.Error
	if err := admin.RemoveRule(ctx, ruleID); !errors.As(err, &missing) || missing.Status != 404 {
		t.Fatalf("removing it twice: want a 404 *Error, got %v", err)
	}
}

// consume reads the topic as a member of group through the proxy until it has want records.
func consume(ctx context.Context, t *testing.T, bootstrap, topic, group string, want int) int {
	t.Helper()
	client, err := kgo.NewClient(
		kgo.SeedBrokers(bootstrap),
		kgo.ClientID("admin-client-check-go"),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	defer client.Close()
	got := 0
	for got < want && ctx.Err() == nil {
		fetches := client.PollFetches(ctx)
		fetches.EachError(func(topic string, partition int32, err error) {
			t.Logf("fetch error %s/%d: %v", topic, partition, err)
		})
		got += fetches.NumRecords()
	}
	return got
}
