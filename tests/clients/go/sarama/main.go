// Command sarama is the consumer harness for github.com/IBM/sarama's ConsumerGroup.
//
// The consume loop is the one sarama's README teaches (call Consume again while the context
// is live), because the "consumer silently stops" bug family lives exactly there: each
// return of Consume is reported (`consume_returned` for nil, `error` source=Consume
// otherwise), so a scenario can see whether the group keeps going or quietly ends.
// `--consume-mode once` is the application that calls Consume a single time.
// Contract: tests/clients/README.md.
package main

import (
	"errors"
	"fmt"
	"hash/fnv"
	"log"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafka-chaos-proxy/tests/clients/go/internal/harness"
)

const library = "github.com/IBM/sarama"

// maxConsumeReturns bounds the README loop: a group that returns from Consume this often
// is stuck in a rejoin storm, and the run ends rather than spinning until --max-runtime-s.
// Errors end it sooner: harness.MaxSameErrorInARow identical ones with no record between.
const maxConsumeReturns = 10000

// errorPause keeps a Consume that fails instantly (e.g. coordinator unreachable) from
// becoming a hot loop; sarama's own rebalance retries already back off inside Consume.
const errorPause = 100 * time.Millisecond

func main() {
	f := harness.ParseFlags()
	em := harness.NewEmitter("sarama")
	defer em.GuardPanic()
	em.Emit("started", map[string]any{
		"library": library, "version": harness.ModuleVersion(library), "protocol": f.Protocol,
	})
	cfg := config(f)
	em.Config(f, effective(cfg))
	if f.Protocol == "consumer" {
		em.Refuse("sarama implements only the classic group protocol, not KIP-848 (--protocol consumer)")
	}
	sarama.Logger = &logForwarder{em: em, stderr: log.New(os.Stderr, "[sarama] ", log.LstdFlags|log.Lmicroseconds)}

	run := harness.NewRun(f.MaxRuntimeS, em)
	group, err := sarama.NewConsumerGroup([]string{f.Bootstrap}, f.Group, cfg)
	if err != nil {
		em.Error(err, "NewConsumerGroup")
		if run.Stopped() { // the stop came while sarama was still connecting
			em.Finish(run.Reason(), nil)
		}
		em.Finish("returned_error", err)
	}

	var drained sync.WaitGroup
	if f.ReturnErrors {
		drained.Add(1)
		go func() {
			defer drained.Done()
			for err := range group.Errors() { // closed by group.Close
				em.Error(err, "Errors()")
			}
		}()
	}

	h := newHandler(f, em, run)
	var how string
	var exitErr error
	if f.ConsumeMode == "once" {
		how, exitErr = consumeOnce(run, group, h, f.Topic, em)
	} else {
		how, exitErr = consumeLoop(run, group, h, f.Topic, em)
	}
	if closeErr := harness.CloseWithin(group.Close); closeErr != nil {
		em.Error(closeErr, "Close")
	}
	waitBounded(&drained)
	if run.Stopped() {
		how, exitErr = run.Reason(), nil
	}
	em.Finish(how, exitErr)
}

// consumeLoop is sarama's README loop, instrumented. It returns how the loop ended when the
// library (not a signal or the runtime limit) ended it.
func consumeLoop(run *harness.Run, group sarama.ConsumerGroup, h *handler, topic string, em *harness.Emitter) (string, error) {
	for n := 1; ; n++ {
		err := group.Consume(run.Ctx, []string{topic}, h)
		if err != nil {
			em.Emit("error", map[string]any{"error": err.Error(), "source": "Consume", "n": n})
			if errors.Is(err, sarama.ErrClosedConsumerGroup) || h.streak.Observe(err) {
				return "returned_error", err
			}
		} else {
			em.Emit("consume_returned", map[string]any{"error": nil, "n": n})
		}
		if run.Stopped() {
			return "", nil
		}
		if n >= maxConsumeReturns {
			return "returned_error", fmt.Errorf("Consume returned %d times; giving up", n)
		}
		if err != nil {
			select {
			case <-run.Ctx.Done():
			case <-time.After(errorPause):
			}
		}
	}
}

