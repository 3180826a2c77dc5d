// Command sarama is the consumer harness for github.com/IBM/sarama's ConsumerGroup.
//
// The consume loop is the one sarama's README teaches (call Consume again while the context
// is live), because the "consumer silently stops" bug family lives exactly there: each
// return of Consume is reported (`consume_returned` for nil, `error` source=Consume
// otherwise), so a scenario can see whether the group keeps going or quietly ends.
// Contract: tests/clients/README.md.
package main

import (
	"errors"
	"fmt"
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
	if f.Protocol == "consumer" {
		err := errors.New("sarama implements only the classic group protocol, not KIP-848 (--protocol consumer)")
		em.Error(err, "harness")
		em.Finish("returned_error", err)
	}
	sarama.Logger = &logForwarder{em: em, stderr: log.New(os.Stderr, "[sarama] ", log.LstdFlags|log.Lmicroseconds)}

	run := harness.NewRun(f.MaxRuntimeS, em)
	group, err := sarama.NewConsumerGroup([]string{f.Bootstrap}, f.Group, config(f))
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

	how, exitErr := consumeLoop(run, group, &handler{em: em, manual: f.Commit == "manual"}, f.Topic, em)
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

func config(f harness.Flags) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = f.ClientID
	cfg.Consumer.Group.Session.Timeout = f.SessionTimeout()
	cfg.Consumer.Group.Heartbeat.Interval = f.HeartbeatInterval()
	cfg.Consumer.Group.Rebalance.Timeout = f.RebalanceTimeout()
	cfg.Consumer.Group.InstanceId = f.InstanceID
	cfg.Consumer.Offsets.AutoCommit.Enable = f.Commit == "auto"
	cfg.Consumer.Return.Errors = f.ReturnErrors
	if f.FromBeginning {
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	} else {
		cfg.Consumer.Offsets.Initial = sarama.OffsetNewest
	}
	return cfg
}

func waitBounded(wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(harness.CloseTimeout):
	}
}

// handler reports the session lifecycle. sarama's default strategy is eager (range), so
// Setup is an assignment and Cleanup revokes everything the session held.
type handler struct {
	em     *harness.Emitter
	manual bool
	streak harness.ErrorStreak // reset by every record
}

func (h *handler) Setup(s sarama.ConsumerGroupSession) error {
	h.em.Emit("assigned", map[string]any{
		"partitions": harness.Partitions(s.Claims()),
		"generation": s.GenerationID(),
		"member_id":  s.MemberID(),
	})
	return nil
}

func (h *handler) Cleanup(s sarama.ConsumerGroupSession) error {
	h.em.Emit("revoked", map[string]any{
		"partitions": harness.Partitions(s.Claims()),
		"generation": s.GenerationID(),
		"member_id":  s.MemberID(),
	})
	return nil
}

// maxBatch bounds one claim batch (what is already buffered when a message arrives).
const maxBatch = 500

// ConsumeClaim handles messages in batches: the first message, plus whatever the claim has
// already buffered. Manual mode commits once per batch, like a poll loop commits once per
// poll in the other harnesses. (Per message would be much slower: sarama's OffsetCommit
// waits behind the long-polling Fetch on the same broker connection.)
func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			batch, open := drain(claim, msg)
			for _, m := range batch {
				h.em.Emit("record", map[string]any{
					"topic": m.Topic, "partition": m.Partition, "offset": m.Offset,
				})
				s.MarkMessage(m, "")
			}
			h.streak.Reset()
			if h.manual {
				// Commit() has no result: a failed commit reaches the Errors() channel
				// (--return-errors true) or sarama's log, never this call site. The event
				// says so with confirmed=false instead of claiming a success.
				s.Commit()
				last := batch[len(batch)-1]
				h.em.Emit("commit", map[string]any{
					"ok": true, "error": nil, "confirmed": false,
					"offsets": map[string]map[string]int64{
						last.Topic: {fmt.Sprint(last.Partition): last.Offset + 1},
					},
				})
			}
			if !open {
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
