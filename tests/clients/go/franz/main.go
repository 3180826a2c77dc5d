// Command franz is the consumer harness for github.com/twmb/franz-go's kgo group consumer,
// classic protocol or KIP-848 (--protocol consumer, via kgo.ServerSideBalancer).
//
// franz-go exposes the whole group lifecycle as callbacks (assigned, revoked, lost, auto
// commit results), so every event here comes from the library itself rather than from
// inference. Contract: tests/clients/README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-chaos-proxy/tests/clients/go/internal/harness"
)

const library = "github.com/twmb/franz-go"

func main() {
	f := harness.ParseFlags()
	em := harness.NewEmitter("franz-go")
	defer em.GuardPanic()
	em.Emit("started", map[string]any{
		"library": library, "version": harness.ModuleVersion(library), "protocol": f.Protocol,
	})

	run := harness.NewRun(f.MaxRuntimeS, em)
	cl, err := kgo.NewClient(options(f, em)...)
	if err != nil {
		em.Error(err, "NewClient")
		em.Finish("returned_error", err)
	}

	how, exitErr := poll(run, cl, f.Commit == "manual", em)
	// Close leaves the group (and, with auto-commit, commits what was consumed first).
	if closeErr := harness.CloseWithin(func() error { cl.Close(); return nil }); closeErr != nil {
		em.Error(closeErr, "Close")
	}
	if run.Stopped() {
		how, exitErr = run.Reason(), nil
	}
	em.Finish(how, exitErr)
}

func options(f harness.Flags, em *harness.Emitter) []kgo.Opt {
	membership := func(cl *kgo.Client) (any, any) {
		member, gen := cl.GroupMetadata()
		if member == "" {
			return nil, nil
		}
		return member, gen
	}
	lifecycle := func(event string) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, cl *kgo.Client, parts map[string][]int32) {
			member, gen := membership(cl)
			em.Emit(event, map[string]any{
				"partitions": harness.Partitions(parts), "generation": gen, "member_id": member,
			})
		}
	}
	reset := kgo.NewOffset().AtEnd()
	if f.FromBeginning {
		reset = kgo.NewOffset().AtStart()
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(f.Bootstrap),
		kgo.ClientID(f.ClientID),
		kgo.ConsumerGroup(f.Group),
		kgo.ConsumeTopics(f.Topic),
		kgo.ConsumeResetOffset(reset),
		kgo.SessionTimeout(f.SessionTimeout()),
		kgo.HeartbeatInterval(f.HeartbeatInterval()),
		kgo.RebalanceTimeout(f.RebalanceTimeout()),
		kgo.OnPartitionsAssigned(lifecycle("assigned")),
		kgo.OnPartitionsRevoked(lifecycle("revoked")),
		kgo.OnPartitionsLost(lifecycle("lost")),
		kgo.WithLogger(&logForwarder{em: em, stderr: kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, func() string {
			return "[franz-go] " + time.Now().Format(time.StampMicro) + " "
		})}),
	}
	if f.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(f.InstanceID))
	}
	if f.Protocol == "consumer" {
		// KIP-848. franz-go falls back to classic by itself when the broker lacks
		// ConsumerGroupHeartbeat v1 (Kafka < 4.0); the broker-side group type tells which ran.
		opts = append(opts, kgo.ServerSideBalancer())
	}
	if f.Commit == "manual" {
		opts = append(opts, kgo.DisableAutoCommit())
	} else {
		opts = append(opts, kgo.AutoCommitCallback(
			func(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
				emitCommitResult(em, req, resp, err)
			}))
	}
	return opts
}