// consumeOnce is the application that calls Consume a single time: whatever it returns is
// `consume_returned` (with the error, if any), and then the member idles until it is
// stopped, consuming nothing, so a session that ended silently shows as a member that
// stopped consuming (it is not rejoined behind the scenario's back).
func consumeOnce(run *harness.Run, group sarama.ConsumerGroup, h *handler, topic string, em *harness.Emitter) (string, error) {
	err := group.Consume(run.Ctx, []string{topic}, h)
	var errText any
	if err != nil {
		errText = err.Error()
	}
	em.Emit("consume_returned", map[string]any{"error": errText, "n": 1})
	<-run.Ctx.Done()
	return "", nil
}

func config(f harness.Flags) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = f.ClientID
	cfg.Consumer.Group.Session.Timeout = f.SessionTimeout()
	cfg.Consumer.Group.Heartbeat.Interval = f.HeartbeatInterval()
	cfg.Consumer.Group.Rebalance.Timeout = f.RebalanceTimeout()
	cfg.Consumer.Group.InstanceId = f.InstanceID
	cfg.Consumer.Offsets.AutoCommit.Enable = f.AutoCommit()
	cfg.Consumer.Return.Errors = f.ReturnErrors
	if f.RequestTimeoutMs > 0 {
		// sarama's "how long to wait for a response" to any request.
		cfg.Net.ReadTimeout = f.RequestTimeout()
	}
	switch f.Assignor {
	case "range":
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	case "roundrobin":
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRoundRobin()}
	case "sticky":
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	case "cooperative-sticky":
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyCooperativeSticky()}
	}
	if f.FromBeginning {
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	} else {
		cfg.Consumer.Offsets.Initial = sarama.OffsetNewest
	}
	return cfg
}

// effective is what the `config` event adds to the options: sarama's own values.
func effective(cfg *sarama.Config) map[string]any {
	assignors := []string{}
	for _, s := range cfg.Consumer.Group.Rebalance.GroupStrategies {
		assignors = append(assignors, s.Name())
	}
	return map[string]any{
		"assignors":          assignors,
		"request_timeout_ms": cfg.Net.ReadTimeout.Milliseconds(),
		"return_errors":      cfg.Consumer.Return.Errors,
		"library_config": map[string]any{
			"Consumer.Return.Errors":               cfg.Consumer.Return.Errors,
			"Consumer.Offsets.AutoCommit.Enable":   cfg.Consumer.Offsets.AutoCommit.Enable,
			"Consumer.Offsets.AutoCommit.Interval": cfg.Consumer.Offsets.AutoCommit.Interval.String(),
			"Consumer.Group.Session.Timeout":       cfg.Consumer.Group.Session.Timeout.String(),
			"Consumer.Group.Heartbeat.Interval":    cfg.Consumer.Group.Heartbeat.Interval.String(),
			"Consumer.Group.Rebalance.Timeout":     cfg.Consumer.Group.Rebalance.Timeout.String(),
			"Consumer.Group.InstanceId":            cfg.Consumer.Group.InstanceId,
			"Net.ReadTimeout":                      cfg.Net.ReadTimeout.String(),
			"Version":                              cfg.Version.String(),
		},
	}
}

func waitBounded(wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(harness.CloseTimeout):
	}
}

// handler reports the session lifecycle. With an eager strategy (sarama's default, range)
// Setup is an assignment and Cleanup revokes everything the session held. With
// cooperative-sticky one session lives across rebalances: Setup and Cleanup bracket the
// membership, and a claim that starts (assigned) or whose channel closes while the session
// goes on (revoked) is the incremental change, reported per partition.
type handler struct {
	em          *harness.Emitter
	run         *harness.Run
	explicit    bool // --commit manual or both: session.Commit() after each batch
	inRevoke    bool // --commit-in-revoke: session.Commit() where partitions are revoked
	async       bool
	delay       time.Duration
	cooperative bool
	streak      harness.ErrorStreak // reset by every record

	mu     sync.Mutex
	marked map[string]map[string]int64 // next offset per partition, as marked
	owned  map[string]map[int32]bool   // cooperative: partitions reported as assigned
}

