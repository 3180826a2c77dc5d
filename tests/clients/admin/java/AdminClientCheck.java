import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import kafkachaosproxy.ChaosProxyAdmin;
import kafkachaosproxy.ChaosProxyAdmin.EventQuery;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Drives examples/java's ChaosProxyAdmin against a running proxy, with a real KafkaConsumer
 * (kafka-clients) joining a group through it: run by
 * tests/integration/clients/test_thin_admin_clients.py, which starts the proxy in front of the
 * suite's broker, produces the records and checks these steps against the proxy's own view.
 *
 * <p>Each step prints one JSON line on stdout ({"step": ..., ...}); any failure is an exception
 * (exit 1). Flags: --bootstrap --admin-url --token --topic --group --records.
 */
public final class AdminClientCheck {

    private static final String RULE_ID = "java-sync-moved";

    public static void main(String[] argv) throws Exception {
        Map<String, String> args = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            args.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
        }
        String group = args.get("group");
        int records = Integer.parseInt(args.get("records"));
        ChaosProxyAdmin admin = new ChaosProxyAdmin(args.get("admin-url"), args.get("token"));

        check(admin.healthy(), "healthz");
        step("healthz", Map.of("ok", true));
        try {
            new ChaosProxyAdmin(args.get("admin-url"), "not-the-token").rules();
            throw new AssertionError("a wrong token was accepted");
        } catch (ChaosProxyAdmin.AdminException e) {
            step("wrong_token", Map.of("status", e.status()));
        }
        step("cleared", Map.of("removed", admin.clearRules()));

        // The rule as JSON text, the way a test would write it.
        Map<String, Object> added = admin.addRule("{\"id\": \"" + RULE_ID + "\","
            + " \"match\": {\"apis\": [\"SyncGroup\"], \"group_id\": \"" + group + "\"},"
            + " \"action\": {\"type\": \"error\", \"error\": \"NOT_COORDINATOR\"},"
            + " \"dosage\": {\"max_injections\": 1}}");
        step("added", Map.of("id", added.get("id")));
        // A second rule as maps, then removed again: both ways of adding, and remove by id.
        Map<String, Object> other = new LinkedHashMap<>();
        other.put("id", "java-unused");
        other.put("match", Map.of("apis", List.of("Heartbeat"), "group_id", group + "-nobody"));
        other.put("action", Map.of("type", "delay", "fixed_ms", 10));
        admin.addRule(other);
        List<Object> ids = new ArrayList<>();
        admin.rules().forEach(rule -> ids.add(rule.get("id")));
        step("listed", Map.of("ids", ids));
        admin.removeRule("java-unused");
        try {
            admin.addRule("{\"match\": {\"apis\": [\"SyncGrup\"]}, \"action\": {\"type\": \"error\"}}");
            throw new AssertionError("a rule with a typo was accepted");
        } catch (ChaosProxyAdmin.AdminException e) {
            step("refused", Map.of("status", e.status(), "message", e.getMessage()));
        }

        long since = admin.lastSeq();
        step("since", Map.of("seq", since));
        int consumed = consume(args.get("bootstrap"), args.get("topic"), group, records);
        step("consumed", Map.of("records", consumed));

        Map<String, Object> event = admin.waitForEvent(
            new EventQuery().api("SyncGroup").group(group).since(since),
            ChaosProxyAdmin.injectedBy(RULE_ID), Duration.ofSeconds(60));
        Map<String, Object> seen = new LinkedHashMap<>();
        seen.put("seq", event.get("seq"));
        seen.put("api", event.get("api"));
        seen.put("group", event.get("group"));
        seen.put("error", event.get("error"));
        seen.put("fault", event.get("fault"));
        step("event", seen);
        List<Object> syncGroups = new ArrayList<>();
        admin.events(new EventQuery().api("SyncGroup").group(group).since(since))
            .forEach(e -> syncGroups.add(e.get("error")));
        step("sync_groups", Map.of("errors", syncGroups));

        Object stats = admin.rule(RULE_ID).get("stats");
        step("stats", Map.of("stats", stats));
        admin.removeRule(RULE_ID);
        step("removed", Map.of("left", admin.rules().size()));
        step("done", Map.of());
    }

    /** A real consumer of `group` through the proxy, until every record was read. */
    private static int consume(String bootstrap, String topic, String group, int records) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, "admin-client-check-java");
        props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");  // SyncGroup is classic
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        int seen = 0;
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
            consumer.subscribe(List.of(topic));
            while (seen < records && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> ignored : consumer.poll(Duration.ofMillis(500))) {
                    seen++;
                }
            }
        }
        check(seen >= records, "consumed " + seen + " of " + records + " records");
        return seen;
    }

    private static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }

    private static void step(String name, Map<String, ?> fields) {
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("step", name);
        line.putAll(fields);
        System.out.println(ChaosProxyAdmin.Json.write(line));
        System.out.flush();
    }
}
