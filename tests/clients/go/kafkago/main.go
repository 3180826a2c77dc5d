// Command kafkago is the consumer harness for github.com/segmentio/kafka-go's Reader with a
// GroupID, the way most kafka-go users consume.
//
// The Reader has no rebalance callbacks, so assignments are observed through its Logger:
// the library passes the format string and the raw arguments, and the harness recognizes
// the join, subscribe and end-of-generation messages (see tracker). Everything sent to the
// ErrorLogger becomes a `log` event. Contract: tests/clients/README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/kafka-chaos-proxy/tests/clients/go/internal/harness"
)

const library = "github.com/segmentio/kafka-go"

// errorPause keeps a FetchMessage that fails instantly from becoming a hot loop.
const errorPause = 100 * time.Millisecond

// autoCommitInterval mirrors the Java client's auto.commit.interval.ms default order of
// magnitude, scaled down for short scenario runs.
const autoCommitInterval = time.Second

func main() {
	f := harness.ParseFlags()
	em := harness.NewEmitter("kafka-go")
	defer em.GuardPanic()
	em.Emit("started", map[string]any{
		"library": library, "version": harness.ModuleVersion(library), "protocol": f.Protocol,
	})
	stderr := log.New(os.Stderr, "[kafka-go] ", log.LstdFlags|log.Lmicroseconds)
	tr := &tracker{em: em, log: stderr, reportCommits: f.AutoCommit()}
	cfg := kafka.ReaderConfig{
		Brokers:           []string{f.Bootstrap},
		GroupID:           f.Group,
		Topic:             f.Topic,
		Dialer:            &kafka.Dialer{ClientID: f.ClientID, Timeout: 10 * time.Second},
		SessionTimeout:    f.SessionTimeout(),
		HeartbeatInterval: f.HeartbeatInterval(),
		RebalanceTimeout:  f.RebalanceTimeout(),
		// A short fetch wait keeps Close (and so SIGTERM handling) prompt.
		MaxWait:     500 * time.Millisecond,
		StartOffset: kafka.LastOffset,
		Logger:      kafka.LoggerFunc(tr.info),
		ErrorLogger: kafka.LoggerFunc(tr.error),
	}
	if f.FromBeginning {
		cfg.StartOffset = kafka.FirstOffset
	}
	if f.AutoCommit() {
		// kafka-go's auto-commit: ReadMessage marks, a background loop commits each tick
		// and reports failures only to the ErrorLogger. With --commit both the harness
		// also calls CommitMessages, which then only queues for that loop.
		cfg.CommitInterval = autoCommitInterval
	}
	switch f.Assignor {
	case "range":
		cfg.GroupBalancers = []kafka.GroupBalancer{kafka.RangeGroupBalancer{}}
	case "roundrobin":
		cfg.GroupBalancers = []kafka.GroupBalancer{kafka.RoundRobinGroupBalancer{}}
	}
	em.Config(f, effective(cfg))
	if msg := harness.Unsupported(
		harness.Check{Bad: f.Protocol == "consumer", Msg: "kafka-go implements only the classic group protocol, not KIP-848 (--protocol consumer)"},
		harness.Check{Bad: f.InstanceID != "", Msg: "kafka-go's Reader has no static membership (group.instance.id); --instance-id is unsupported"},
		harness.Check{Bad: f.Assignor == "sticky" || f.Assignor == "cooperative-sticky", Msg: "kafka-go has no " + f.Assignor + " group balancer (it has range and roundrobin)"},
		harness.Check{Bad: f.RequestTimeoutMs > 0, Msg: "kafka-go's Reader does not expose its request timeouts; --request-timeout-ms is unsupported"},
		harness.Check{Bad: f.CommitInRevoke, Msg: "kafka-go's Reader has no revoke callback; --commit-in-revoke is unsupported"},
		harness.Check{Bad: f.AsyncProcessing, Msg: "--async-processing is supported by the sarama harness only"},
		harness.Check{Bad: f.ConsumeMode == "once", Msg: "kafka-go has no Consume call that runs a group session; --consume-mode once is unsupported"},
	); msg != "" {
		em.Refuse(msg)
	}

	run := harness.NewRun(f.MaxRuntimeS, em)
	reader := kafka.NewReader(cfg)

	how, exitErr := consume(run, reader, f, em)
	if closeErr := harness.CloseWithin(reader.Close); closeErr != nil {
		em.Error(closeErr, "Close")
	}
	if run.Stopped() {
		how, exitErr = run.Reason(), nil
	}
	em.Finish(how, exitErr)
}

// effective is what the `config` event adds to the options: the Reader's settings.
func effective(cfg kafka.ReaderConfig) map[string]any {
	balancers := cfg.GroupBalancers
	if len(balancers) == 0 { // what NewReader puts there
		balancers = []kafka.GroupBalancer{kafka.RangeGroupBalancer{}, kafka.RoundRobinGroupBalancer{}}
	}
	assignors := []string{}
	for _, b := range balancers {
		assignors = append(assignors, b.ProtocolName())
	}
	return map[string]any{
		"assignors":          assignors,
		"request_timeout_ms": nil, // not configurable through the Reader
		"library_config": map[string]any{
			"CommitInterval":    cfg.CommitInterval.String(),
			"SessionTimeout":    cfg.SessionTimeout.String(),
			"HeartbeatInterval": cfg.HeartbeatInterval.String(),
			"RebalanceTimeout":  cfg.RebalanceTimeout.String(),
			"MaxWait":           cfg.MaxWait.String(),
			"Dialer.Timeout":    cfg.Dialer.Timeout.String(),
			"StartOffset":       cfg.StartOffset,
		},
	}
}