func newHandler(f harness.Flags, em *harness.Emitter, run *harness.Run) *handler {
	return &handler{
		em: em, run: run, explicit: f.ExplicitCommit(), inRevoke: f.CommitInRevoke,
		async: f.AsyncProcessing, delay: f.ProcessingDelay(),
		cooperative: f.Assignor == "cooperative-sticky",
		marked:      map[string]map[string]int64{}, owned: map[string]map[int32]bool{},
	}
}

func membership(s sarama.ConsumerGroupSession, parts map[string][]int32) map[string]any {
	return map[string]any{
		"partitions": harness.Partitions(parts), "generation": s.GenerationID(), "member_id": s.MemberID(),
	}
}

func (h *handler) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	for topic, parts := range s.Claims() {
		for _, p := range parts {
			h.own(topic, p, true)
		}
	}
	h.mu.Unlock()
	h.em.Emit("assigned", membership(s, s.Claims()))
	return nil
}

func (h *handler) Cleanup(s sarama.ConsumerGroupSession) error {
	if h.inRevoke {
		h.commit(s, s.Claims(), true)
	}
	h.mu.Lock()
	h.owned = map[string]map[int32]bool{}
	h.mu.Unlock()
	h.em.Emit("revoked", membership(s, s.Claims()))
	return nil
}

// own records (or forgets) that partition p of topic is reported as assigned; the caller
// holds h.mu. It says whether that changed anything.
func (h *handler) own(topic string, p int32, owned bool) bool {
	if h.owned[topic] == nil {
		h.owned[topic] = map[int32]bool{}
	}
	was := h.owned[topic][p]
	if owned {
		h.owned[topic][p] = true
	} else {
		delete(h.owned[topic], p)
	}
	return was != owned
}

// claimChanged reports a cooperative claim starting or ending (not under eager strategies,
// where Setup and Cleanup say it all).
func (h *handler) claimChanged(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim, owned bool) {
	if !h.cooperative {
		return
	}
	if !owned && s.Context().Err() != nil {
		return // the session is ending: Cleanup reports it
	}
	h.mu.Lock()
	changed := h.own(claim.Topic(), claim.Partition(), owned)
	h.mu.Unlock()
	if !changed {
		return
	}
	parts := map[string][]int32{claim.Topic(): {claim.Partition()}}
	if !owned && h.inRevoke {
		h.commit(s, parts, true)
	}
	h.em.Emit(map[bool]string{true: "assigned", false: "revoked"}[owned], membership(s, parts))
}

// mark is MarkMessage plus the harness's note of the next offset to commit.
func (h *handler) mark(s sarama.ConsumerGroupSession, m *sarama.ConsumerMessage) {
	s.MarkMessage(m, "")
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.marked[m.Topic] == nil {
		h.marked[m.Topic] = map[string]int64{}
	}
	key := fmt.Sprint(m.Partition)
	if next := m.Offset + 1; next > h.marked[m.Topic][key] {
		h.marked[m.Topic][key] = next // sarama's own mark never moves back either
	}
}

// commit calls session.Commit() and reports the marked offsets of parts. Commit() has no
// result: a failed commit reaches the Errors() channel (--return-errors true) or sarama's
// log, never this call site. The event says so with confirmed=false.
func (h *handler) commit(s sarama.ConsumerGroupSession, parts map[string][]int32, inRevoke bool) {
	s.Commit()
	offsets := map[string]map[string]int64{}
	h.mu.Lock()
	for topic, ps := range parts {
		for _, p := range ps {
			if next, ok := h.marked[topic][fmt.Sprint(p)]; ok {
				if offsets[topic] == nil {
					offsets[topic] = map[string]int64{}
				}
				offsets[topic][fmt.Sprint(p)] = next
			}
		}
	}
	h.mu.Unlock()
	fields := map[string]any{"ok": true, "error": nil, "confirmed": false, "offsets": offsets}
	if inRevoke {
		fields["in_revoke"] = true
	}
	h.em.Emit("commit", fields)
}

