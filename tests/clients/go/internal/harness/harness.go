// Package harness is the part of the consumer-harness contract (tests/clients/README.md)
// that does not depend on the client library: the command-line flags, the JSON-lines event
// stream on stdout, and the run context that ends on SIGTERM/SIGINT or --max-runtime-s.
//
// Every Go harness uses it so that the three libraries are driven and reported identically;
// only the library calls differ between sarama/, kafkago/ and franz/.
package harness

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Flags are the contract's command-line options, identical for every language.
type Flags struct {
	Bootstrap           string
	Topic               string
	Group               string
	ClientID            string
	SessionTimeoutMs    int
	HeartbeatIntervalMs int
	RebalanceTimeoutMs  int
	Commit              string // "auto", "manual" or "both" (auto-commit and explicit commits)
	InstanceID          string // empty: dynamic membership
	Protocol            string // "classic" or "consumer" (KIP-848)
	MaxRuntimeS         float64
	ReturnErrors        bool
	FromBeginning       bool
	RequestTimeoutMs    int    // 0: the library's default
	Assignor            string // empty: the library's default
	CommitInRevoke      bool   // commit the processed offsets in the revoke callback
	ProcessingDelayMs   int    // per record, before it counts as processed
	AsyncProcessing     bool   // sarama: a goroutine per message
	ConsumeMode         string // "loop" or "once" (sarama's Consume)
}

// Assignors are the --assignor values (Kafka's names for the client-side assignors).
var Assignors = []string{"range", "roundrobin", "sticky", "cooperative-sticky"}

// AutoCommit reports whether the library's auto-commit is on (--commit auto or both).
func (f Flags) AutoCommit() bool { return f.Commit == "auto" || f.Commit == "both" }

// ExplicitCommit reports whether the harness commits itself (--commit manual or both).
func (f Flags) ExplicitCommit() bool { return f.Commit == "manual" || f.Commit == "both" }

// ProcessingDelay is --processing-delay-ms as a duration.
func (f Flags) ProcessingDelay() time.Duration {
	return time.Duration(f.ProcessingDelayMs) * time.Millisecond
}

// RequestTimeout is --request-timeout-ms as a duration (0: not given).
func (f Flags) RequestTimeout() time.Duration {
	return time.Duration(f.RequestTimeoutMs) * time.Millisecond
}

// Options are the contract's harness options as the `config` event reports them; a harness
// adds what the library makes of them (effective assignors, timeouts, library settings).
func (f Flags) Options() map[string]any {
	var instance any
	if f.InstanceID != "" {
		instance = f.InstanceID
	}
	return map[string]any{
		"protocol": f.Protocol, "commit": f.Commit, "commit_in_revoke": f.CommitInRevoke,
		"session_timeout_ms": f.SessionTimeoutMs, "heartbeat_interval_ms": f.HeartbeatIntervalMs,
		"rebalance_timeout_ms": f.RebalanceTimeoutMs, "processing_delay_ms": f.ProcessingDelayMs,
		"async_processing": f.AsyncProcessing, "consume_mode": f.ConsumeMode,
		"instance_id": instance, "from_beginning": f.FromBeginning,
	}
}

// Config emits the `config` event (second line, after `started`): the options, merged with
// the library's effective values in extra (which win).
func (e *Emitter) Config(f Flags, extra map[string]any) {
	fields := f.Options()
	for k, v := range extra {
		fields[k] = v
	}
	e.Emit("config", fields)
}

// Refuse ends a run whose options the library cannot honour: an `error` (source harness)
// and `exited how=returned_error`, status 1; never a silent downgrade.
func (e *Emitter) Refuse(msg string) {
	err := errors.New(msg)
	e.Error(err, "harness")
	e.Finish("returned_error", err)
}

// Unsupported is the message of the first check that holds, or "" (then see Refuse).
func Unsupported(checks ...Check) string {
	for _, c := range checks {
		if c.Bad {
			return c.Msg
		}
	}
	return ""
}