// consume reads until the run stops or the reader is closed under us. --commit manual
// fetches and commits each message; auto reads (the library commits); both reads and also
// commits explicitly.
func consume(run *harness.Run, reader *kafka.Reader, f harness.Flags, em *harness.Emitter) (string, error) {
	var streak harness.ErrorStreak
	manual := f.Commit == "manual"
	for {
		var msg kafka.Message
		var err error
		if manual {
			msg, err = reader.FetchMessage(run.Ctx)
		} else {
			msg, err = reader.ReadMessage(run.Ctx)
		}
		if err != nil {
			if run.Stopped() {
				return "", nil
			}
			em.Error(err, map[bool]string{true: "FetchMessage", false: "ReadMessage"}[manual])
			// io.EOF: the reader was closed, nothing more will come.
			if errors.Is(err, io.EOF) || streak.Observe(err) {
				return "returned_error", err
			}
			select {
			case <-run.Ctx.Done():
			case <-time.After(errorPause):
			}
			continue
		}
		em.Emit("record", map[string]any{
			"topic": msg.Topic, "partition": msg.Partition, "offset": msg.Offset,
		})
		streak.Reset()
		harness.Sleep(run.Ctx, f.ProcessingDelay())
		if f.ExplicitCommit() {
			// Under --commit both, CommitMessages only queues for the auto-commit loop and
			// returns nil: the event says it did not see the outcome.
			commit(reader, msg, em, !f.AutoCommit())
		}
	}
}

// commit runs with its own deadline rather than the run context, so a SIGTERM arriving
// mid-commit lets the commit finish (as a graceful consumer would) instead of cancelling it.
func commit(reader *kafka.Reader, msg kafka.Message, em *harness.Emitter, confirmed bool) {
	ctx, cancel := context.WithTimeout(context.Background(), harness.CloseTimeout)
	defer cancel()
	err := reader.CommitMessages(ctx, msg)
	var errText any
	if err != nil {
		errText = err.Error()
	}
	fields := map[string]any{
		"ok": err == nil, "error": errText,
		"offsets": map[string]map[string]int64{msg.Topic: {fmt.Sprint(msg.Partition): msg.Offset + 1}},
	}
	if !confirmed {
		fields["confirmed"] = false
	}
	em.Emit("commit", fields)
}

// tracker turns the Reader's log calls into assigned/revoked/error events. It matches on
// the library's format strings, which are stable across kafka-go 0.4.x; an unrecognized
// message is only logged to stderr.
type tracker struct {
	em  *harness.Emitter
	log *log.Logger
	// reportCommits turns the library's "committed offsets" log into commit events; only
	// in auto mode, where the harness has no call site that sees the outcome.
	reportCommits bool

	mu       sync.Mutex
	member   any // from "Joined group": the member id and generation of the newest join
	gen      any
	assigned map[string][]int32 // nil when no generation is active
}

func (t *tracker) info(format string, args ...any) {
	t.log.Printf(format, args...)
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case strings.HasPrefix(format, "Joined group ") && len(args) >= 3:
		t.member, t.gen = fmt.Sprint(args[1]), args[2]
	case strings.HasPrefix(format, "subscribed to topics and partitions") && len(args) >= 1:
		t.assigned = topicPartitions(args[0])
		t.em.Emit("assigned", map[string]any{
			"partitions": harness.Partitions(t.assigned), "generation": t.gen, "member_id": t.member,
		})
	case strings.HasPrefix(format, "stopped commit for group") && t.assigned != nil:
		// The generation's commit loop ends when the generation does: the Reader then
		// unsubscribes from everything it held.
		t.em.Emit("revoked", map[string]any{
			"partitions": harness.Partitions(t.assigned), "generation": t.gen, "member_id": t.member,
		})
		t.assigned = nil
	case strings.HasPrefix(format, "committed offsets for group") && t.reportCommits && len(args) >= 2:
		t.em.Emit("commit", map[string]any{
			"ok": true, "error": nil, "offsets": parseCommitReport(fmt.Sprint(args[1])),
		})
	}
}

// parseCommitReport reads the body of kafka-go's "committed offsets" log message:
// "\ttopic: T" lines, each followed by "\t\tpartition P: OFFSET" lines.
func parseCommitReport(report string) map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	topic := ""
	for _, line := range strings.Split(report, "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "topic: "); ok {
			topic = rest
			out[topic] = map[string]int64{}
			continue
		}
		var partition int32
		var offset int64
		if _, err := fmt.Sscanf(line, "partition %d: %d", &partition, &offset); err == nil && topic != "" {
			out[topic][fmt.Sprint(partition)] = offset
		}
	}
	return out
}

// error forwards the ErrorLogger as `log` events, not `error` events: the Reader retries
// joins and commits internally and reports them only to this logger, which an application
// does not act on. What the application sees comes back from FetchMessage/CommitMessages.
func (t *tracker) error(format string, args ...any) {
	t.log.Printf("ERROR "+format, args...)
	t.em.Emit("log", map[string]any{
		"level": "ERROR", "logger": "kafka-go ErrorLogger",
		"message": strings.TrimSpace(fmt.Sprintf(format, args...)),
	})
}

// topicPartitions reads the Reader's map[topicPartition]int64 (an unexported key type with
// fields topic and partition) through reflection, which may read unexported fields.
func topicPartitions(offsets any) map[string][]int32 {
	out := map[string][]int32{}
	v := reflect.ValueOf(offsets)
	if v.Kind() != reflect.Map {
		return out
	}
	for _, key := range v.MapKeys() {
		if key.Kind() != reflect.Struct {
			continue
		}
		topic, partition := key.FieldByName("topic"), key.FieldByName("partition")
		if !topic.IsValid() || !partition.IsValid() {
			continue
		}
		out[topic.String()] = append(out[topic.String()], int32(partition.Int()))
	}
	return out
}