// asyncDelay is one message's processing time under --async-processing: between 0.5 and
// 1.5 times --processing-delay-ms, a fixed function of partition and offset, so messages
// finish out of order the same way in every run.
func (h *handler) asyncDelay(m *sarama.ConsumerMessage) time.Duration {
	hash := fnv.New32a()
	fmt.Fprintf(hash, "%s/%d/%d", m.Topic, m.Partition, m.Offset)
	return h.delay/2 + time.Duration(uint64(h.delay)*uint64(hash.Sum32()%1000)/1000)
}

// process runs one message as the application would: in line (sleep, then mark) or, under
// --async-processing, on its own goroutine that marks (and with explicit commits, commits)
// when it finishes, however many messages after it were marked already (the pattern of
// the "offset commits racing rebalances" field report, B5).
func (h *handler) process(s sarama.ConsumerGroupSession, m *sarama.ConsumerMessage) {
	if !h.async {
		harness.Sleep(h.run.Ctx, h.delay)
		h.mark(s, m)
		return
	}
	go func() {
		harness.Sleep(h.run.Ctx, h.asyncDelay(m))
		h.mark(s, m)
		if h.explicit {
			h.commit(s, map[string][]int32{m.Topic: {m.Partition}}, false)
		}
	}()
}

// maxBatch bounds one claim batch (what is already buffered when a message arrives).
const maxBatch = 500

// ConsumeClaim handles messages in batches: the first message, plus whatever the claim has
// already buffered. Explicit commits happen once per batch, like a poll loop commits once
// per poll in the other harnesses. (Per message would be much slower: sarama's OffsetCommit
// waits behind the long-polling Fetch on the same broker connection.)
func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	h.claimChanged(s, claim, true)
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				h.claimChanged(s, claim, false)
				return nil
			}
			batch, open := drain(claim, msg)
			for _, m := range batch {
				h.em.Emit("record", map[string]any{
					"topic": m.Topic, "partition": m.Partition, "offset": m.Offset,
				})
				h.process(s, m)
			}
			h.streak.Reset()
			if h.explicit && !h.async {
				h.commit(s, map[string][]int32{claim.Topic(): {claim.Partition()}}, false)
			}
			if !open {
				h.claimChanged(s, claim, false)
				return nil
			}
		case <-s.Context().Done():
			return nil
		}
	}
}

// drain returns first plus the messages the claim has already buffered (without waiting),
// and whether the claim's channel is still open.
func drain(claim sarama.ConsumerGroupClaim, first *sarama.ConsumerMessage) ([]*sarama.ConsumerMessage, bool) {
	batch := []*sarama.ConsumerMessage{first}
	for len(batch) < maxBatch {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return batch, false
			}
			batch = append(batch, msg)
		default:
			return batch, true
		}
	}
	return batch, true
}

// logForwarder is sarama's Logger: every line goes to stderr (the harness log), and lines
// that report an error or failure also become `log` events. sarama's log has no levels;
// it is where errors go when Consumer.Return.Errors is false, and the evidence must show
// them, while the rest (rebalance chatter) stays on stderr.
type logForwarder struct {
	em     *harness.Emitter
	stderr *log.Logger
}

func (l *logForwarder) Print(v ...any)                 { l.forward(fmt.Sprint(v...)) }
func (l *logForwarder) Printf(format string, v ...any) { l.forward(fmt.Sprintf(format, v...)) }
func (l *logForwarder) Println(v ...any)               { l.forward(fmt.Sprintln(v...)) }

func (l *logForwarder) forward(line string) {
	line = strings.TrimSpace(line)
	l.stderr.Print(line)
	lower := strings.ToLower(line)
	if strings.Contains(lower, "error") || strings.Contains(lower, "fail") {
		l.em.Emit("log", map[string]any{"level": "ERROR", "logger": "sarama", "message": line})
	}
}
