import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerInterceptor;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.utils.AppInfoParser;

/**
 * Consumer harness for org.apache.kafka:kafka-clients (KafkaConsumer), classic or KIP-848
 * group protocol. Contract: tests/clients/README.md — the same flags and JSON-lines events as
 * the Go and Python harnesses, so the matrix runner can classify a run without knowing the
 * library.
 *
 * <p>The poll loop reports every exception out of poll() as an `error` event and goes on
 * polling, as a robust application does, until the same error comes MAX_SAME_ERROR_IN_A_ROW
 * times with no record in between (or poll() says the consumer is unusable): then it closes
 * and exits how=returned_error. The Go and Python harnesses follow the same rule. A failed
 * commitSync() is a `commit` event with ok=false and consumption goes on.
 * One file on purpose: it compiles with plain javac against the fetched classpath, no build
 * tool needed.
 */
public final class ConsumerHarness {
    static final String CLIENT = "java";
    static final String LIBRARY = "org.apache.kafka:kafka-clients";
    /** Bounds one poll() so stop requests and --max-runtime-s are noticed promptly. */
    static final Duration POLL = Duration.ofMillis(200);
    /** Bounds close(): under injected faults a graceful leave can wait on a silent coordinator.
     *  Kept under the matrix runner's 15 s SIGTERM-to-SIGKILL bound, with the JVM's own exit. */
    static final Duration CLOSE = Duration.ofSeconds(10);

    static final Emitter OUT = new Emitter(CLIENT);
    /** See the class comment; the same bound as the Go and Python harnesses. */
    static final int MAX_SAME_ERROR_IN_A_ROW = 50;