// Check is one option a harness cannot honour: Bad when the flags ask for it.
type Check struct {
	Bad bool
	Msg string
}

// Sleep waits d, or less when the run is stopped: a processing delay must not hold up the
// graceful close past the runner's bound. A rebalance does not cut it short (pass the run's
// context, not a session's): a slow application holds up the rebalance, as it would.
func Sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// SessionTimeout and friends convert the millisecond flags for library configs.
func (f Flags) SessionTimeout() time.Duration {
	return time.Duration(f.SessionTimeoutMs) * time.Millisecond
}

// HeartbeatInterval is --heartbeat-interval-ms as a duration.
func (f Flags) HeartbeatInterval() time.Duration {
	return time.Duration(f.HeartbeatIntervalMs) * time.Millisecond
}

// RebalanceTimeout is --rebalance-timeout-ms as a duration.
func (f Flags) RebalanceTimeout() time.Duration {
	return time.Duration(f.RebalanceTimeoutMs) * time.Millisecond
}

// ParseFlags reads os.Args; a usage error exits with status 2 before any event is emitted,
// because a harness started with bad flags is a bug in the caller, not a library outcome.
func ParseFlags() Flags {
	var f Flags
	fs := flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	fs.StringVar(&f.Bootstrap, "bootstrap", "", "HOST:PORT of a broker (or the proxy)")
	fs.StringVar(&f.Topic, "topic", "", "topic to consume")
	fs.StringVar(&f.Group, "group", "", "consumer group id")
	fs.StringVar(&f.ClientID, "client-id", "", "client.id sent to the broker")
	fs.IntVar(&f.SessionTimeoutMs, "session-timeout-ms", 6000, "session timeout")
	fs.IntVar(&f.HeartbeatIntervalMs, "heartbeat-interval-ms", 1000, "heartbeat interval")
	fs.IntVar(&f.RebalanceTimeoutMs, "rebalance-timeout-ms", 10000, "rebalance timeout")
	fs.StringVar(&f.Commit, "commit", "auto", "auto|manual|both")
	fs.StringVar(&f.InstanceID, "instance-id", "", "group.instance.id (static membership)")
	fs.StringVar(&f.Protocol, "protocol", "classic", "classic|consumer (KIP-848)")
	fs.Float64Var(&f.MaxRuntimeS, "max-runtime-s", 60, "stop after this many seconds")
	returnErrors := fs.String("return-errors", "false", "sarama Consumer.Return.Errors (true|false)")
	// A bool flag: bare --from-beginning (as the Python harnesses take it) or =false.
	fs.BoolVar(&f.FromBeginning, "from-beginning", true, "auto.offset.reset=earliest")
	fs.IntVar(&f.RequestTimeoutMs, "request-timeout-ms", 0, "request timeout (0: library default)")
	fs.StringVar(&f.Assignor, "assignor", "", "range|roundrobin|sticky|cooperative-sticky (default: the library's)")
	commitInRevoke := fs.String("commit-in-revoke", "false", "commit processed offsets in the revoke callback (true|false)")
	fs.IntVar(&f.ProcessingDelayMs, "processing-delay-ms", 0, "time spent on each record")
	asyncProcessing := fs.String("async-processing", "false", "a goroutine per message (true|false)")
	fs.StringVar(&f.ConsumeMode, "consume-mode", "loop", "loop|once")
	_ = fs.Parse(os.Args[1:])

	f.ReturnErrors = parseBool(fs, "return-errors", *returnErrors)
	f.CommitInRevoke = parseBool(fs, "commit-in-revoke", *commitInRevoke)
	f.AsyncProcessing = parseBool(fs, "async-processing", *asyncProcessing)
	for name, val := range map[string]string{
		"bootstrap": f.Bootstrap, "topic": f.Topic, "group": f.Group, "client-id": f.ClientID,
	} {
		if val == "" {
			usageError(fs, "--%s is required", name)
		}
	}
	if f.Commit != "auto" && f.Commit != "manual" && f.Commit != "both" {
		usageError(fs, "--commit must be auto, manual or both, got %q", f.Commit)
	}
	if f.Assignor != "" && !slices.Contains(Assignors, f.Assignor) {
		usageError(fs, "--assignor must be one of %s, got %q", strings.Join(Assignors, ", "), f.Assignor)
	}
	if f.ConsumeMode != "loop" && f.ConsumeMode != "once" {
		usageError(fs, "--consume-mode must be loop or once, got %q", f.ConsumeMode)
	}
	if f.ProcessingDelayMs < 0 || f.RequestTimeoutMs < 0 {
		usageError(fs, "--processing-delay-ms and --request-timeout-ms must be >= 0")
	}
	if f.Protocol != "classic" && f.Protocol != "consumer" {
		usageError(fs, "--protocol must be classic or consumer, got %q", f.Protocol)
	}
	if f.MaxRuntimeS <= 0 {
		usageError(fs, "--max-runtime-s must be > 0")
	}
	return f
}