// emitCommitResult reports one auto-commit: the request-level error, or else the first
// partition-level error code the broker returned.
func emitCommitResult(em *harness.Emitter, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
	offsets := map[string]map[string]int64{}
	for _, t := range req.Topics {
		offsets[t.Topic] = map[string]int64{}
		for _, p := range t.Partitions {
			offsets[t.Topic][fmt.Sprint(p.Partition)] = p.Offset
		}
	}
	if err == nil && resp != nil {
	found:
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if perr := kerr.ErrorForCode(p.ErrorCode); perr != nil {
					err = fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, perr)
					break found
				}
			}
		}
	}
	var errText any
	if err != nil {
		errText = err.Error()
	}
	em.Emit("commit", map[string]any{"ok": err == nil, "error": errText, "offsets": offsets})
}

// poll is the usual PollFetches loop. It returns how the loop ended when the library (not
// a signal or the runtime limit) ended it.
func poll(run *harness.Run, cl *kgo.Client, manual bool, em *harness.Emitter) (string, error) {
	var streak harness.ErrorStreak
	for {
		fetches := cl.PollFetches(run.Ctx)
		if fetches.IsClientClosed() {
			return "returned_error", kgo.ErrClientClosed
		}
		var gaveUp error
		sawError := false
		fetches.EachError(func(topic string, partition int32, err error) {
			if run.Stopped() && errors.Is(err, context.Canceled) {
				return // our own shutdown, not a library report
			}
			sawError = true
			em.Emit("error", map[string]any{
				"error": err.Error(), "source": "PollFetches", "topic": topic, "partition": partition,
			})
			if streak.Observe(err) {
				gaveUp = err
			}
		})
		var batch []*kgo.Record
		fetches.EachRecord(func(r *kgo.Record) {
			em.Emit("record", map[string]any{"topic": r.Topic, "partition": r.Partition, "offset": r.Offset})
			batch = append(batch, r)
		})
		if len(batch) > 0 {
			streak.Reset()
			gaveUp = nil
		}
		if manual && len(batch) > 0 {
			commit(cl, batch, em)
		}
		if run.Stopped() {
			return "", nil
		}
		if gaveUp != nil {
			return "returned_error", gaveUp
		}
		if sawError && len(batch) == 0 {
			// Keep a failing poll from becoming a hot loop.
			select {
			case <-run.Ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// commit commits one poll batch. It uses its own deadline rather than the run context so a
// SIGTERM arriving mid-commit lets the commit finish, as a graceful consumer would.
func commit(cl *kgo.Client, batch []*kgo.Record, em *harness.Emitter) {
	offsets := map[string]map[string]int64{}
	for _, r := range batch {
		if offsets[r.Topic] == nil {
			offsets[r.Topic] = map[string]int64{}
		}
		key := fmt.Sprint(r.Partition)
		if next := r.Offset + 1; next > offsets[r.Topic][key] {
			offsets[r.Topic][key] = next
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), harness.CloseTimeout)
	defer cancel()
	err := cl.CommitRecords(ctx, batch...)
	var errText any
	if err != nil {
		errText = err.Error()
	}
	em.Emit("commit", map[string]any{"ok": err == nil, "error": errText, "offsets": offsets})
}

// logForwarder writes the client log to stderr and forwards warnings and errors as `log`
// events (as the Python harnesses do): franz-go reports some coordination trouble, such as
// a failed heartbeat that it retries, only in its log, and the evidence must show it.
type logForwarder struct {
	em     *harness.Emitter
	stderr kgo.Logger
}

func (l *logForwarder) Level() kgo.LogLevel { return kgo.LogLevelInfo }

func (l *logForwarder) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	l.stderr.Log(level, msg, keyvals...)
	if level > kgo.LogLevelWarn || level == kgo.LogLevelNone {
		return
	}
	l.em.Emit("log", map[string]any{
		"level": strings.ToUpper(level.String()), "logger": "kgo",
		"message": formatLog(msg, keyvals),
	})
}

// formatLog renders kgo's structured log call as "msg key=value key=value".
func formatLog(msg string, keyvals []any) string {
	var b strings.Builder
	b.WriteString(msg)
	for i := 0; i+1 < len(keyvals); i += 2 {
		fmt.Fprintf(&b, " %v=%v", keyvals[i], keyvals[i+1])
	}
	return b.String()
}
