// Starts Kroxylicious from its runtime jars for bench/peers.py, in pass-through mode.
//
// Why a launcher of our own: Kroxylicious's command-line entry point (io.kroxylicious.app,
// the kroxylicious-app module) is not published to Maven Central, only kroxylicious-runtime
// is. This does what that entry point does (parse the YAML configuration, start the proxy,
// block until it is stopped), without its banner and version printing.
//
// bench/peer_procs.py compiles it once against the Kroxylicious jars (javac, into the cache
// beside them) and runs it as
//   java -cp '<cache>/peers/kroxylicious-<version>/lib/*:<classes>' KroxyliciousLauncher CONFIG
// It prints one line "kroxylicious started" once every listener is bound.

import io.kroxylicious.proxy.KafkaProxy;
import io.kroxylicious.proxy.config.ConfigParser;
import io.kroxylicious.proxy.config.Configuration;
import io.kroxylicious.proxy.internal.config.Features;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

public class KroxyliciousLauncher {
    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: KroxyliciousLauncher CONFIG.yaml");
            System.exit(2);
        }
        ConfigParser parser = new ConfigParser();
        Configuration config;
        try (InputStream in = Files.newInputStream(Path.of(args[0]))) {
            config = parser.parseConfiguration(in);
        }
        try (KafkaProxy proxy = new KafkaProxy(parser, config, Features.defaultFeatures())) {
            proxy.startup();
            System.out.println("kroxylicious started");
            System.out.flush();
            proxy.block();
        }
    }
}