func parseBool(fs *flag.FlagSet, name, val string) bool {
	switch val {
	case "true", "1", "yes":
		return true
	case "false", "0", "no":
		return false
	}
	usageError(fs, "--%s must be true or false, got %q", name, val)
	return false
}

func usageError(fs *flag.FlagSet, format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	fs.Usage()
	os.Exit(2)
}

// Emitter writes one JSON object per line to stdout. Each line is a single write on an
// unbuffered file, so a reader sees whole events even if the process dies right after.
type Emitter struct {
	client   string
	mu       sync.Mutex
	exitOnce sync.Once
}

// NewEmitter tags every event with the harness name ("sarama", "kafka-go", "franz-go").
func NewEmitter(client string) *Emitter { return &Emitter{client: client} }

// Emit writes {"ts", "client", "event", ...fields}.
func (e *Emitter) Emit(event string, fields map[string]any) {
	obj := make(map[string]any, len(fields)+3)
	for k, v := range fields {
		obj[k] = v
	}
	obj["ts"] = float64(time.Now().UnixNano()) / 1e9
	obj["client"] = e.client
	obj["event"] = event
	line, err := json.Marshal(obj)
	if err != nil {
		// Only reachable through a harness bug (an unencodable field); say so in-band.
		line, _ = json.Marshal(map[string]any{
			"ts": obj["ts"], "client": e.client, "event": "error",
			"error": "harness could not encode event " + event + ": " + err.Error(), "source": "harness",
		})
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = os.Stdout.Write(append(line, '\n'))
}

// Error emits an `error` event; a nil error is ignored so call sites stay short.
func (e *Emitter) Error(err error, source string) {
	if err == nil {
		return
	}
	e.Emit("error", map[string]any{"error": err.Error(), "source": source})
}

// Exited emits the final event, at most once per process (the stop watchdog and main may
// race for it). how is one of returned_nil, returned_error, crashed, killed, max_runtime.
func (e *Emitter) Exited(how string, err error) {
	e.exitOnce.Do(func() {
		var msg any
		if err != nil {
			msg = err.Error()
		}
		e.Emit("exited", map[string]any{"how": how, "error": msg})
	})
}

// Partitions renders a topic -> partitions map as the contract's {"topic": [0, 1]} with
// sorted partition lists, so that outputs are comparable across runs and languages.
func Partitions(m map[string][]int32) map[string][]int32 {
	out := make(map[string][]int32, len(m))
	for t, ps := range m {
		cp := append([]int32{}, ps...)
		sort.Slice(cp, func(i, j int) bool { return cp[i] < cp[j] })
		out[t] = cp
	}
	return out
}

// ModuleVersion is the version of a dependency compiled into this binary, read from the
// build info so that the "started" event always names what actually ran.
func ModuleVersion(path string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, dep := range info.Deps {
		if dep.Path == path {
			if dep.Replace != nil {
				return strings.TrimPrefix(dep.Replace.Version, "v")
			}
			return strings.TrimPrefix(dep.Version, "v")
		}
	}
	return "unknown"
}

// Run is the context a harness consumes under. It is cancelled by SIGTERM/SIGINT or when
// --max-runtime-s elapses; Reason says which, for the `exited` event.
type Run struct {
	Ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	reason string
}

// stopGrace is how long after a stop request the watchdog lets main finish on its own:
// the close bound plus a little for the final commit and the exit event.
const stopGrace = CloseTimeout + 3*time.Second

// NewRun installs the signal handlers and the runtime limit. Once the run is stopped, a
// watchdog ends the process after stopGrace even if main is stuck in a library call that
// takes no context (a blocking constructor, a hung close), so `exited` is always written
// before the matrix runner's SIGKILL.
func NewRun(maxRuntimeS float64, em *Emitter) *Run {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Run{Ctx: ctx, cancel: cancel}
	go func() {
		<-ctx.Done()
		time.Sleep(stopGrace)
		em.Exited(r.Reason(), fmt.Errorf("still closing %s after the stop request; exiting", stopGrace))
		os.Exit(0)
	}()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	limit := time.NewTimer(time.Duration(maxRuntimeS * float64(time.Second)))
	go func() {
		select {
		case <-sigs:
			r.Stop("killed")
		case <-limit.C:
			r.Stop("max_runtime")
		case <-ctx.Done():
		}
		limit.Stop()
	}()
	return r
}

// Stop cancels the run; the first reason given wins.
func (r *Run) Stop(reason string) {
	r.mu.Lock()
	if r.reason == "" {
		r.reason = reason
	}
	r.mu.Unlock()
	r.cancel()
}

// Reason is "killed", "max_runtime", or "" while the run is live or ended by the library.
func (r *Run) Reason() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason
}

