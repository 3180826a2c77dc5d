package kafkachaosproxy;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.testcontainers.containers.Network;
import org.testcontainers.junit.jupiter.Container;
import org.testcontainers.junit.jupiter.Testcontainers;
import org.testcontainers.kafka.KafkaContainer;
import org.testcontainers.utility.DockerImageName;

/**
 * Apache Kafka and kafka-chaos-proxy in containers on one network; the proxy answers the
 * group's first SyncGroup with NOT_COORDINATOR and the consumer, joining through the proxy,
 * must still read every record. Needs a Docker engine and the proxy image (README.md).
 */
@Testcontainers(disabledWithoutDocker = true)
class SyncGroupNotCoordinatorTest {

    private static final Network NETWORK = Network.newNetwork();
    private static final String TOPIC = "orders";
    private static final String GROUP = "orders-consumer";
    private static final int RECORDS = 20;

    /** Reachable inside the network as kafka:19092, the address the proxy bootstraps from. */
    @Container
    private static final KafkaContainer KAFKA = new KafkaContainer(DockerImageName.parse("apache/kafka:4.3.1"))
        .withNetwork(NETWORK)
        .withListener("kafka:19092");

    /**
     * The proxy in front of it; how clients on this JVM reach the broker behind the proxy (the
     * advertised host and a broker port published 1:1) is in ChaosProxyContainer's comment.
     */
    @Container
    private static final ChaosProxyContainer PROXY = new ChaosProxyContainer(
            System.getProperty("kcp.image", "kafka-chaos-proxy:latest"), "kafka:19092", List.of(1))
        .withNetwork(NETWORK)
        .withNetworkAliases("chaos-proxy")
        .dependsOn(KAFKA);

    @Test
    void consumerRidesOutSyncGroupNotCoordinator() throws Exception {
        String bootstrap = PROXY.getBootstrapServers();
        ChaosProxyAdmin admin = PROXY.admin();
        produce(bootstrap);

        long since = admin.lastSeq();
        admin.addRule("""
            {"id": "sync-moved",
             "match": {"apis": ["SyncGroup"], "group_id": "%s"},
             "action": {"type": "error", "error": "NOT_COORDINATOR"},
             "dosage": {"max_injections": 1}}""".formatted(GROUP));

        assertEquals(RECORDS, consume(bootstrap));
        Map<String, Object> event = admin.waitForEvent(
            new ChaosProxyAdmin.EventQuery().api("SyncGroup").group(GROUP).since(since),
            ChaosProxyAdmin.injectedBy("sync-moved"), Duration.ofSeconds(30));
        assertEquals("NOT_COORDINATOR", event.get("error"));
        Map<?, ?> stats = (Map<?, ?>) admin.rule("sync-moved").get("stats");
        assertEquals(1L, stats.get("injected"));
    }

    private static void produce(String bootstrap) throws Exception {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin kafkaAdmin = Admin.create(props)) {
            kafkaAdmin.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 1))).all().get();
        }
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            for (int i = 0; i < RECORDS; i++) {
                producer.send(new ProducerRecord<>(TOPIC, "record-" + i)).get();
            }
        }
    }

    private static int consume(String bootstrap) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, GROUP);
        props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");  // SyncGroup is classic
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        int seen = 0;
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
            consumer.subscribe(List.of(TOPIC));
            while (seen < RECORDS && System.nanoTime() < deadline) {
                seen += consumer.poll(Duration.ofMillis(500)).count();
            }
        }
        return seen;
    }
}
