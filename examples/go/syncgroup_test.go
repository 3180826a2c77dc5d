package examples_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	dockernetwork "github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/kafka"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-chaos-proxy/examples/go/chaosadmin"
)

// The proxy image: `docker build -t kafka-chaos-proxy .` at the repository's root, or set
// KCP_IMAGE to another tag.
func proxyImage() string {
	if image := os.Getenv("KCP_IMAGE"); image != "" {
		return image
	}
	return "kafka-chaos-proxy:latest"
}

// TestConsumerSurvivesSyncGroupNotCoordinator: Kafka and the proxy in containers on one
// network; the proxy answers the group's first SyncGroup with NOT_COORDINATOR and the
// consumer (franz-go, joining through the proxy) must still read every record.
func TestConsumerSurvivesSyncGroupNotCoordinator(t *testing.T) {
	testcontainers.SkipIfProviderIsNotHealthy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	nw, err := network.New(ctx)
	testcontainers.CleanupNetwork(t, nw)
	if err != nil {
		t.Fatalf("network: %v", err)
	}

	// The module's BROKER listener advertises <container host name>:9092 to clients inside the
	// network; the host name is set to the network alias so that the proxy reaches it by name.
	kafkaC, err := kafka.Run(ctx, "confluentinc/confluent-local:7.5.0",
		kafka.WithClusterID("kafka-chaos-proxy-example"),
		network.WithNetwork([]string{"kafka"}, nw),
		testcontainers.WithConfigModifier(func(c *container.Config) { c.Hostname = "kafka" }),
	)
	testcontainers.CleanupContainer(t, kafkaC)
	if err != nil {
		t.Fatalf("kafka: %v", err)
	}

	// Advertised addresses. Clients learn each broker's address from the proxy's Metadata
	// answers: KCP_ADVERTISED_HOST plus the port that broker's proxy listener binds inside the
	// container. A port published under a random number would send this test's clients to
	// the wrong port, so the broker listener's port is one free port of the Docker host,
	// published 1:1 and given to the proxy as KCP_PORT_BASE (broker N listens on base+N; one
	// broker here). The bootstrap port (9192) and the admin port (9190) may be mapped to any
	// port: a client uses the bootstrap address only for its first connection, and the admin
	// API is never advertised.
	// The free port is looked up on this machine, the Docker host in the usual local set-up;
	// with a remote engine (DOCKER_HOST=tcp://...) choose one known to be free there.
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		t.Fatalf("docker provider: %v", err)
	}
	defer provider.Close()
	host, err := provider.DaemonHost(ctx)
	if err != nil {
		t.Fatalf("docker host: %v", err)
	}
	brokerPort := freePort(t)
	brokerSpec := fmt.Sprintf("%d/tcp", brokerPort)
	token := "example-" + strconv.FormatInt(time.Now().UnixNano(), 36)

	proxyC, err := testcontainers.Run(ctx, proxyImage(),
		network.WithNetwork([]string{"chaos-proxy"}, nw),
		testcontainers.WithEnv(map[string]string{
			"KCP_BOOTSTRAP_SERVER":   "kafka:9092",
			"KCP_ADMIN_TOKEN":        token,
			"KCP_ADVERTISED_HOST":    host,
			"KCP_PORT_BASE":          strconv.Itoa(brokerPort),
			"KCP_ADMIN_ALLOWED_HOST": fmt.Sprintf("[%q]", host),
		}),
		testcontainers.WithExposedPorts("9192/tcp", "9190/tcp", brokerSpec),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			if hc.PortBindings == nil {
				hc.PortBindings = dockernetwork.PortMap{}
			}
			hc.PortBindings[dockernetwork.MustParsePort(brokerSpec)] = []dockernetwork.PortBinding{
				{HostPort: strconv.Itoa(brokerPort)}}
		}),
		testcontainers.WithWaitStrategy(wait.ForHTTP("/healthz").WithPort("9190/tcp")),
	)
	testcontainers.CleanupContainer(t, proxyC)
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	bootstrap, err := proxyC.PortEndpoint(ctx, "9192/tcp", "")
	if err != nil {
		t.Fatalf("bootstrap endpoint: %v", err)
	}
	adminURL, err := proxyC.PortEndpoint(ctx, "9190/tcp", "http")
	if err != nil {
		t.Fatalf("admin endpoint: %v", err)
	}
	admin := chaosadmin.New(adminURL, token)

	const topic, group, records = "orders", "orders-consumer", 20
	produce(ctx, t, bootstrap, topic, records)

	since, err := admin.LastSeq(ctx)
	if err != nil {
		t.Fatalf("last seq: %v", err)
	}
	if _, err := admin.AddRule(ctx, fmt.Sprintf(`{"id": "sync-moved",
		"match": {"apis": ["SyncGroup"], "group_id": %q},
		"action": {"type": "error", "error": "NOT_COORDINATOR"},
		"dosage": {"max_injections": 1}}`, group)); err != nil {
		t.Fatalf("add rule: %v", err)
	}

	if got := consume(ctx, t, bootstrap, topic, group, records); got != records {
		t.Fatalf("consumed %d of %d records", got, records)
	}
	waitCtx, waitCancel := context.WithTimeout(ctx, 30*time.Second)
	defer waitCancel()
	event, err := admin.WaitForEvent(waitCtx,
		chaosadmin.EventFilter{API: "SyncGroup", Group: group, Since: since},
		chaosadmin.InjectedBy("sync-moved"))
	if err != nil {
		t.Fatalf("the injected SyncGroup: %v", err)
	}
	if event["error"] != "NOT_COORDINATOR" {
		t.Fatalf("the injected SyncGroup answered %v", event["error"])
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer listener.Close()
	return listener.Addr().(*net.TCPAddr).Port
}

func produce(ctx context.Context, t *testing.T, bootstrap, topic string, count int) {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	defer client.Close()
	create := kmsg.NewPtrCreateTopicsRequest()
	spec := kmsg.NewCreateTopicsRequestTopic()
	spec.Topic, spec.NumPartitions, spec.ReplicationFactor = topic, 1, 1
	create.Topics = append(create.Topics, spec)
	created, err := create.RequestWith(ctx, client)
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	if code := created.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create topic: error code %d", code)
	}
	for i := range count {
		record := &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("record-%d", i))}
		if err := client.ProduceSync(ctx, record).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

func consume(ctx context.Context, t *testing.T, bootstrap, topic, group string, want int) int {
	t.Helper()
	client, err := kgo.NewClient(
		kgo.SeedBrokers(bootstrap),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer client.Close()
	pollCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	got := 0
	for got < want && pollCtx.Err() == nil {
		fetches := client.PollFetches(pollCtx)
		fetches.EachError(func(topic string, partition int32, err error) {
			t.Logf("fetch error %s/%d: %v", topic, partition, err)
		})
		got += fetches.NumRecords()
	}
	return got
}