// Stopped reports whether a signal or the runtime limit ended the run.
func (r *Run) Stopped() bool { return r.Ctx.Err() != nil }

// CloseTimeout bounds a library's Close: under injected faults a graceful close can hang
// on a coordinator that never answers, and a harness must still end and say so. It stays
// under the matrix runner's 15 s SIGTERM-to-SIGKILL bound, so `exited` is always written.
const CloseTimeout = 10 * time.Second

// CloseWithin runs closeFn and waits at most CloseTimeout for it.
func CloseWithin(closeFn func() error) error {
	done := make(chan error, 1)
	go func() { done <- closeFn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(CloseTimeout):
		return fmt.Errorf("close did not finish within %s", CloseTimeout)
	}
}

// GuardPanic turns a panic on the calling goroutine into `exited how=crashed` (exit status
// 3). Use as `defer em.GuardPanic()` in main. A panic on a library goroutine cannot be
// recovered here: the process dies with status 2 and no `exited` event, which the runner
// reads as a crash too.
func (e *Emitter) GuardPanic() {
	if r := recover(); r != nil {
		e.Exited("crashed", fmt.Errorf("panic: %v\n%s", r, debug.Stack()))
		os.Exit(3)
	}
}

// Finish emits `exited` and ends the process: status 1 when the library ended the run with
// an error, 0 otherwise, so the exit status agrees with the event for callers that only
// look at one of them.
func (e *Emitter) Finish(how string, err error) {
	e.Exited(how, err)
	if how == "returned_error" {
		os.Exit(1)
	}
	os.Exit(0)
}

// MaxSameErrorInARow is when a consume loop gives up: the same error this many times in a
// row with no record in between means the library will not recover by itself. The Python
// and Java harnesses use the same rule, so "gave up" means the same thing in every column.
const MaxSameErrorInARow = 50

// ErrorStreak counts identical consecutive errors from a consume loop.
type ErrorStreak struct {
	mu   sync.Mutex
	last string
	n    int
}

// Observe records an error and reports whether the streak reached MaxSameErrorInARow.
func (s *ErrorStreak) Observe(err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if text := err.Error(); text == s.last {
		s.n++
	} else {
		s.last, s.n = text, 1
	}
	return s.n >= MaxSameErrorInARow
}

// Reset ends the streak: a record arrived, so the library is making progress.
func (s *ErrorStreak) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last, s.n = "", 0
}
