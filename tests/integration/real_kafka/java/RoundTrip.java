// Produces COUNT records to TOPIC, then consumes them back in group GROUP with the given
// group.protocol (classic | consumer), using the official Java client (kafka-clients).
// Prints "CONSUMED <n>" and exits 0 when all records came back, 1 otherwise.
// Why a Java program: kafka-clients is the reference client; the fixture must serve it.
// Usage: java -cp 'classes:lib/*' RoundTrip BOOTSTRAP TOPIC GROUP PROTOCOL COUNT

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class RoundTrip {
    private static final int MAX_POLLS = 60;

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        String group = args[2];
        String protocol = args[3];
        int count = Integer.parseInt(args[4]);

        Properties producerProps = new Properties();
        producerProps.put("bootstrap.servers", bootstrap);
        producerProps.put("acks", "all");
        producerProps.put("key.serializer", StringSerializer.class.getName());
        producerProps.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(producerProps)) {
            for (int i = 0; i < count; i++) {
                producer.send(new ProducerRecord<>(topic, "k" + i, "java-" + i)).get();
            }
        }

        Properties consumerProps = new Properties();
        consumerProps.put("bootstrap.servers", bootstrap);
        consumerProps.put("group.id", group);
        consumerProps.put("group.protocol", protocol);
        consumerProps.put("auto.offset.reset", "earliest");
        consumerProps.put("enable.auto.commit", "false");
        consumerProps.put("key.deserializer", StringDeserializer.class.getName());
        consumerProps.put("value.deserializer", StringDeserializer.class.getName());
        List<String> got = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(consumerProps)) {
            consumer.subscribe(List.of(topic));
            for (int poll = 0; poll < MAX_POLLS && got.size() < count; poll++) {
                for (ConsumerRecord<String, String> record : consumer.poll(Duration.ofMillis(500))) {
                    got.add(record.value());
                }
            }
            consumer.commitSync(Duration.ofSeconds(30));
        }
        System.out.println("CONSUMED " + got.size());
        for (int i = 0; i < count; i++) {
            if (i >= got.size() || !got.get(i).equals("java-" + i)) {
                System.out.println("MISMATCH at " + i + ": " + got);
                System.exit(1);
            }
        }
        System.exit(0);
    }
}
