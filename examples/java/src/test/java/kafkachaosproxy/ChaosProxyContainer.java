package kafkachaosproxy;

import java.io.IOException;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.wait.strategy.Wait;
import org.testcontainers.utility.DockerImageName;

/**
 * The kafka-chaos-proxy image as a Testcontainers container, in front of brokers reachable on
 * the same Docker network ({@code bootstrapServers}, e.g. a KafkaContainer's network listener).
 *
 * <p>Advertised addresses. Clients learn each broker's address from the proxy's Metadata
 * answers: KCP_ADVERTISED_HOST plus the port that broker's proxy listener binds inside the
 * container. A port published under a random number (what {@code withExposedPorts} does) would
 * send the test JVM's clients to the wrong port, so each broker listener gets a free port of
 * the Docker host, published 1:1 ({@code setPortBindings}) and given to the proxy as
 * KCP_NODE_PORT (node id = port). The bootstrap port (9192) and the admin port (9190) are
 * mapped to random ports: a client uses the bootstrap address only for its first connection,
 * and the admin API is never advertised. The advertised host is the Docker host as this JVM
 * sees it ({@code getHost()}), known only when the container starts: hence {@link #configure}.
 * The free port is looked up on this machine, which is the Docker host in the usual local set-up;
 * with a remote engine (DOCKER_HOST=tcp://...) choose ports known to be free there instead.
 */
public class ChaosProxyContainer extends GenericContainer<ChaosProxyContainer> {

    public static final int BOOTSTRAP_PORT = 9192;
    public static final int ADMIN_PORT = 9190;

    private final String token = "example-" + UUID.randomUUID();
    private final String bootstrapServers;
    private final List<Integer> nodeIds;

    /**
     * @param image the proxy image, e.g. {@code kafka-chaos-proxy:latest}
     * @param bootstrapServers the brokers as the proxy reaches them inside the network
     * @param nodeIds the broker node ids behind them (one for a single KafkaContainer: 1)
     */
    public ChaosProxyContainer(String image, String bootstrapServers, List<Integer> nodeIds) {
        super(DockerImageName.parse(image));
        this.bootstrapServers = bootstrapServers;
        this.nodeIds = List.copyOf(nodeIds);
        withExposedPorts(BOOTSTRAP_PORT, ADMIN_PORT);
        waitingFor(Wait.forHttp("/healthz").forPort(ADMIN_PORT));
    }

    @Override
    protected void configure() {
        String host = getHost();
        StringBuilder nodePorts = new StringBuilder("[");
        List<String> bindings = new ArrayList<>();
        for (int nodeId : nodeIds) {
            int port = freePort();
            bindings.add(port + ":" + port);
            nodePorts.append(nodePorts.length() > 1 ? "," : "").append("\"").append(nodeId).append("=")
                .append(port).append("\"");
        }
        setPortBindings(bindings);
        withEnv("KCP_BOOTSTRAP_SERVER", bootstrapServers);
        withEnv("KCP_ADMIN_TOKEN", token);
        withEnv("KCP_ADVERTISED_HOST", host);
        withEnv("KCP_NODE_PORT", nodePorts.append("]").toString());
        // The admin API checks the Host header (DNS rebinding): allow the name this JVM uses.
        withEnv("KCP_ADMIN_ALLOWED_HOST", "[\"" + host + "\"]");
    }

    /** The address clients bootstrap from: the Docker host and the mapped bootstrap port. */
    public String getBootstrapServers() {
        return getHost() + ":" + getMappedPort(BOOTSTRAP_PORT);
    }

    /** The admin API's base URL as this JVM reaches it. */
    public String getAdminUrl() {
        return "http://" + getHost() + ":" + getMappedPort(ADMIN_PORT);
    }

    /** A thin admin client with this container's token. */
    public ChaosProxyAdmin admin() {
        return new ChaosProxyAdmin(getAdminUrl(), token);
    }

    private static int freePort() {
        try (ServerSocket socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new IllegalStateException("no free port", e);
        }
    }
}