    static void sleepQuietly(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    public static void main(String[] argv) {
        Flags f;
        try {
            f = Flags.parse(argv);
        } catch (IllegalArgumentException e) {
            System.err.println("usage error: " + e.getMessage());
            System.exit(2);
            return;
        }
        LogTap.install();
        OUT.emit("started", "library", LIBRARY, "version", AppInfoParser.getVersion(),
                "protocol", f.protocol);
        emitConfig(f);
        String unsupported = f.unsupported();
        if (unsupported != null) {
            // No silent downgrade: an option this client cannot honour ends the run.
            OUT.emit("error", "error", unsupported, "source", "harness");
            OUT.emit("exited", "how", "returned_error", "error", unsupported);
            System.exit(1);
            return;
        }
        int status;
        ConsumerHarness harness;
        try {
            harness = new ConsumerHarness(f);
        } catch (org.apache.kafka.common.KafkaException e) {
            // The client refused the configuration (e.g. a group.protocol this kafka-clients
            // version lacks): reported like sarama's NewConsumerGroup failure, not a crash.
            OUT.emit("error", "error", describe(e), "source", "KafkaConsumer");
            OUT.emit("exited", "how", "returned_error", "error", describe(e));
            System.exit(1);
            return;
        }
        try {
            status = harness.run();
        } catch (Throwable t) { // a harness or library bug: still end with an exited event
            OUT.emit("exited", "how", "crashed", "error", describe(t));
            status = 3;
        }
        finished = true;
        if (!stoppedBySignal.get()) {
            System.exit(status); // only when no signal's hook is already waiting for main
        }
    }

    // --- run ---------------------------------------------------------------------------

    /** Why the loop stopped ("killed", "max_runtime"), or null while the library runs it. */
    static final AtomicReference<String> stopReason = new AtomicReference<>();
    static final java.util.concurrent.atomic.AtomicBoolean stoppedBySignal =
            new java.util.concurrent.atomic.AtomicBoolean();

    /** The status main() would exit with; read by the shutdown hook. 3: never got there. */
    static volatile int exitStatus = 3;
    /** Set when main is done; a shutdown hook started after that must not wait for it. */
    static volatile boolean finished;

    final Flags f;
    final KafkaConsumer<byte[], byte[]> consumer;
    /** Next offset per partition of what the application has finished processing; only the
     *  poll thread touches it (the rebalance callbacks run inside poll()). */
    final Map<TopicPartition, OffsetAndMetadata> processed = new HashMap<>();

    ConsumerHarness(Flags f) {
        this.f = f;
        this.consumer = new KafkaConsumer<>(config(f));
    }

    @SuppressWarnings("deprecation") // close(Duration): kept so 3.x kafka-clients compile too
    int run() {
        Thread mainThread = Thread.currentThread();
        // SIGTERM/SIGINT run shutdown hooks; the hook wakes poll() and waits for the main
        // thread to close the consumer and print `exited`, since the JVM halts when it returns.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            if (finished) {
                return; // main is already in System.exit: nothing to wait for
            }
            stoppedBySignal.set(true);
            stopReason.compareAndSet(null, "killed");
            consumer.wakeup();
            try {
                mainThread.join(CLOSE.plusSeconds(3).toMillis());
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
            // A JVM ended by a signal exits 143 even after a clean close; halt with the
            // status the run earned, as the Go harnesses do.
            Runtime.getRuntime().halt(exitStatus);
        }, "harness-shutdown"));

        long deadline = System.nanoTime() + (long) (f.maxRuntimeS * 1e9);
        String how = null;
        String error = null;
        String lastError = null;
        int sameInARow = 0;
        consumer.subscribe(List.of(f.topic), new Listener());
        try {
            while (true) {
                if (System.nanoTime() >= deadline) {
                    stopReason.compareAndSet(null, "max_runtime");
                }
                if (stopReason.get() != null) {
                    break;
                }
                ConsumerRecords<byte[], byte[]> records;
                try {
                    records = consumer.poll(POLL);
                } catch (WakeupException e) {
                    continue; // our own stop request; the loop head sees the reason
                } catch (IllegalStateException e) {
                    throw e; // the consumer is unusable (closed, not subscribed): no retry
                } catch (RuntimeException e) {
                    String text = describe(e);
                    OUT.emit("error", "error", text, "source", "poll");
                    sameInARow = text.equals(lastError) ? sameInARow + 1 : 1;
                    lastError = text;
                    if (sameInARow >= MAX_SAME_ERROR_IN_A_ROW) {
                        how = "returned_error";
                        error = text;
                        break;
                    }
                    sleepQuietly(100);
                    continue;
                }
                if (!records.isEmpty()) {
                    lastError = null;
                    sameInARow = 0;
                }
                Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    OUT.emit("record", "topic", r.topic(), "partition", r.partition(),
                            "offset", r.offset());
                    process();
                    TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                    OffsetAndMetadata done = new OffsetAndMetadata(r.offset() + 1);
                    next.put(tp, done);
                    processed.put(tp, done);
                }
                if (f.explicitCommit() && !next.isEmpty()) {
                    commit(next);
                }
            }
        } catch (IllegalStateException e) {
            OUT.emit("error", "error", describe(e), "source", "poll");
            how = "returned_error";
            error = describe(e);
        }
        try {
            consumer.close(CLOSE);
        } catch (RuntimeException e) {
            OUT.emit("error", "error", describe(e), "source", "close");
        }
        if (stopReason.get() != null) {
            how = stopReason.get();
            error = null;
        }
        OUT.emit("exited", "how", how, "error", error);
        exitStatus = "returned_error".equals(how) ? 1 : 0;
        return exitStatus;
    }

    /** --processing-delay-ms: the application's time on one record. A stop request cuts it
     *  short (the close must stay within the runner's bound); a rebalance does not. */
    void process() {
        long end = System.nanoTime() + f.processingDelayMs * 1_000_000L;
        while (stopReason.get() == null) {
            long left = (end - System.nanoTime()) / 1_000_000L;
            if (left <= 0) {
                return;
            }
            sleepQuietly(Math.min(left, 50));
        }
    }

    void commit(Map<TopicPartition, OffsetAndMetadata> offsets) {
        commit(offsets, false);
    }

    void commit(Map<TopicPartition, OffsetAndMetadata> offsets, boolean inRevoke) {
        Object[] revoke = inRevoke ? new Object[] {"in_revoke", true} : new Object[0];
        try {
            consumer.commitSync(offsets);
            OUT.emit("commit", concat(new Object[] {"ok", true, "error", null, "offsets",
                    offsetsJson(offsets)}, revoke));
        } catch (WakeupException e) {
            // A stop request interrupted the commit: the outcome is unknown, say so.
            OUT.emit("commit", concat(new Object[] {"ok", false, "error", describe(e),
                    "offsets", offsetsJson(offsets)}, revoke));
        } catch (RuntimeException e) {
            OUT.emit("commit", concat(new Object[] {"ok", false, "error", describe(e),
                    "offsets", offsetsJson(offsets)}, revoke));
        }
    }

    static Object[] concat(Object[] a, Object[] b) {
        Object[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    static Properties config(Flags f) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, f.bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, f.group);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, f.clientId);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, f.fromBeginning ? "earliest" : "latest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, Boolean.toString(f.autoCommit()));
        if (f.requestTimeoutMs > 0) {
            p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, Integer.toString(f.requestTimeoutMs));
        }
        if (f.assignor != null) {
            p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, ASSIGNORS.get(f.assignor));
        }
        // The Java client's rebalance timeout is max.poll.interval.ms (both protocols).
        p.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, Integer.toString(f.rebalanceTimeoutMs));
        p.put("group.protocol", f.protocol);
        if (f.protocol.equals("classic")) {
            // With group.protocol=consumer the broker owns these; the client rejects them.
            p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, Integer.toString(f.sessionTimeoutMs));
            p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, Integer.toString(f.heartbeatIntervalMs));
        }
        if (f.instanceId != null) {
            p.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, f.instanceId);
        }
        if (f.autoCommit()) {
            // Auto-commits have no callback; an interceptor sees each successful one.
            p.put(ConsumerConfig.INTERCEPTOR_CLASSES_CONFIG, CommitObserver.class.getName());
        }
        return p;
    }

    /** Kafka's assignor names (what --assignor takes) and the classes behind them. */
    static final Map<String, String> ASSIGNORS = Map.of(
            "range", "org.apache.kafka.clients.consumer.RangeAssignor",
            "roundrobin", "org.apache.kafka.clients.consumer.RoundRobinAssignor",
            "sticky", "org.apache.kafka.clients.consumer.StickyAssignor",
            "cooperative-sticky", "org.apache.kafka.clients.consumer.CooperativeStickyAssignor");

    /** The `config` event: the options, and what the client makes of them (its effective
     *  values, defaults included, as ConsumerConfig resolves them). */
    static void emitConfig(Flags f) {
        Properties p = config(f);
        Map<String, Object> library = new TreeMap<>();
        p.forEach((k, v) -> library.put(String.valueOf(k), String.valueOf(v)));
        Object requestTimeout = f.requestTimeoutMs > 0 ? f.requestTimeoutMs : null;
        List<String> assignors = new ArrayList<>();
        try {
            ConsumerConfig resolved = new ConsumerConfig(p);
            requestTimeout = resolved.getInt(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG);
            library.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, requestTimeout);
            library.put(ConsumerConfig.AUTO_COMMIT_INTERVAL_MS_CONFIG,
                    resolved.getInt(ConsumerConfig.AUTO_COMMIT_INTERVAL_MS_CONFIG));
            if (f.protocol.equals("classic")) {
                // The default is a list of Class objects, a configured value a list of names.
                Object strategies = resolved.values().get(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG);
                for (Object o : strategies instanceof List ? (List<?>) strategies : List.of()) {
                    String cls = o instanceof Class ? ((Class<?>) o).getName() : String.valueOf(o);
                    String name = cls;
                    for (Map.Entry<String, String> e : ASSIGNORS.entrySet()) {
                        if (e.getValue().equals(cls)) {
                            name = e.getKey();
                        }
                    }
                    assignors.add(name);
                }
            }
        } catch (RuntimeException e) {
            // The client will reject this configuration itself; the event shows what was asked.
            if (f.assignor != null) {
                assignors.add(f.assignor);
            }
        }
        OUT.emit("config", "protocol", f.protocol, "commit", f.commit,
                "commit_in_revoke", f.commitInRevoke,
                "session_timeout_ms", f.protocol.equals("classic") ? f.sessionTimeoutMs : null,
                "heartbeat_interval_ms", f.protocol.equals("classic") ? f.heartbeatIntervalMs : null,
                "rebalance_timeout_ms", f.rebalanceTimeoutMs, "request_timeout_ms", requestTimeout,
                "assignors", assignors, "processing_delay_ms", f.processingDelayMs,
                "async_processing", f.asyncProcessing, "consume_mode", f.consumeMode,
                "instance_id", f.instanceId, "from_beginning", f.fromBeginning,
                "library_config", library);
    }

    // --- library callbacks -------------------------------------------------------------

    /** Rebalance callbacks. The partitions are what the library passes: with incremental
     *  protocols (KIP-848, cooperative) that is the change, not the whole assignment. */
    final class Listener implements ConsumerRebalanceListener {
        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            partitions.forEach(processed::remove); // a fresh start from the committed offset
            lifecycle("assigned", partitions);
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            if (f.commitInRevoke) {
                // The documented place: commit what was processed before the partitions go.
                Map<TopicPartition, OffsetAndMetadata> done = new HashMap<>();
                for (TopicPartition tp : partitions) {
                    OffsetAndMetadata om = processed.remove(tp);
                    if (om != null) {
                        done.put(tp, om);
                    }
                }
                if (!done.isEmpty()) {
                    commit(done, true);
                }
            }
            lifecycle("revoked", partitions);
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            partitions.forEach(processed::remove); // gone without a chance to commit
            lifecycle("lost", partitions);
        }

        private void lifecycle(String event, Collection<TopicPartition> partitions) {
            Object generation = null;
            Object member = null;
            try {
                var meta = consumer.groupMetadata();
                generation = meta.generationId();
                member = meta.memberId().isEmpty() ? null : meta.memberId();
            } catch (RuntimeException ignored) {
                // Not in a group at this instant: the contract allows null.
            }
            OUT.emit(event, "partitions", partitionsJson(partitions), "generation", generation,
                    "member_id", member, "assignment", partitionsJson(consumer.assignment()));
        }
    }

    /** Reports auto-commits (the interceptor runs only for commits that succeeded). */
    public static final class CommitObserver implements ConsumerInterceptor<byte[], byte[]> {
        @Override
        public ConsumerRecords<byte[], byte[]> onConsume(ConsumerRecords<byte[], byte[]> records) {
            return records;
        }

        @Override
        public void onCommit(Map<TopicPartition, OffsetAndMetadata> offsets) {
            if (offsets.isEmpty()) {
                return; // an auto-commit tick with nothing consumed yet
            }
            OUT.emit("commit", "ok", true, "error", null, "offsets", offsetsJson(offsets));
        }

        @Override
        public void close() {
        }

        @Override
        public void configure(Map<String, ?> configs) {
        }
    }

    // --- helpers -----------------------------------------------------------------------

    static Map<String, List<Integer>> partitionsJson(Collection<TopicPartition> tps) {
        Map<String, List<Integer>> out = new TreeMap<>();
        for (TopicPartition tp : tps) {
            out.computeIfAbsent(tp.topic(), t -> new ArrayList<>()).add(tp.partition());
        }
        out.values().forEach(l -> l.sort(null));
        return out;
    }

    static Map<String, Map<String, Long>> offsetsJson(Map<TopicPartition, OffsetAndMetadata> offsets) {
        Map<String, Map<String, Long>> out = new TreeMap<>();
        offsets.forEach((tp, om) -> out.computeIfAbsent(tp.topic(), t -> new TreeMap<>())
                .put(Integer.toString(tp.partition()), om.offset()));
        return out;
    }

    /** The library's exception class first (what the classifier keys on), then the message. */
    static String describe(Throwable t) {
        String msg = t.getMessage();
        String name = t.getClass().getSimpleName();
        return msg == null ? name : name + ": " + msg;
    }

    /** The contract's flags; `--name value` or `--name=value`; bare --from-beginning. */
    static final class Flags {
        String bootstrap;
        String topic;
        String group;
        String clientId;
        int sessionTimeoutMs = 6000;
        int heartbeatIntervalMs = 1000;
        int rebalanceTimeoutMs = 10000;
        int requestTimeoutMs;
        /** auto, manual or both (auto-commit on and explicit commits). */
        String commit = "auto";
        boolean commitInRevoke;
        String assignor;
        int processingDelayMs;
        boolean asyncProcessing;
        String consumeMode = "loop";
        String instanceId;
        String protocol = "classic";
        double maxRuntimeS = 60;
        boolean fromBeginning = true;

        boolean autoCommit() {
            return commit.equals("auto") || commit.equals("both");
        }

        boolean explicitCommit() {
            return commit.equals("manual") || commit.equals("both");
        }

        /** Why these options cannot run on KafkaConsumer, or null. */
        String unsupported() {
            if (asyncProcessing) {
                return "--async-processing is supported by the sarama harness only "
                        + "(KafkaConsumer is single-threaded)";
            }
            if (consumeMode.equals("once")) {
                return "KafkaConsumer has no Consume call that runs a group session; "
                        + "--consume-mode once is unsupported";
            }
            if (assignor != null && protocol.equals("consumer")) {
                return "--assignor is a classic-protocol setting; under KIP-848 "
                        + "(group.protocol=consumer) the broker assigns";
            }
            return null;
        }

        static Flags parse(String[] argv) {
            Flags f = new Flags();
            for (int i = 0; i < argv.length; i++) {
                String arg = argv[i];
                if (!arg.startsWith("--")) {
                    throw new IllegalArgumentException("unexpected argument " + arg);
                }
                String name = arg.substring(2);
                String value = null;
                int eq = name.indexOf('=');
                if (eq >= 0) {
                    value = name.substring(eq + 1);
                    name = name.substring(0, eq);
                }
                if (name.equals("from-beginning")) {
                    f.fromBeginning = value == null || parseBool(name, value);
                    continue;
                }
                if (value == null) {
                    if (i + 1 >= argv.length) {
                        throw new IllegalArgumentException("--" + name + " needs a value");
                    }
                    value = argv[++i];
                }
                switch (name) {
                    case "bootstrap": f.bootstrap = value; break;
                    case "topic": f.topic = value; break;
                    case "group": f.group = value; break;
                    case "client-id": f.clientId = value; break;
                    case "session-timeout-ms": f.sessionTimeoutMs = Integer.parseInt(value); break;
                    case "heartbeat-interval-ms": f.heartbeatIntervalMs = Integer.parseInt(value); break;
                    case "rebalance-timeout-ms": f.rebalanceTimeoutMs = Integer.parseInt(value); break;
                    case "commit":
                        if (!value.equals("auto") && !value.equals("manual") && !value.equals("both")) {
                            throw new IllegalArgumentException("--commit must be auto, manual or both");
                        }
                        f.commit = value;
                        break;
                    case "request-timeout-ms": f.requestTimeoutMs = Integer.parseInt(value); break;
                    case "assignor":
                        if (!ASSIGNORS.containsKey(value)) {
                            throw new IllegalArgumentException("--assignor must be one of "
                                    + new TreeMap<>(ASSIGNORS).keySet());
                        }
                        f.assignor = value;
                        break;
                    case "commit-in-revoke": f.commitInRevoke = parseBool(name, value); break;
                    case "processing-delay-ms": f.processingDelayMs = Integer.parseInt(value); break;
                    case "async-processing": f.asyncProcessing = parseBool(name, value); break;
                    case "consume-mode":
                        if (!value.equals("loop") && !value.equals("once")) {
                            throw new IllegalArgumentException("--consume-mode must be loop or once");
                        }
                        f.consumeMode = value;
                        break;
                    case "instance-id": f.instanceId = value; break;
                    case "protocol":
                        if (!value.equals("classic") && !value.equals("consumer")) {
                            throw new IllegalArgumentException("--protocol must be classic or consumer");
                        }
                        f.protocol = value;
                        break;
                    case "max-runtime-s": f.maxRuntimeS = Double.parseDouble(value); break;
                    case "return-errors": parseBool(name, value); break; // sarama-only; accepted
                    default: throw new IllegalArgumentException("unknown flag --" + name);
                }
            }
            for (String[] req : new String[][] {{"bootstrap", f.bootstrap}, {"topic", f.topic},
                    {"group", f.group}, {"client-id", f.clientId}}) {
                if (req[1] == null || req[1].isEmpty()) {
                    throw new IllegalArgumentException("--" + req[0] + " is required");
                }
            }
            if (!(f.maxRuntimeS > 0)) {
                throw new IllegalArgumentException("--max-runtime-s must be > 0");
            }
            if (f.processingDelayMs < 0 || f.requestTimeoutMs < 0) {
                throw new IllegalArgumentException(
                        "--processing-delay-ms and --request-timeout-ms must be >= 0");
            }
            return f;
        }

        static boolean parseBool(String name, String value) {
            switch (value) {
                case "true": return true;
                case "false": return false;
                default: throw new IllegalArgumentException("--" + name + " must be true or false");
            }
        }
    }

    /** One JSON object per line on stdout, written and flushed whole under a lock, because the
     *  rebalance callbacks, the interceptor and the shutdown hook run on different threads. */
    static final class Emitter {
        private final String client;
        private final PrintStream out =
                new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true,
                        StandardCharsets.UTF_8);

        Emitter(String client) {
            this.client = client;
        }

        /** emit(event, key1, value1, key2, value2, ...) */
        void emit(String event, Object... kv) {
            Map<String, Object> obj = new LinkedHashMap<>();
            java.time.Instant now = java.time.Instant.now();
            // Plain decimal seconds with microseconds, like the Go and Python harnesses.
            obj.put("ts", java.math.BigDecimal.valueOf(now.getEpochSecond())
                    .add(java.math.BigDecimal.valueOf(now.getNano() / 1000, 6)));
            obj.put("client", client);
            obj.put("event", event);
            for (int i = 0; i + 1 < kv.length; i += 2) {
                obj.put((String) kv[i], kv[i + 1]);
            }
            StringBuilder sb = new StringBuilder();
            Json.write(sb, obj);
            synchronized (this) {
                out.println(sb);
                out.flush();
            }
        }
    }

    /**
     * Forwards the client's WARN and ERROR log lines as `log` events (evidence, not surfaced
     * errors), as the Go and Python harnesses do: some failures, such as a failed
     * auto-commit, are only ever logged. slf4j-simple writes to System.err, resolved at each
     * write, so a tee on System.err sees every line; all of it still reaches stderr.
     */
    static final class LogTap extends java.io.OutputStream {
        /** slf4j-simple with showDateTime: "12:00:00.000 [thread] WARN logger - message". */
        private static final java.util.regex.Pattern LINE = java.util.regex.Pattern.compile(
                "^\\S+ \\[[^\\]]*\\] (WARN|ERROR) (\\S+) - (.*)$");
        private static final int MAX_LINE = 8192;
        private final PrintStream target;
        private final java.io.ByteArrayOutputStream line = new java.io.ByteArrayOutputStream();

        private LogTap(PrintStream target) {
            this.target = target;
        }

        static void install() {
            System.setErr(new PrintStream(new LogTap(System.err), true, StandardCharsets.UTF_8));
        }

        @Override
        public synchronized void write(int b) {
            target.write(b);
            scan(b);
        }

        @Override
        public synchronized void write(byte[] b, int off, int len) {
            target.write(b, off, len);
            for (int i = off; i < off + len; i++) {
                scan(b[i]);
            }
        }

        private void scan(int b) {
            if (b == '\n') {
                forward(line.toString(StandardCharsets.UTF_8));
                line.reset();
            } else if (line.size() < MAX_LINE) {
                line.write(b);
            }
        }

        @Override
        public void flush() {
            target.flush();
        }

        private static void forward(String text) {
            java.util.regex.Matcher m = LINE.matcher(text.stripTrailing());
            if (m.matches()) {
                OUT.emit("log", "level", m.group(1), "logger", m.group(2), "message", m.group(3));
            }
        }
    }

    /** Just enough JSON for the event values: maps, lists, strings, numbers, booleans, null. */
    static final class Json {
        static void write(StringBuilder sb, Object v) {
            if (v == null) {
                sb.append("null");
            } else if (v instanceof String) {
                string(sb, (String) v);
            } else if (v instanceof java.math.BigDecimal) {
                sb.append(((java.math.BigDecimal) v).toPlainString());
            } else if (v instanceof Number || v instanceof Boolean) {
                sb.append(v);
            } else if (v instanceof Map) {
                sb.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                    if (!first) {
                        sb.append(',');
                    }
                    first = false;
                    string(sb, String.valueOf(e.getKey()));
                    sb.append(':');
                    write(sb, e.getValue());
                }
                sb.append('}');
            } else if (v instanceof Collection) {
                sb.append('[');
                boolean first = true;
                for (Object o : (Collection<?>) v) {
                    if (!first) {
                        sb.append(',');
                    }
                    first = false;
                    write(sb, o);
                }
                sb.append(']');
            } else {
                string(sb, v.toString());
            }
        }

        static void string(StringBuilder sb, String s) {
            sb.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"': sb.append("\\\""); break;
                    case '\\': sb.append("\\\\"); break;
                    case '\n': sb.append("\\n"); break;
                    case '\r': sb.append("\\r"); break;
                    case '\t': sb.append("\\t"); break;
                    default:
                        if (c < 0x20) {
                            sb.append(String.format("\\u%04x", (int) c));
                        } else {
                            sb.append(c);
                        }
                }
            }
            sb.append('"');
        }
    }
}
