// Produces COUNT checksummed records to TOPIC and consumes them back in group GROUP with the
// official Java client (kafka-clients), every setting of both (bootstrap, security.protocol,
// TLS and SASL) read from the properties file PROPS. Why a Java program: kafka-clients is the
// reference client; the proxy must serve its TLS (mTLS) and SASL exactly as a broker does.
// Records are "seq:payload:crc32" keyed "k<seq % 97>" (tests/support/records.py); the run
// prints one JSON line {"produced": n, "consumed": n, "verified": n, "bad": [...]} and exits
// 0 only when every record came back intact and exactly once.
// Usage: java -cp 'classes:lib/*' SecuredRoundTrip PROPS TOPIC GROUP COUNT

import java.io.FileInputStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.TreeSet;
import java.util.zip.CRC32;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class SecuredRoundTrip {
    private static final long DEADLINE_MS = 90_000;

    static String value(int seq) {
        String unit = String.format("%08d", seq);
        String payload = unit.repeat(9).substring(0, 64);
        String body = seq + ":" + payload;
        CRC32 crc = new CRC32();
        crc.update(body.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        return body + ":" + String.format("%08x", crc.getValue());
    }

    static int check(String raw) {
        int cut = raw.lastIndexOf(':');
        String body = raw.substring(0, cut);
        CRC32 crc = new CRC32();
        crc.update(body.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        if (!String.format("%08x", crc.getValue()).equals(raw.substring(cut + 1))) {
            return -1;
        }
        return Integer.parseInt(body.substring(0, body.indexOf(':')));
    }

    public static void main(String[] args) throws Exception {
        Properties base = new Properties();
        try (FileInputStream in = new FileInputStream(args[0])) {
            base.load(in);
        }
        String topic = args[1];
        String group = args[2];
        int count = Integer.parseInt(args[3]);

        Properties producerProps = new Properties();
        producerProps.putAll(base);
        producerProps.put("acks", "all");
        producerProps.put("key.serializer", StringSerializer.class.getName());
        producerProps.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(producerProps)) {
            for (int i = 0; i < count; i++) {
                producer.send(new ProducerRecord<>(topic, "k" + (i % 97), value(i))).get();
            }
        }

        Properties consumerProps = new Properties();
        consumerProps.putAll(base);
        consumerProps.put("group.id", group);
        consumerProps.put("auto.offset.reset", "earliest");
        consumerProps.put("enable.auto.commit", "false");
        consumerProps.put("key.deserializer", StringDeserializer.class.getName());
        consumerProps.put("value.deserializer", StringDeserializer.class.getName());
        TreeSet<Integer> seen = new TreeSet<>();
        List<String> bad = new ArrayList<>();
        int consumed = 0;
        long deadline = System.currentTimeMillis() + DEADLINE_MS;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(consumerProps)) {
            consumer.subscribe(List.of(topic));
            while (seen.size() < count && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> record : consumer.poll(Duration.ofMillis(500))) {
                    consumed++;
                    int seq = check(record.value());
                    if (seq < 0 || !record.key().equals("k" + (seq % 97)) || !seen.add(seq)) {
                        bad.add(record.value());
                    }
                }
            }
            consumer.commitSync(Duration.ofSeconds(30));
        }
        boolean ok = bad.isEmpty() && seen.size() == count && consumed == count;
        System.out.println("{\"produced\": " + count + ", \"consumed\": " + consumed
                + ", \"verified\": " + seen.size() + ", \"bad\": " + bad.size() + "}");
        System.exit(ok ? 0 : 1);
    }
}
