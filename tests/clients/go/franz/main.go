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
	"sync"
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

	procd := &processed{offsets: map[string]map[int32]kgo.EpochOffset{}}
	opts := options(f, em, procd)
	if msg := harness.Unsupported(
		harness.Check{Bad: f.Assignor != "" && f.Protocol == "consumer", Msg: "--assignor is a classic-protocol setting; under KIP-848 (--protocol consumer) the broker assigns"},
		harness.Check{Bad: f.AsyncProcessing, Msg: "--async-processing is supported by the sarama harness only"},
		harness.Check{Bad: f.ConsumeMode == "once", Msg: "franz-go has no Consume call that runs a group session; --consume-mode once is unsupported"},
	); msg != "" {
		em.Config(f, nil)
		em.Refuse(msg)
	}
	run := harness.NewRun(f.MaxRuntimeS, em)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		em.Config(f, nil)
		em.Error(err, "NewClient")
		em.Finish("returned_error", err)
	}
	em.Config(f, effective(cl))

	how, exitErr := poll(run, cl, f, procd, em)
	// Close leaves the group (and, with auto-commit, commits what was consumed first).
	if closeErr := harness.CloseWithin(func() error { cl.Close(); return nil }); closeErr != nil {
		em.Error(closeErr, "Close")
	}
	if run.Stopped() {
		how, exitErr = run.Reason(), nil
	}
	em.Finish(how, exitErr)
}

// processed is what the application has finished with: the next offset per partition (with
// the record's leader epoch), which --commit-in-revoke commits in OnPartitionsRevoked.
type processed struct {
	mu      sync.Mutex
	offsets map[string]map[int32]kgo.EpochOffset
}

func (p *processed) done(r *kgo.Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.offsets[r.Topic] == nil {
		p.offsets[r.Topic] = map[int32]kgo.EpochOffset{}
	}
	if next := r.Offset + 1; next > p.offsets[r.Topic][r.Partition].Offset {
		p.offsets[r.Topic][r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: next}
	}
}

// of returns the processed offsets of parts (and forgets them: the partitions are leaving).
func (p *processed) of(parts map[string][]int32) map[string]map[int32]kgo.EpochOffset {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]map[int32]kgo.EpochOffset{}
	for topic, ps := range parts {
		for _, part := range ps {
			if eo, ok := p.offsets[topic][part]; ok {
				if out[topic] == nil {
					out[topic] = map[int32]kgo.EpochOffset{}
				}
				out[topic][part] = eo
				delete(p.offsets[topic], part)
			}
		}
	}
	return out
}

// commitInRevoke commits what was processed of the revoked partitions, synchronously, from
// inside OnPartitionsRevoked (franz-go's documented place for it).
func commitInRevoke(ctx context.Context, cl *kgo.Client, parts map[string][]int32, procd *processed, em *harness.Emitter) {
	offsets := procd.of(parts)
	if len(offsets) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), harness.CloseTimeout)
	defer cancel()
	cl.CommitOffsetsSync(cctx, offsets, func(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		emitCommitResult(em, req, resp, err, true)
	})
}

// effective is what the `config` event adds to the options: the client's own values.
func effective(cl *kgo.Client) map[string]any {
	assignors := []string{}
	if bs, ok := cl.OptValue(kgo.Balancers).([]kgo.GroupBalancer); ok {
		for _, b := range bs {
			assignors = append(assignors, b.ProtocolName())
		}
	}
	overhead, _ := cl.OptValue(kgo.RequestTimeoutOverhead).(time.Duration)
	autoInterval, _ := cl.OptValue(kgo.AutoCommitInterval).(time.Duration)
	session, _ := cl.OptValue(kgo.SessionTimeout).(time.Duration)
	return map[string]any{
		"assignors":          assignors,
		"request_timeout_ms": overhead.Milliseconds(),
		"library_config": map[string]any{
			"RequestTimeoutOverhead": overhead.String(),
			"AutoCommitInterval":     autoInterval.String(),
			"DisableAutoCommit":      cl.OptValue(kgo.DisableAutoCommit),
			"SessionTimeout":         session.String(),
		},
	}
}

func options(f harness.Flags, em *harness.Emitter, procd *processed) []kgo.Opt {
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
		kgo.OnPartitionsAssigned(func(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
			procd.of(parts) // a fresh start from the committed offset
			lifecycle("assigned")(ctx, cl, parts)
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
			if f.CommitInRevoke {
				commitInRevoke(ctx, cl, parts, procd, em)
			}
			lifecycle("revoked")(ctx, cl, parts)
		}),
		kgo.OnPartitionsLost(func(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
			procd.of(parts) // gone without a chance to commit
			lifecycle("lost")(ctx, cl, parts)
		}),
		kgo.WithLogger(&logForwarder{em: em, stderr: kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, func() string {
			return "[franz-go] " + time.Now().Format(time.StampMicro) + " "
		})}),
	}
	if f.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(f.InstanceID))
	}
	if f.RequestTimeoutMs > 0 {
		// franz-go's closest setting: the deadline of a request without its own timeout,
		// and the overhead on top of the timeout a request carries (JoinGroup's rebalance
		// timeout, Fetch's max wait).
		opts = append(opts, kgo.RequestTimeoutOverhead(f.RequestTimeout()))
	}
	switch f.Assignor {
	case "range":
		opts = append(opts, kgo.Balancers(kgo.RangeBalancer()))
	case "roundrobin":
		opts = append(opts, kgo.Balancers(kgo.RoundRobinBalancer()))
	case "sticky":
		opts = append(opts, kgo.Balancers(kgo.StickyBalancer()))
	case "cooperative-sticky":
		opts = append(opts, kgo.Balancers(kgo.CooperativeStickyBalancer()))
	}
	if f.Protocol == "consumer" {
		// KIP-848. franz-go falls back to classic by itself when the broker lacks
		// ConsumerGroupHeartbeat v1 (Kafka < 4.0); the broker-side group type tells which ran.
		opts = append(opts, kgo.ServerSideBalancer())
	}
	if !f.AutoCommit() {
		opts = append(opts, kgo.DisableAutoCommit())
	} else {
		opts = append(opts, kgo.AutoCommitCallback(
			func(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
				emitCommitResult(em, req, resp, err, false)
			}))
	}
	return opts
}

// emitCommitResult reports one auto-commit (or commit in the revoke callback): the
// request-level error, or else the first partition-level error code the broker returned.
func emitCommitResult(em *harness.Emitter, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error, inRevoke bool) {
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
	fields := map[string]any{"ok": err == nil, "error": errText, "offsets": offsets}
	if inRevoke {
		fields["in_revoke"] = true
	}
	em.Emit("commit", fields)
}

// poll is the usual PollFetches loop. It returns how the loop ended when the library (not
// a signal or the runtime limit) ended it.
func poll(run *harness.Run, cl *kgo.Client, f harness.Flags, procd *processed, em *harness.Emitter) (string, error) {
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
			harness.Sleep(run.Ctx, f.ProcessingDelay())
			procd.done(r)
			batch = append(batch, r)
		})
		if len(batch) > 0 {
			streak.Reset()
			gaveUp = nil
		}
		if f.ExplicitCommit() && len(batch) > 0 {
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
